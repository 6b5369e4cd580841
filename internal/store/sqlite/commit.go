package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// defaultMaxBatch is how many writes at most share one transaction when
// [Options.MaxBatch] is zero.
const defaultMaxBatch = 256

// DefaultCommitPace is the least time between the starts of two
// transactions while writers crowd the committer, when [Options.CommitPace]
// is zero; see [Options.CommitPace].
const DefaultCommitPace = 10 * time.Millisecond

// crowdSpan is how many paces after a batch of more than one write began
// the committer still paces: the writes of sessions that wait on a commit
// arrive in waves, and a batch of one between two waves is no sign that
// the crowd has gone.
const crowdSpan = 20

// paceEnough is how many queued writes end a pace early: their fsync is
// shared enough, and a crowd of writers that all wait on the committer (so
// that no more will come) is not held up for the rest of the pace.
const paceEnough = 32

// txFunc is one write: it runs inside the batch's transaction, within its
// own savepoint. ctx is the committer's context, never the caller's: a
// cancelled statement would interrupt SQLite, which rolls back the whole
// transaction, and with it the other callers' writes.
type txFunc func(ctx context.Context, tx *sql.Tx) error

// The states of a writeOp. A caller whose context ends can abandon its op
// only while it is queued; once the committer has taken it, the caller waits
// for the outcome of the commit.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// writeOp is one caller's write waiting for, or inside, a batch.
type writeOp struct {
	ctx   context.Context // the caller's, checked when the op is taken
	what  string          // for error messages
	fn    txFunc
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on it
}

// committer is the single goroutine that owns the writer connection. It
// takes every queued op (up to max), runs them in one IMMEDIATE
// transaction, each inside a savepoint, commits once, and reports each op's
// result to its caller.
type committer struct {
	db  *sql.DB
	max int
	// pace is the least time from the start of a batch of more than one
	// write to the start of the next; 0 for none.
	pace time.Duration

	// The savepoint statements, prepared on db.
	savepoint, rollbackTo, release *sql.Stmt
	// The statements prepared on db that the batch being committed has
	// bound to its transaction, boundTx; see stmt. Used by the committer
	// goroutine only.
	boundTx *sql.Tx
	bound   map[*sql.Stmt]*sql.Stmt

	mu     sync.Mutex
	queue  []*writeOp
	spare  []*writeOp // the previous batch's slice, reused
	closed bool
	wake   chan struct{} // capacity 1: there is work, or closed was set
	exited chan struct{} // closed when run returns

	// For tests: how many transactions committed, and how many ops they
	// held.
	batches atomic.Int64
	ops     atomic.Int64
	// For tests: how many times the committer paced, and a function it
	// calls as each batch begins, with the batch's size.
	paced atomic.Int64
	began atomic.Pointer[func(at time.Time, n int)]
}

// newCommitter starts the committer of db, which must have exactly one
// connection, used by no one else from now on. It prepares its statements
// on p, which closes them.
func newCommitter(ctx context.Context, db *sql.DB, p *preparer, max int, pace time.Duration) (*committer, error) {
	c := &committer{db: db, max: max, pace: pace, wake: make(chan struct{}, 1), exited: make(chan struct{}),
		bound: make(map[*sql.Stmt]*sql.Stmt)}
	c.savepoint = p.prepare(ctx, `SAVEPOINT op`)
	c.rollbackTo = p.prepare(ctx, `ROLLBACK TO op`)
	c.release = p.prepare(ctx, `RELEASE op`)
	if p.err != nil {
		return nil, p.err
	}
	go c.run()
	return c, nil
}

// stmt returns st, a statement prepared on db, for use in tx, the
// transaction of the batch being committed. It binds st to tx once a batch,
// not once a write: tx.StmtContext allocates, and tx keeps every statement
// it returns until it ends. Only the writes the committer runs may call it.
func (c *committer) stmt(ctx context.Context, tx *sql.Tx, st *sql.Stmt) *sql.Stmt {
	if tx != c.boundTx {
		clear(c.bound)
		c.boundTx = tx
	}
	b, ok := c.bound[st]
	if !ok {
		b = tx.StmtContext(ctx, st)
		c.bound[st] = b
	}
	return b
}

// errClosed is what a write on a closed store returns.
var errClosed = fault.New(fault.Unavailable, "sqlite store is closed")

// submit runs fn in a write transaction shared with other callers' writes
// and returns once that transaction has committed (nil) or fn's change has
// been rolled back (fn's error, or the transaction's). If ctx ends before
// the committer has taken the write, submit returns ctx's error and fn
// never runs; once the write is taken, submit waits for its outcome, so
// that a write that committed is never reported as failed.
func (c *committer) submit(ctx context.Context, what string, fn txFunc) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	op := &writeOp{ctx: ctx, what: what, fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	c.queue = append(c.queue, op)
	n := len(c.queue)
	c.mu.Unlock()
	if n == 1 || n == paceEnough {
		// take waits for the first; pause, for the paceEnough-th.
		c.signal()
	}

	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		return <-op.done
	}
}

// signal wakes the committer if it sleeps.
func (c *committer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close stops accepting writes, lets the committer finish every write
// queued so far, and waits for it to exit.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
	<-c.exited
}

