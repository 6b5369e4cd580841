// Package lease runs the once-per-fleet jobs of a CAPF cluster (the
// stale-attempt sweeper, the trust-file sync, and every later periodic
// job) on exactly one node at a time.
//
// A lease is a row in the shared database per job name: its holder (a node
// id), its term (a generation that moves on every time the lease is taken
// anew) and its expiry. A node takes a free or expired lease, renews it
// while it runs the job, and gives it back when it stops; a node that dies
// stops renewing, and another takes the lease once it expires. Unlike a
// bare advisory lock, a lease has an expiry that every node can see, so
// a node that lost its database connection, not its life, knows when it
// must stop (ADR 0010).
//
// [Runner] runs a job only while its node holds the job's lease, and
// cancels the job's context the moment a renewal fails or the lease could
// have expired. [Store] is what the runner needs from the database; both
// backends implement it and pass store/storetest.RunLeases.
package lease

import (
	"context"
	"time"
)

// Lease is the row of one job name.
type Lease struct {
	// Name is the job's name, e.g. "sweeper".
	Name string
	// Holder is the node id that holds or last held the lease; "" after a
	// release.
	Holder string
	// Term moves on by one every time the lease is acquired (by anyone,
	// the holder included), never on renewal: a holder's renewal names the
	// term it acquired, so a holder that lost the lease, even to itself
	// after a restart, can no longer renew.
	Term int64
	// Acquired is when the current term began.
	Acquired time.Time
	// Expires is when the lease is free for anyone to take unless its
	// holder renews it first.
	Expires time.Time
}

// HeldAt reports whether the lease is held by someone at t: it has a
// holder and has not expired.
func (l Lease) HeldAt(t time.Time) bool { return l.Holder != "" && t.Before(l.Expires) }

// Store keeps the leases. Every backend implements it and passes the
// contract suite in store/storetest (RunLeases).
//
// Guarantees:
//   - Every method is safe for concurrent use by any number of nodes
//     sharing the database, and honours ctx.
//   - No method takes a closure, so nothing of the caller's runs twice;
//     each method is one atomic compare-and-swap on the lease row (on
//     PostgreSQL one statement, which the database re-checks on the row's
//     newest version; a transaction the store retries after a deadlock
//     runs the same statement again and changes nothing more).
//   - Times are the caller's: at is the caller's clock, so the nodes'
//     clocks must agree to well within a lease term (NTP). Times come
//     back in UTC at microsecond precision.
//   - ttl must be positive (Invalid otherwise).
type Store interface {
	// AcquireLease takes lease name for holder until at+ttl, when at at
	// it has no row, was released, has expired, or is held by holder
	// itself. It starts a new term (Term+1; 1 for a new row), sets
	// Acquired to at, and returns the lease and true. When another holder
	// holds it at at, it changes nothing and returns that lease and false.
	// Of several nodes acquiring at once exactly one wins.
	AcquireLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (Lease, bool, error)
	// RenewLease extends lease name to at+ttl if holder holds it in term
	// and it has not expired at at, and returns it. Otherwise it changes
	// nothing and returns a Conflict error: the lease is lost (another
	// node took it, or it expired, or it was released), and the job that
	// held it must stop.
	RenewLease(ctx context.Context, name, holder string, term int64, at time.Time, ttl time.Duration) (Lease, error)
	// ReleaseLease gives lease name up if holder holds it in term: the
	// holder becomes "" and the lease expires at at, so anyone may take
	// it at once. A lease not so held is left alone, without error.
	ReleaseLease(ctx context.Context, name, holder string, term int64, at time.Time) error
	// ListLeases returns every lease row, by name.
	ListLeases(ctx context.Context) ([]Lease, error)
}
