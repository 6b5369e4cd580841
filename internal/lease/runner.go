package lease

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// DefaultTerm is how long a lease lasts unless renewed. A job moves to
// another node at most this long (plus that node's next attempt to
// acquire, a third of it) after its node died.
const DefaultTerm = 30 * time.Second

// Job is a periodic job that must run on one node of the fleet at a time.
type Job struct {
	// Name is the lease's name.
	Name string
	// Every is the pause between the end of one run and the start of the
	// next; a run starts as soon as the lease is taken.
	Every time.Duration
	// Run does the job once. Its ctx ends when the lease is lost (or the
	// runner stops); Run must return soon after.
	Run func(ctx context.Context) error
}

// Options configure a [Runner].
type Options struct {
	Store Store
	// Holder is this node's id.
	Holder string
	// Term is how long an acquisition or renewal holds a lease;
	// DefaultTerm when zero. The runner renews every third of it.
	Term time.Duration
	// Now is the clock of the lease times; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger // nil: slog.Default()
}

// Runner runs jobs under their leases on one node.
type Runner struct {
	o Options
}

// NewRunner returns a runner for the node o.Holder.
func NewRunner(o Options) *Runner {
	if o.Term <= 0 {
		o.Term = DefaultTerm
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Runner{o: o}
}

// Term returns the lease term the runner uses.
func (r *Runner) Term() time.Duration { return r.o.Term }

// Run runs job whenever this node holds its lease, until ctx ends: it tries
// to acquire the lease every third of a term; once it holds it, it runs the
// job (at once, then every job.Every) and renews the lease every third of
// a term. When a renewal is refused (another node took the lease) or has
// failed long enough that the lease may expire before the next try (a
// third of a term before its expiry), it cancels the job's context, waits
// for the job to return, and goes back to acquiring. When ctx ends it
// stops the job, waits for it, and releases the lease so that another
// node takes it at once.
func (r *Runner) Run(ctx context.Context, job Job) {
	step := r.o.Term / 3
	log := r.o.Logger.With("lease", job.Name)
	for {
		l, ok, err := r.o.Store.AcquireLease(ctx, job.Name, r.o.Holder, r.o.Now(), r.o.Term)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warn("acquire lease", "err", err)
		case ok:
			log.Info("lease acquired: running the job on this node", "term", l.Term, "expires", l.Expires)
			r.hold(ctx, job, l, log)
			if ctx.Err() != nil {
				return
			}
		}
		if !sleep(ctx, step) {
			return
		}
	}
}

// hold runs job while l is held, renewing it; it returns when the lease is
// lost or ctx ends (then it releases the lease).
func (r *Runner) hold(ctx context.Context, job Job, l Lease, log *slog.Logger) {
	step := r.o.Term / 3
	jobCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.loop(jobCtx, job, log) })
	defer wg.Wait()
	defer stop()
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop()
			wg.Wait()
			// ctx has ended: give the lease back under a short context
			// of its own, so another node need not wait for its expiry.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), step)
			defer cancel()
			if err := r.o.Store.ReleaseLease(rctx, job.Name, r.o.Holder, l.Term, r.o.Now()); err != nil {
				log.Warn("release lease", "err", err)
			}
			return
		case <-t.C:
		}
		now := r.o.Now()
		renewed, err := r.o.Store.RenewLease(ctx, job.Name, r.o.Holder, l.Term, now, r.o.Term)
		switch {
		case err == nil:
			l = renewed
			continue
		case ctx.Err() != nil:
			continue // released above
		case fault.KindOf(err) == fault.Conflict:
			log.Warn("lease lost: stopping the job on this node", "term", l.Term, "err", err)
			return
		case !r.o.Now().Before(l.Expires.Add(-step)):
			log.Warn("lease not renewed in time: stopping the job on this node", "term", l.Term, "expires", l.Expires, "err", err)
			return
		default:
			log.Warn("renew lease (will try again before it expires)", "term", l.Term, "expires", l.Expires, "err", err)
		}
	}
}

// loop runs job now and every job.Every until ctx ends.
func (r *Runner) loop(ctx context.Context, job Job, log *slog.Logger) {
	for {
		if err := runOnce(ctx, job); err != nil && ctx.Err() == nil {
			log.Warn("job failed", "err", err)
		}
		if !sleep(ctx, job.Every) {
			return
		}
	}
}

// runOnce runs the job once, turning a panic into an error: a job's bug
// must not take the node down with the lease still held.
func runOnce(ctx context.Context, job Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("job %s panicked: %v", job.Name, p)
		}
	}()
	return job.Run(ctx)
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
