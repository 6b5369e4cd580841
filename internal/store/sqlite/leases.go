package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lease"
)

// The store implements the lease and node-registry contracts.
var (
	_ lease.Store   = (*Store)(nil)
	_ cluster.Store = (*Store)(nil)
)

// leaseColumns lists the leases columns in the order scanLease reads them.
const leaseColumns = `name, holder, term, acquired_at, expires_at`

// acquireLeaseSQL takes a lease that has no row, was released, has
// expired, or is the holder's own, starting a new term; otherwise it
// returns no row. The single writer makes it atomic.
const acquireLeaseSQL = `INSERT INTO leases (name, holder, term, acquired_at, expires_at) VALUES (?1, ?2, 1, ?3, ?4)
	ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, term = leases.term + 1,
		acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
	WHERE leases.holder = '' OR leases.expires_at <= ?3 OR leases.holder = ?2
	RETURNING ` + leaseColumns

func scanLease(row interface{ Scan(...any) error }) (lease.Lease, error) {
	var (
		l                 lease.Lease
		acquired, expires sql.NullInt64
	)
	if err := row.Scan(&l.Name, &l.Holder, &l.Term, &acquired, &expires); err != nil {
		return lease.Lease{}, err
	}
	l.Acquired, l.Expires = fromMicros(acquired), fromMicros(expires)
	return l, nil
}

// checkLease returns an Invalid error for a request no lease can answer.
func checkLease(name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return fault.Invalidf("lease: no name")
	case holder == "":
		return fault.Invalidf("lease %s: no holder", name)
	case ttl <= 0:
		return fault.Invalidf("lease %s: term %s is not positive", name, ttl)
	}
	return nil
}

// AcquireLease implements lease.Store.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (lease.Lease, bool, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return lease.Lease{}, false, err
	}
	what := fmt.Sprintf("acquire lease %s", name)
	var (
		l  lease.Lease
		ok bool
	)
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		l, err = scanLease(tx.QueryRowContext(ctx, acquireLeaseSQL, name, holder, at.UnixMicro(), at.Add(ttl).UnixMicro()))
		if ok = err == nil; ok {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if l, err = scanLease(tx.QueryRowContext(ctx, `SELECT `+leaseColumns+` FROM leases WHERE name = ?`, name)); err != nil {
			return fmt.Errorf("%s: read holder: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return lease.Lease{}, false, err
	}
	return l, ok, nil
}

// RenewLease implements lease.Store.
func (s *Store) RenewLease(ctx context.Context, name, holder string, term int64, at time.Time, ttl time.Duration) (lease.Lease, error) {
	if err := checkLease(name, holder, ttl); err != nil {
		return lease.Lease{}, err
	}
	what := fmt.Sprintf("renew lease %s", name)
	var l lease.Lease
	err := s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		l, err = scanLease(tx.QueryRowContext(ctx, `UPDATE leases SET expires_at = ?
			WHERE name = ? AND holder = ? AND term = ? AND expires_at > ? RETURNING `+leaseColumns,
			at.Add(ttl).UnixMicro(), name, holder, term, at.UnixMicro()))
		if errors.Is(err, sql.ErrNoRows) {
			return fault.Conflictf("%s: %s no longer holds term %d (taken by another node, expired or released)", what, holder, term)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return l, err
}

// ReleaseLease implements lease.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string, term int64, at time.Time) error {
	what := fmt.Sprintf("release lease %s", name)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE leases SET holder = '', expires_at = ? WHERE name = ? AND holder = ? AND term = ?`,
			at.UnixMicro(), name, holder, term); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// ListLeases implements lease.Store.
func (s *Store) ListLeases(ctx context.Context) ([]lease.Lease, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+leaseColumns+` FROM leases ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	defer rows.Close()
	var out []lease.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}

// RegisterNode implements cluster.Store.
func (s *Store) RegisterNode(ctx context.Context, n cluster.Node) error {
	if n.ID == "" {
		return fault.Invalidf("register node: no id")
	}
	what := fmt.Sprintf("register node %s", n.ID)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO nodes (id, addresses, version, started_at, last_seen, expires_at, sessions)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET addresses = excluded.addresses, version = excluded.version,
				started_at = excluded.started_at, last_seen = excluded.last_seen, expires_at = excluded.expires_at,
				sessions = excluded.sessions`,
			n.ID, strings.Join(n.Addresses, "\n"), n.Version, n.Started.UnixMicro(), n.LastSeen.UnixMicro(),
			n.Expires.UnixMicro(), n.Sessions); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// HeartbeatNode implements cluster.Store.
func (s *Store) HeartbeatNode(ctx context.Context, id string, at, expires time.Time, sessions int) error {
	what := fmt.Sprintf("heartbeat of node %s", id)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET last_seen = ?, expires_at = ?, sessions = ? WHERE id = ?`,
			at.UnixMicro(), expires.UnixMicro(), sessions, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fault.NotFoundf("%s: the node is not registered", what)
		}
		return nil
	})
}

// ListNodes implements cluster.Store.
func (s *Store) ListNodes(ctx context.Context) ([]cluster.Node, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, addresses, version, started_at, last_seen, expires_at, sessions FROM nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []cluster.Node
	for rows.Next() {
		var (
			n                      cluster.Node
			addrs                  string
			started, seen, expires sql.NullInt64
		)
		if err := rows.Scan(&n.ID, &addrs, &n.Version, &started, &seen, &expires, &n.Sessions); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		if addrs != "" {
			n.Addresses = strings.Split(addrs, "\n")
		}
		n.Started, n.LastSeen, n.Expires = fromMicros(started), fromMicros(seen), fromMicros(expires)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}

// ForgetNode implements cluster.Store.
func (s *Store) ForgetNode(ctx context.Context, id string, at time.Time, ev device.AuditEvent) error {
	what := fmt.Sprintf("forget node %s", id)
	return s.submit(ctx, what, func(ctx context.Context, tx *sql.Tx) error {
		var expires sql.NullInt64
		switch err := tx.QueryRowContext(ctx, `SELECT expires_at FROM nodes WHERE id = ?`, id).Scan(&expires); {
		case errors.Is(err, sql.ErrNoRows):
			return fault.NotFoundf("%s: no node with this id is registered", what)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		if exp := fromMicros(expires); at.Before(exp) {
			return fault.Conflictf("%s: the node is alive: its registration expires at %s unless it heartbeats first; forget it after that",
				what, exp.UTC().Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE id = ?`, id); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}
