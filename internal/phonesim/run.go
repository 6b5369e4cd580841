package phonesim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// Result is what a run of the phone achieved.
type Result struct {
	// EndReason and ReasonInfo are from the END_SESSION that ended the run.
	EndReason  wire.Reason
	ReasonInfo string
	// Operations lists the server requests the phone answered, in order,
	// by command name (e.g. "KEY_GENERATE_REQUEST").
	Operations []string
	// Installed is the LSC stored during this run, if any.
	Installed *x509.Certificate
	// Received lists every certificate that arrived in a
	// STORE_CERTIFICATE_REQUEST during the run, in order, whether the
	// phone then stored or refused it and whether or not its session
	// completed: a crash-consistency check compares it with what the
	// server recorded.
	Received []*x509.Certificate
	// Fetched is set when the phone returned a certificate to a fetch.
	Fetched bool
	// Deleted is set when the phone deleted its LSC.
	Deleted bool
	// Sessions counts the connections made, RetryLaterCount the RETRY_LATER
	// messages received.
	Sessions        int
	RetryLaterCount int
}

// Errors a run can end with; test with errors.Is.
var (
	// ErrProtocol: the server broke the protocol (a malformed message, a
	// wrong session id, an unexpected first message, a message split
	// across reads in single-read mode). Not retried.
	ErrProtocol = errors.New("CAPF protocol violation by the server")
	// ErrUntrusted: the server's TLS certificate is not in, and does not
	// chain to, the trusted CAPF certificates. Not retried.
	ErrUntrusted = errors.New("server certificate not trusted")
	// ErrRetryLater: the server still said RETRY_LATER on the last try.
	ErrRetryLater = errors.New("server asked to retry later")
	// ErrFault: an injected fault ended the run (DisconnectAfterAuth).
	ErrFault = errors.New("injected fault")
	// ErrCommunication: a communication failure (connect, TLS I/O, EOF,
	// reset, timeout) ended the last try.
	ErrCommunication = errors.New("communication failure")
)

// commError marks a communication failure (connect, TLS I/O, EOF, reset,
// timeout): the phone retries the whole session after one.
type commError struct {
	op  string
	err error
}

func (e *commError) Error() string { return fmt.Sprintf("%s: %v", e.op, e.err) }
func (e *commError) Unwrap() error { return e.err }

// Is makes every communication failure match ErrCommunication.
func (e *commError) Is(target error) bool { return target == ErrCommunication }

func comm(op string, err error) error { return &commError{op: op, err: err} }

// Run plays the phone against the server until it ends a session with
// END_SESSION, whatever its reason: the caller inspects Result.EndReason.
// After a communication failure or a RETRY_LATER the phone waits and tries a
// new session, up to Retries more times; after the last it returns an error
// wrapping the cause. Protocol violations, an untrusted server and local
// failures end the run at once. The Result is never nil, so a caller can
// report what happened before an error.
func Run(ctx context.Context, o Options) (*Result, error) {
	res := &Result{}
	c, err := o.config()
	if err != nil {
		return res, err
	}
	st, err := openState(c)
	if err != nil {
		return res, fmt.Errorf("phonesim: %w", err)
	}
	r := &runner{
		c:          c,
		st:         st,
		res:        res,
		mode:       c.mode,
		failKeygen: c.FailKeygen,
		dropStore:  c.DisconnectOnStore,
		log:        c.Logger.With("device", c.DeviceName),
	}
	if r.mode == "" {
		r.mode = defaultMode(c, st)
	}
	for attempt := 0; ; attempt++ {
		out, err := r.session(ctx)
		if err == nil && !out.retryLater {
			return res, nil
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("phonesim: %s: %w", c.DeviceName, context.Cause(ctx))
		}
		wait := out.delay
		if err != nil {
			var ce *commError
			if !errors.As(err, &ce) {
				return res, fmt.Errorf("phonesim: %s: %w", c.DeviceName, err)
			}
			wait = c.RetryInterval
		} else {
			err = ErrRetryLater
		}
		if attempt >= c.retries {
			return res, fmt.Errorf("phonesim: %s: giving up after %d attempts: %w", c.DeviceName, attempt+1, err)
		}
		r.log.Warn("retrying", "in", wait, "retry", attempt+1, "of", c.retries, "cause", err)
		if err := sleep(ctx, wait); err != nil {
			return res, fmt.Errorf("phonesim: %s: %w", c.DeviceName, err)
		}
	}
}

// defaultMode picks the authentication mode when none is configured: the
// authentication string if there is one, else the MIC if one was given,
// else the LSC if the phone has one, else the null string.
func defaultMode(c *config, st *state) AuthMode {
	switch {
	case c.AuthString != "":
		return AuthModeString
	case c.MIC != nil:
		return AuthModeMIC
	case st.lsc != nil:
		return AuthModeLSC
	}
	return AuthModeNull
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
