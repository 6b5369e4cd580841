package contact

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// Sink writes a batch of contacts; device.Store implements it.
type Sink interface {
	RecordContacts(ctx context.Context, cs []device.Contact) error
}

// Defaults of a [Recorder].
const (
	DefaultInterval   = 2 * time.Second
	DefaultMaxPending = 10_000
	// flushTimeout bounds one batch write.
	flushTimeout = 10 * time.Second
)

// RecorderOptions configure a [Recorder].
type RecorderOptions struct {
	Sink Sink
	// Interval is how often the pending contacts are written;
	// DefaultInterval when zero. A device's refusals cost at most one row
	// write per interval, however often its phone calls.
	Interval time.Duration
	// MaxPending bounds the devices with a contact waiting to be written;
	// a contact of another device beyond it is dropped (and counted).
	// DefaultMaxPending when zero.
	MaxPending int
	Logger     *slog.Logger
}

// Recorder coalesces the contacts that end before a session (RETRY_LATER,
// nothing pending, refused) per device and writes them in batches. It is
// safe for concurrent use; [Recorder.Note] never blocks on the database.
type Recorder struct {
	o RecorderOptions

	mu      sync.Mutex
	pending map[string]device.Contact
	dropped uint64
	written uint64
}

// NewRecorder returns a recorder; start its writer with [Recorder.Run].
func NewRecorder(o RecorderOptions) *Recorder {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recorder{o: o, pending: make(map[string]device.Contact)}
}

// Note keeps c as its device's latest contact until the next write,
// replacing an older one waiting for the same device.
func (r *Recorder) Note(c device.Contact) {
	c.Reason = device.BoundReason(c.Reason)
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.pending[c.Device]
	switch {
	case ok && old.At.After(c.At):
		return
	case !ok && len(r.pending) >= r.o.MaxPending:
		r.dropped++
		return
	}
	r.pending[c.Device] = c
}

// Stats returns how many contacts were written and how many were dropped
// because too many devices were waiting.
func (r *Recorder) Stats() (written, dropped uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.written, r.dropped
}

// Flush writes the pending contacts in one batch, in device-name order (so
// that two nodes' batches lock rows in the same order). On failure the
// batch is put back, unless newer contacts replaced its entries.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return nil
	}
	batch := make([]device.Contact, 0, len(r.pending))
	for _, c := range r.pending {
		batch = append(batch, c)
	}
	clear(r.pending)
	r.mu.Unlock()
	slices.SortFunc(batch, func(a, b device.Contact) int { return strings.Compare(a.Device, b.Device) })
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	err := r.o.Sink.RecordContacts(ctx, batch)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.written += uint64(len(batch))
		return nil
	}
	for _, c := range batch {
		if _, newer := r.pending[c.Device]; !newer && len(r.pending) < r.o.MaxPending {
			r.pending[c.Device] = c
		}
	}
	return err
}

// Run writes the pending contacts every interval until ctx ends, then
// once more.
func (r *Recorder) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := r.Flush(context.WithoutCancel(ctx)); err != nil {
				r.o.Logger.Warn("phone contacts not recorded at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.o.Logger.Warn("phone contacts not recorded; kept for the next try", "err", err)
			}
		}
	}
}
