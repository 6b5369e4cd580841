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
	// Server is the address of the last server the phone reached (TCP
	// connected): the one that ended the run, when it ended with
	// END_SESSION.
	Server string
	// Failovers counts the moves to the next server of the list after a
	// server failed.
	Failovers int
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

// Run plays the phone against its servers until one ends a session with
// END_SESSION, whatever its reason: the caller inspects Result.EndReason.
//
// The phone walks its capfList (Options.Servers, or Server alone) as a
// phone does: it starts with the first server; when a server cannot be
// reached (the TCP connect fails or times out, the TLS handshake breaks
// off) or the connection drops before the session ends, it tries the next
// server at once, wrapping around. Only when every server of the list has
// failed in a row does it count a retry, wait RetryInterval and start over
// at the top of the list. A RETRY_LATER also counts a retry: the phone
// waits the RETRY_DELAY (else RetryInterval) and asks the same server
// again, since it answered, and a cluster's servers share one claim per
// device, so another would say the same. After Retries retries it returns
// an error wrapping the last cause. Protocol violations, an untrusted
// server and local failures end the run at once, whichever server caused
// them. The Result is never nil, so a caller can report what happened
// before an error.
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
	n := len(c.servers)
	cur := 0    // the server tried next
	failed := 0 // servers that failed in a row since one last answered
	for attempt := 0; ; {
		server := c.servers[cur]
		out, err := r.session(ctx, server)
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
				return res, fmt.Errorf("phonesim: %s: %s: %w", c.DeviceName, server, err)
			}
			err = fmt.Errorf("%s: %w", server, err)
			failed++
			if failed < n {
				cur = (cur + 1) % n
				res.Failovers++
				r.log.Warn("server failed, trying the next of the list", "server", server, "next", c.servers[cur], "cause", err)
				continue
			}
			// Every server failed: a retry, from the top of the list.
			failed, cur = 0, 0
			wait = c.RetryInterval
		} else {
			failed = 0
			err = fmt.Errorf("%s: %w", server, ErrRetryLater)
		}
		if attempt >= c.retries {
			return res, fmt.Errorf("phonesim: %s: giving up after %d attempts: %w", c.DeviceName, attempt+1, err)
		}
		attempt++
		r.log.Warn("retrying", "in", wait, "retry", attempt, "of", c.retries, "cause", err)
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
