package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
)

// queryer is what reading the fleet parameters needs of a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readFleet reads the fleet parameters through q; lock takes the state
// row's lock first, so that writers take turns.
func readFleet(ctx context.Context, q queryer, lock bool) (system.FleetParameters, error) {
	fp := system.FleetParameters{Values: map[string]json.RawMessage{}}
	query := `SELECT version, imported, imported_keys::text FROM fleet_parameters_state WHERE id = 1`
	if lock {
		query += ` FOR UPDATE`
	}
	var keys string
	if err := q.QueryRow(ctx, query).Scan(&fp.Version, &fp.Imported, &keys); err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: %w", err)
	}
	if err := json.Unmarshal([]byte(keys), &fp.ImportedKeys); err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: the imported keys: %w", err)
	}
	rows, err := q.Query(ctx, `SELECT name, value::text FROM fleet_parameters`)
	if err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return system.FleetParameters{}, fmt.Errorf("read fleet parameters: %w", err)
		}
		fp.Values[name] = json.RawMessage(value)
	}
	if err := rows.Err(); err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: %w", err)
	}
	return fp, nil
}

// FleetParameters implements system.Store: the parameters and the counter
// from one snapshot.
func (s *Store) FleetParameters(ctx context.Context) (system.FleetParameters, error) {
	var fp system.FleetParameters
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		fp, err = readFleet(ctx, tx, false)
		return err
	})
	if err != nil {
		return system.FleetParameters{}, err
	}
	return fp, nil
}

// FleetParametersVersion implements system.Store.
func (s *Store) FleetParametersVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM fleet_parameters_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read fleet parameters version: %w", err)
	}
	return v, nil
}

// UpdateFleetParameters implements system.Store. The transaction is READ
// COMMITTED and locks the state row before it reads: a second writer waits
// for the first to commit and then reads what it wrote, so writers of
// different keys both stand, and change runs again only after a deadlock.
// The commit notifies system.FleetChannel with the new version.
func (s *Store) UpdateFleetParameters(ctx context.Context, change func(cur system.FleetParameters) (system.FleetChange, error)) (system.FleetParameters, error) {
	var out system.FleetParameters
	err := s.writeRowCAS(ctx, "update fleet parameters", func(ctx context.Context, tx pgx.Tx) error {
		cur, err := readFleet(ctx, tx, true)
		if err != nil {
			return err
		}
		ch, err := change(cur)
		if err != nil {
			return err
		}
		out = cur
		out.Values = maps.Clone(cur.Values) // cur stays as change saw it
		if ch.Empty() || (len(ch.Set) == 0 && !ch.Marks(cur)) {
			return nil
		}
		for name, v := range ch.Set {
			if name == "" {
				return fault.Invalidf("fleet parameter: empty name")
			}
			if !json.Valid(v) {
				return fault.InvalidField(name, "fleet parameter %s: the value is not JSON", name)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(ch.Set)) {
			if _, err := tx.Exec(ctx, `INSERT INTO fleet_parameters (name, value) VALUES ($1, $2::json)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, string(ch.Set[name])); err != nil {
				return fmt.Errorf("store fleet parameter %s: %w", name, err)
			}
			out.Values[name] = ch.Set[name]
		}
		if len(ch.Set) > 0 {
			out.Version++
		}
		out.Imported = out.Imported || ch.MarkImported || len(ch.ImportedKeys) > 0
		out.ImportedKeys = ch.MergeImported(cur)
		keys, err := json.Marshal(out.ImportedKeys)
		if err != nil {
			return fmt.Errorf("store fleet parameters: the imported keys: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE fleet_parameters_state SET version = $1, imported = $2, imported_keys = $3::jsonb WHERE id = 1`,
			out.Version, out.Imported, string(keys)); err != nil {
			return fmt.Errorf("store fleet parameters version: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, system.FleetChannel, strconv.FormatInt(out.Version, 10)); err != nil {
			return fmt.Errorf("notify the fleet parameters change: %w", err)
		}
		return insertAudit(ctx, tx, ch.Audit)
	})
	if err != nil {
		return system.FleetParameters{}, err
	}
	return out, nil
}

// Watch backoff: a lost listening connection is opened again after
// watchMinBackoff, doubling up to watchMaxBackoff while it keeps failing.
const (
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 10 * time.Second
)

// WatchFleetParameters listens on system.FleetChannel on a connection of
// its own (taken out of the pool) and calls changed after each
// notification, until ctx ends. When the connection breaks it connects
// again, backing off while that fails, and calls changed once it listens
// again, since a change may have committed in between; log hears of each
// loss. changed is called from one goroutine at a time and must not
// block for long. A notification of another schema of the same database
// also calls it: the caller re-reads the counter, which costs one query.
func (s *Store) WatchFleetParameters(ctx context.Context, changed func(), log *slog.Logger) {
	backoff := watchMinBackoff
	first := true
	for ctx.Err() == nil {
		err := s.listen(ctx, func() {
			backoff = watchMinBackoff
			if !first {
				changed()
			}
			first = false
		}, changed)
		if ctx.Err() != nil {
			return
		}
		log.Warn("fleet parameters: lost the notification connection; the counter is still polled", "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// listen runs one listening connection until it fails or ctx ends:
// listening is called once LISTEN took effect, changed after each
// notification.
func (s *Store) listen(ctx context.Context, listening, changed func()) error {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection: %w", err)
	}
	conn := pc.Hijack() // its own from now on: the pool never hands it out
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{system.FleetChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return ctx.Err()
			}
			return fmt.Errorf("wait for a notification: %w", err)
		}
		changed()
	}
}
