package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// Exit codes of capf phone beyond the common ones: each says which way the
// operation the phone expected did not happen.
const (
	ExitPhoneRefused    = 5 // the server refused the phone: END_SESSION reason 7
	ExitPhoneUnknown    = 6 // the server does not know the device: END_SESSION reason 9
	ExitPhoneEndedEarly = 7 // the session ended before the operation completed: a protocol error, a failed connection, an untrusted server, an unexpected END_SESSION
	ExitPhoneRetryLater = 8 // the server still said RETRY_LATER after the phone's retries
)

// phoneExitHelp is the exit-status paragraph of capf phone --help.
const phoneExitHelp = `Exit status:
  0  the server did what it asked for (installed or deleted the LSC, fetched a
     certificate), or ended the session with reason 0 because nothing was pending
  1  a local failure (the state directory, a key)
  2  bad flags or arguments
  5  refused: END_SESSION reason 7 (authentication failed, invalid element, …)
  6  unknown device: END_SESSION reason 9
  7  the session ended early: connection or TLS failure after the retries, an
     untrusted CAPF certificate, a protocol violation, END_SESSION with another
     reason, or "success" without the operation having happened
  8  the server still answered RETRY_LATER after the retries`

// exitError is an error that carries its own process exit code; exitCode
// honours it before any other mapping.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the process exit code for the error.
func (e *exitError) ExitCode() int { return e.code }

// phoneOutcome maps the result of a simulator run to the error capf phone
// ends with: nil when the expected operation happened or nothing was
// pending, else an *exitError with one of the ExitPhone codes. runErr is
// what phonesim.Run returned.
func phoneOutcome(name string, r *phonesim.Result, runErr error) error {
	fail := func(code int, format string, args ...any) error {
		return &exitError{code: code, err: fmt.Errorf("phone %s: "+format, append([]any{name}, args...)...)}
	}
	if runErr != nil {
		switch {
		case errors.Is(runErr, phonesim.ErrRetryLater):
			return &exitError{code: ExitPhoneRetryLater, err: runErr}
		case errors.Is(runErr, phonesim.ErrCommunication), errors.Is(runErr, phonesim.ErrProtocol),
			errors.Is(runErr, phonesim.ErrUntrusted), errors.Is(runErr, phonesim.ErrFault):
			return &exitError{code: ExitPhoneEndedEarly, err: runErr}
		}
		return &exitError{code: ExitFailure, err: runErr} // local: the state, a key, an interrupt
	}
	askedKey := slices.Contains(r.Operations, wire.CmdKeyGenerateRequest.String())
	switch r.EndReason {
	case wire.ReasonRefused:
		return fail(ExitPhoneRefused, "refused by the server (END_SESSION reason 7)%s", info(r))
	case wire.ReasonUnknownDevice:
		return fail(ExitPhoneUnknown, "unknown to the server (END_SESSION reason 9)%s", info(r))
	case wire.ReasonNoAction:
		if askedKey && r.Installed == nil {
			return fail(ExitPhoneEndedEarly, "the server asked for a key, then ended the session with reason 0 without storing a certificate%s", info(r))
		}
		return nil // nothing pending, or a troubleshoot fetch
	case wire.ReasonSuccess:
		switch {
		case len(r.Operations) == 0:
			return fail(ExitPhoneEndedEarly, "the server reported success (reason 1) without requesting any operation%s", info(r))
		case askedKey && r.Installed == nil:
			return fail(ExitPhoneEndedEarly, "the server reported success (reason 1) but no certificate was installed%s", info(r))
		}
		return nil
	}
	return fail(ExitPhoneEndedEarly, "the server ended the session with reason %d (%s)%s", uint8(r.EndReason), r.EndReason, info(r))
}

// info formats the REASON_INFO of the END_SESSION, if any, bounded and
// quoted: it comes from the server.
func info(r *phonesim.Result) string {
	if r.ReasonInfo == "" {
		return ""
	}
	s := r.ReasonInfo
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf(": %q", s)
}
