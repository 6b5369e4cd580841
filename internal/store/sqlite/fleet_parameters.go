package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
)

// querier is what reading the fleet parameters needs of a connection or
// a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readFleet reads the fleet parameters through q.
func readFleet(ctx context.Context, q querier) (system.FleetParameters, error) {
	fp := system.FleetParameters{Values: map[string]json.RawMessage{}}
	var imported int64
	var keys string
	if err := q.QueryRowContext(ctx, `SELECT version, imported, imported_keys FROM fleet_parameters_state WHERE id = 1`).
		Scan(&fp.Version, &imported, &keys); err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: %w", err)
	}
	fp.Imported = imported != 0
	if err := json.Unmarshal([]byte(keys), &fp.ImportedKeys); err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: the imported keys: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT name, value FROM fleet_parameters`)
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
// from one read transaction.
func (s *Store) FleetParameters(ctx context.Context) (system.FleetParameters, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return system.FleetParameters{}, fmt.Errorf("read fleet parameters: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return readFleet(ctx, tx)
}

// FleetParametersVersion implements system.Store.
func (s *Store) FleetParametersVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.read.QueryRowContext(ctx, `SELECT version FROM fleet_parameters_state WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read fleet parameters version: %w", err)
	}
	return v, nil
}

// UpdateFleetParameters implements system.Store. The single writer runs
// change inside the write transaction, so it reads what every earlier
// change committed and no other change runs between its read and its
// write.
func (s *Store) UpdateFleetParameters(ctx context.Context, change func(cur system.FleetParameters) (system.FleetChange, error)) (system.FleetParameters, error) {
	var out system.FleetParameters
	err := s.submit(ctx, "update fleet parameters", func(ctx context.Context, tx *sql.Tx) error {
		cur, err := readFleet(ctx, tx)
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
		if err := checkFleetChange(ch); err != nil {
			return err
		}
		for _, name := range slices.Sorted(maps.Keys(ch.Set)) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO fleet_parameters (name, value) VALUES (?, ?)
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
		imported := 0
		if out.Imported {
			imported = 1
		}
		keys, err := json.Marshal(out.ImportedKeys)
		if err != nil {
			return fmt.Errorf("store fleet parameters: the imported keys: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE fleet_parameters_state SET version = ?, imported = ?, imported_keys = ? WHERE id = 1`,
			out.Version, imported, string(keys)); err != nil {
			return fmt.Errorf("store fleet parameters version: %w", err)
		}
		return insertAudit(ctx, tx, ch.Audit)
	})
	if err != nil {
		return system.FleetParameters{}, err
	}
	return out, nil
}

// checkFleetChange refuses a change whose names or values a store cannot
// keep: an empty name, or a value that is not JSON.
func checkFleetChange(ch system.FleetChange) error {
	for name, v := range ch.Set {
		if name == "" {
			return fault.Invalidf("fleet parameter: empty name")
		}
		if !json.Valid(v) {
			return fault.InvalidField(name, "fleet parameter %s: the value is not JSON", name)
		}
	}
	return nil
}
