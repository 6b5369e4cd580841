package device

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
)

// Notifier asks a phone to restart (a SIP NOTIFY check-sync through the
// PBX); package notify implements it. Notify returns an error whose text is
// a short reason fit to show and store.
type Notifier interface {
	Notify(ctx context.Context, device string) error
}

// Reset is the outcome of the latest request to restart a phone ("Save,
// then Reset"). The administrator who asked owns it; writing it changes
// nothing else on the device (not its status, UpdatedAt or Rev).
type Reset struct {
	Device string    `json:"-"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`            // who asked, as Actor.String()
	OK     bool      `json:"ok"`               // the PBX or command accepted the request
	Reason string    `json:"reason,omitempty"` // why it failed: short, printable, bounded
}

// IsZero reports whether no reset is on record.
func (r Reset) IsZero() bool { return r.At.IsZero() }

// The audit actions of a reset: the request, written before the
// notification is sent (a reset whose request cannot be audited is not
// sent), and its outcome.
const (
	AuditDeviceReset        = "device.reset"
	AuditDeviceResetOutcome = "device.reset-outcome"
)

// Bounds of resets.
const (
	// MaxResetReason bounds the reason kept with a reset.
	MaxResetReason = 200
	// MaxBulkReset is the most phones one bulk reset may name; a search
	// that matches more is refused, with the count.
	MaxBulkReset = 50
	// BulkResetFailureStop ends a bulk reset after this many failures in
	// a row (the PBX is down or refuses us: the rest would fail alike,
	// each after its time-out); the phones not reached are reported
	// skipped.
	BulkResetFailureStop = 3
	// BulkResetBudget bounds a whole bulk reset, so that its answer
	// comes within the admin listener's 30 s write time-out; the phones
	// not reached by then are reported skipped.
	BulkResetBudget = 25 * time.Second
)

// NoNotifierMessage says how to configure a notifier; Reset answers it
// when none is.
const NoNotifierMessage = "reset: no notifier is configured: set reset_ami_address, reset_ami_user and reset_ami_secret_file " +
	"(Asterisk), or reset_command, in capf.json and restart capf serve (README: \"Reset after Save\")"

// errNoNotifier is returned by Reset when no notifier is configured.
var errNoNotifier = fault.New(fault.Unavailable, "%s", NoNotifierMessage)

// Reset asks the phone called name to restart, through the configured
// notifier, and records the outcome with the device and in the audit
// stream (the request before it is sent, the outcome after). It returns
// the recorded outcome; when the notification failed, also an error of
// kind Unavailable (Throttled when the pacing refused it) that says why.
func (s *Service) Reset(ctx context.Context, actor Actor, name string) (Reset, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return Reset{}, err
	}
	if s.notifier == nil {
		return Reset{}, errNoNotifier
	}
	if _, err := s.store.GetDevice(ctx, n); err != nil {
		return Reset{}, fmt.Errorf("reset %s: %w", n, err)
	}
	return s.reset(ctx, actor, n)
}

// reset notifies the existing device n and records the outcome.
func (s *Service) reset(ctx context.Context, actor Actor, n string) (Reset, error) {
	req := AuditEvent{At: s.now().UTC(), Actor: actor, Action: AuditDeviceReset, Target: n, Detail: "requested"}
	if err := s.store.AppendAudit(ctx, req); err != nil {
		return Reset{}, fmt.Errorf("reset %s: audit the request: %w", n, err)
	}
	nerr := s.notifier.Notify(ctx, n)
	r := Reset{Device: n, At: s.now().UTC(), Actor: actor.String(), OK: nerr == nil}
	detail := "ok"
	if nerr != nil {
		r.Reason = safetext.Bound(nerr.Error(), MaxResetReason)
		detail = "failed: " + r.Reason
	}
	ev := AuditEvent{At: r.At, Actor: actor, Action: AuditDeviceResetOutcome, Target: n, Detail: detail}
	// The notification went out (or failed) whatever the caller does now:
	// record it even if the caller has gone away meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.RecordReset(wctx, r, ev); err != nil {
		return r, fmt.Errorf("reset %s: record the outcome: %w", n, err)
	}
	if nerr != nil {
		kind := fault.Unavailable
		if fault.KindOf(nerr) == fault.Throttled {
			kind = fault.Throttled
		}
		return r, fault.New(kind, "reset of %s failed: %s", n, r.Reason)
	}
	return r, nil
}

// LastReset returns the latest reset of the device called name; a zero
// Reset when none is on record.
func (s *Service) LastReset(ctx context.Context, name string) (Reset, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return Reset{}, err
	}
	r, err := s.store.LastReset(ctx, n)
	if err != nil {
		return Reset{}, fmt.Errorf("last reset of %s: %w", n, err)
	}
	return r, nil
}

// BulkReset is the outcome of a reset of a search result.
type BulkReset struct {
	Matched int      // devices the search matched
	Resets  []Reset  // one per phone notified, in name order
	Skipped []string // phones not notified: the bulk stopped (BulkResetFailureStop) or ctx ended
	Stopped string   // why the bulk stopped early; "" when it did not
}

// Failed counts the resets that failed.
func (b BulkReset) Failed() int {
	n := 0
	for _, r := range b.Resets {
		if !r.OK {
			n++
		}
	}
	return n
}

// ResetMatching resets every phone the Find Phone search c matches (its
// Offset and Limit are ignored), one after the other at the notifier's
// pace. A search that matches more than MaxBulkReset phones is refused as
// Invalid before any is notified. After BulkResetFailureStop failures in
// a row, when ctx ends or when BulkResetBudget has passed, the remaining
// phones are skipped. Each reset is audited and recorded as Reset does.
func (s *Service) ResetMatching(ctx context.Context, actor Actor, c Criteria) (BulkReset, error) {
	if s.notifier == nil {
		return BulkReset{}, errNoNotifier
	}
	c.Limit, c.Offset = 0, 0
	q, err := c.Query(s.now())
	if err != nil {
		return BulkReset{}, err
	}
	q.Offset, q.Limit = 0, MaxBulkReset+1
	q.Sort, q.Desc = FieldName, false
	p, err := s.List(ctx, q)
	if err != nil {
		return BulkReset{}, err
	}
	if p.Total > MaxBulkReset {
		return BulkReset{}, fault.Invalidf("the search matches %d phones; a bulk reset takes at most %d: narrow the search", p.Total, MaxBulkReset)
	}
	b := BulkReset{Matched: p.Total}
	ctx, cancel := context.WithTimeout(ctx, BulkResetBudget)
	defer cancel()
	inRow := 0
	for i, d := range p.Devices {
		if b.Stopped == "" && ctx.Err() != nil {
			b.Stopped = fmt.Sprintf("the bulk reset's %s ran out", BulkResetBudget)
		}
		if b.Stopped != "" {
			for _, rest := range p.Devices[i:] {
				b.Skipped = append(b.Skipped, rest.Name)
			}
			break
		}
		r, err := s.reset(ctx, actor, d.Name)
		if r.IsZero() {
			return b, err // the request could not even be audited
		}
		b.Resets = append(b.Resets, r)
		if r.OK {
			inRow = 0
			continue
		}
		if inRow++; inRow >= BulkResetFailureStop {
			b.Stopped = fmt.Sprintf("%d resets failed in a row; the last: %s", inRow, r.Reason)
		}
		var fe *fault.Error
		if errors.As(err, &fe) && fe.Kind == fault.Throttled {
			b.Stopped = "throttled: " + r.Reason
		}
	}
	return b, nil
}