// pending returns how many ops are queued and not yet taken (abandoned ones
// included).
func (c *committer) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// run commits batches until the committer is closed and its queue empty.
// While one batch commits, the next one gathers in the queue. While writers
// crowd the committer (a batch of more than one write began within the last
// crowdSpan paces), a transaction does not begin until c.pace after the
// previous one began: the writes arriving meanwhile share its fsync instead
// of a few of them paying for one each. A lone writer's batches hold one
// write each, and it never waits.
func (c *committer) run() {
	defer close(c.exited)
	var last, crowded time.Time // when the last batch began; until when writers crowd
	for {
		if c.pace > 0 && !last.IsZero() {
			if now := time.Now(); now.Before(crowded) {
				if d := last.Add(c.pace).Sub(now); d > 0 {
					c.paced.Add(1)
					c.pause(d)
				}
			}
		}
		batch, done := c.take()
		if done {
			return
		}
		last = time.Now()
		if len(batch) > 1 {
			crowded = last.Add(crowdSpan * c.pace)
		}
		if f := c.began.Load(); f != nil && len(batch) > 0 {
			(*f)(last, len(batch))
		}
		if len(batch) > 0 {
			c.commit(batch)
			clear(batch)
		}
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()
	}
}

// pause waits d, or less: until the queue holds paceEnough writes (their
// fsync is shared enough) or the committer is closed.
func (c *committer) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.mu.Lock()
		n, closed := len(c.queue), c.closed
		c.mu.Unlock()
		if n >= paceEnough || closed {
			return
		}
		select {
		case <-t.C:
			return
		case <-c.wake: // a write queued first, or the paceEnough-th, or closed
		}
	}
}

// take waits for queued ops and returns up to max of them, marked taken.
// Ops whose caller gave up are dropped; ops whose context ended are
// answered with its error and dropped. done is true once the committer is
// closed and nothing is left to do.
func (c *committer) take() (batch []*writeOp, done bool) {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			closed := c.closed
			c.mu.Unlock()
			if closed {
				return nil, true
			}
			<-c.wake
			continue
		}
		batch = c.spare[:0]
		c.spare = nil
		n := 0
		for n < len(c.queue) && len(batch) < c.max {
			op := c.queue[n]
			n++
			if !op.state.CompareAndSwap(opQueued, opTaken) {
				continue // abandoned by its caller
			}
			if err := op.ctx.Err(); err != nil {
				op.done <- fmt.Errorf("%s: %w", op.what, err)
				continue
			}
			batch = append(batch, op)
		}
		rest := copy(c.queue, c.queue[n:])
		clear(c.queue[rest:])
		c.queue = c.queue[:rest]
		c.mu.Unlock()
		return batch, false
	}
}

// commit runs batch in one transaction and answers every op. An op that
// fails is rolled back to its savepoint and gets its own error; the others
// commit. If the transaction cannot begin, dies under an op (SQLite rolls
// back the whole transaction on a few errors, such as a full disk) or
// cannot commit, no op is reported as written.
func (c *committer) commit(batch []*writeOp) {
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		for _, op := range batch {
			op.done <- fmt.Errorf("%s: begin: %w", op.what, err)
		}
		return
	}
	defer func() {
		// tx has closed its statements as it ended.
		clear(c.bound)
		c.boundTx = nil
	}()
	if len(batch) == 1 {
		// Alone in its transaction, an op needs no savepoint: on failure,
		// the whole transaction rolls back.
		op := batch[0]
		if err := call(ctx, tx, op); err != nil {
			_ = tx.Rollback()
			op.done <- err
			return
		}
		if err := tx.Commit(); err != nil {
			op.done <- fmt.Errorf("%s: commit: %w", op.what, err)
			return
		}
		c.batches.Add(1)
		c.ops.Add(1)
		op.done <- nil
		return
	}
	results := make([]error, len(batch))
	for i, op := range batch {
		opErr, txErr := c.runOp(ctx, tx, op)
		results[i] = opErr
		if txErr != nil {
			_ = tx.Rollback() // the transaction is most likely gone already
			for j, op := range batch {
				if results[j] != nil && j <= i {
					op.done <- results[j]
				} else {
					op.done <- fmt.Errorf("%s: transaction aborted: %w", op.what, txErr)
				}
			}
			return
		}
	}
	if err := tx.Commit(); err != nil {
		for i, op := range batch {
			if results[i] == nil {
				results[i] = fmt.Errorf("%s: commit: %w", op.what, err)
			}
			op.done <- results[i]
		}
		return
	}
	c.batches.Add(1)
	c.ops.Add(int64(len(batch)))
	for i, op := range batch {
		op.done <- results[i]
	}
}

// runOp runs op inside a savepoint of tx. opErr is op's error, after which
// its changes are rolled back; txErr is not nil if the transaction itself
// failed, which the caller must then abandon.
func (c *committer) runOp(ctx context.Context, tx *sql.Tx, op *writeOp) (opErr, txErr error) {
	if _, err := c.stmt(ctx, tx, c.savepoint).ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	opErr = call(ctx, tx, op)
	if opErr != nil {
		// If SQLite rolled back the whole transaction, the savepoint is
		// gone and this fails: the batch must not go on in autocommit mode.
		if _, err := c.stmt(ctx, tx, c.rollbackTo).ExecContext(ctx); err != nil {
			return opErr, fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := c.stmt(ctx, tx, c.release).ExecContext(ctx); err != nil {
		return opErr, fmt.Errorf("release savepoint: %w", err)
	}
	return opErr, nil
}

// call runs op's function, turning a panic into an error so that one bad
// write cannot take the committer, and every caller waiting on it, down.
func call(ctx context.Context, tx *sql.Tx, op *writeOp) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: panic: %v", op.what, r)
		}
	}()
	return op.fn(ctx, tx)
}
