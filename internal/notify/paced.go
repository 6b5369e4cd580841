package notify

import (
	"context"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// Defaults of [Paced].
const (
	DefaultPerSecond = 5
	DefaultMaxWait   = 30 * time.Second
)

// PacedOptions configure a [Paced] notifier.
type PacedOptions struct {
	Notifier  Notifier
	PerSecond int           // notifications started per second at most; DefaultPerSecond when <= 0
	MaxWait   time.Duration // a notification that would wait longer for its turn is refused; DefaultMaxWait when <= 0
	Now       func() time.Time
	// After waits; time.After when nil (tests pass a fake clock's).
	After func(time.Duration) <-chan time.Time
}

// Paced spaces the notifications it passes on to at most PerSecond a
// second, over every caller (a bulk reset of a search result, several
// administrators, the API): each takes the next free slot and waits for
// it. One whose slot is more than MaxWait away is refused at once with a
// Throttled error, so a flood of resets queues at most
// PerSecond × MaxWait of them and never reaches the PBX faster.
type Paced struct {
	o    PacedOptions
	gap  time.Duration
	mu   sync.Mutex
	next time.Time
}

var _ Notifier = (*Paced)(nil)

// NewPaced returns the pacing wrapper around o.Notifier.
func NewPaced(o PacedOptions) *Paced {
	if o.PerSecond <= 0 {
		o.PerSecond = DefaultPerSecond
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	return &Paced{o: o, gap: time.Second / time.Duration(o.PerSecond)}
}

// Notify waits for the next slot and passes device on.
func (p *Paced) Notify(ctx context.Context, device string) error {
	now := p.o.Now()
	p.mu.Lock()
	slot := now
	if p.next.After(slot) {
		slot = p.next
	}
	wait := slot.Sub(now)
	if wait > p.o.MaxWait {
		p.mu.Unlock()
		return fault.New(fault.Throttled, "too many resets at once: at most %d a second, and %s of them are queued; try again in %s",
			p.o.PerSecond, p.o.MaxWait, (wait-p.o.MaxWait).Round(time.Second)+time.Second)
	}
	p.next = slot.Add(p.gap)
	p.mu.Unlock()
	if wait > 0 {
		select {
		case <-ctx.Done():
			return failure(ctx.Err(), "reset cancelled while waiting for its turn")
		case <-p.o.After(wait):
		}
	}
	return p.o.Notifier.Notify(ctx, device)
}
