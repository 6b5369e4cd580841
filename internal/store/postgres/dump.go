package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/dbdump"
	"github.com/capf-server/capf/internal/fault"
)

// Dump writes the database, as one consistent snapshot, to sink in the
// neutral form of dbdump, and returns its schema version: every table of
// the schema is read in one REPEATABLE READ, READ ONLY transaction, so
// the dump is the database as of that transaction's snapshot while other
// nodes keep writing. Node-local tables (dbdump.NodeLocal), generated
// columns and issuances.seq (PostgreSQL's insertion order, which the
// rows keep) are left out.
func (s *Store) Dump(ctx context.Context, sink dbdump.Sink) (schema int, err error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("postgres dump %s: %w", s.what, err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&schema); err != nil {
		return 0, fmt.Errorf("postgres dump: read schema version: %w", err)
	}
	tables, err := pgTables(ctx, tx)
	if err != nil {
		return 0, err
	}
	for _, t := range tables {
		if class, _ := dbdump.Classify(t.name); class == dbdump.NodeLocal {
			continue
		}
		if err := pgDumpTable(ctx, tx, t, sink); err != nil {
			return 0, err
		}
	}
	return schema, tx.Commit(ctx)
}

type pgTable struct {
	name    string
	columns []pgColumn
	pk      []string
}

type pgColumn struct {
	name      string
	typ       dbdump.Type
	generated bool
	identity  bool
}

// dumped reports whether the column goes into a dump.
func (c pgColumn) dumped(table string) bool {
	return !c.generated && !(table == "issuances" && c.name == "seq")
}

func pgTables(ctx context.Context, tx pgx.Tx) ([]pgTable, error) {
	rows, err := tx.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type, c.is_generated = 'ALWAYS', c.is_identity = 'YES'
		FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []pgTable
	for rows.Next() {
		var table, col, typ string
		var gen, ident bool
		if err := rows.Scan(&table, &col, &typ, &gen, &ident); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if dbdump.Internal(table) {
			continue
		}
		nt, err := pgNeutralType(typ)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("column %s.%s: %w", table, col, err)
		}
		if len(out) == 0 || out[len(out)-1].name != table {
			out = append(out, pgTable{name: table})
		}
		t := &out[len(out)-1]
		t.columns = append(t.columns, pgColumn{name: col, typ: nt, generated: gen, identity: ident})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for i := range out {
		pk, err := pgx.CollectRows(mustQuery(ctx, tx, `SELECT a.attname::text FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`, pgx.Identifier{out[i].name}.Sanitize()), pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("primary key of %s: %w", out[i].name, err)
		}
		out[i].pk = pk
	}
	slices.SortStableFunc(out, func(a, b pgTable) int { return dbdump.Rank(a.name) - dbdump.Rank(b.name) })
	return out, nil
}

// mustQuery runs a query whose error CollectRows reports.
func mustQuery(ctx context.Context, tx pgx.Tx, q string, args ...any) pgx.Rows {
	rows, _ := tx.Query(ctx, q, args...)
	return rows
}

func pgNeutralType(t string) (dbdump.Type, error) {
	switch t {
	case "bigint", "integer", "smallint":
		return dbdump.Int, nil
	case "text", "character varying":
		return dbdump.Text, nil
	case "bytea":
		return dbdump.Bytes, nil
	case "boolean":
		return dbdump.Bool, nil
	case "json", "jsonb":
		return dbdump.JSON, nil
	}
	return "", fmt.Errorf("type %q has no neutral form", t)
}

func pgDumpTable(ctx context.Context, tx pgx.Tx, t pgTable, sink dbdump.Sink) error {
	h := dbdump.Header{Table: t.name}
	var exprs []string
	for _, c := range t.columns {
		if !c.dumped(t.name) {
			continue
		}
		h.Columns = append(h.Columns, dbdump.Column{Name: c.name, Type: c.typ})
		e := pgx.Identifier{c.name}.Sanitize()
		if c.typ == dbdump.JSON {
			e += "::text"
		}
		exprs = append(exprs, e)
	}
	q := `SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + pgx.Identifier{t.name}.Sanitize()
	order := t.pk
	if t.name == "issuances" {
		order = []string{"seq"}
	}
	if len(order) > 0 {
		ids := make([]string, len(order))
		for i, o := range order {
			ids[i] = pgx.Identifier{o}.Sanitize()
		}
		q += ` ORDER BY ` + strings.Join(ids, ", ")
	}
	w, err := sink(h)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("dump %s: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("dump %s: %w", t.name, err)
		}
		if err := w.Write(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dump %s: %w", t.name, err)
	}
	return w.Close()
}

// RestoreOptions says how Restore treats a database that is not empty.
type RestoreOptions struct {
	// Force empties a database that holds data first (every table, the
	// node-local ones too) instead of refusing it.
	Force bool
	// NowMicros is the present, to tell a live node in the registry.
	NowMicros int64
}

// Restore fills the database from src in one transaction, so a failure
// changes nothing. It refuses, with a Conflict error that names why, a
// database that a node serves (the registry holds a node whose heartbeat
// has not expired) and, unless o.Force, one that holds data. The dump must
// come from a database at this binary's schema (either backend); a column
// of the dump that this schema lacks is an error, and a column the dump
// lacks takes its default (issuances.seq numbers the rows in their dump
// order). Identity sequences continue after the restored ids.
func (s *Store) Restore(ctx context.Context, src dbdump.Source, o RestoreOptions) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE expires_at > $1`, o.NowMicros).Scan(&live); err != nil {
			return fmt.Errorf("postgres restore: read the node registry: %w", err)
		}
		if live > 0 {
			return fault.Conflictf("the database %s is in use: %d capf serve node(s) are running on it; stop them first (nothing was restored)", s.what, live)
		}
		tables, err := pgTables(ctx, tx)
		if err != nil {
			return err
		}
		var full []string
		for _, t := range tables {
			if class, _ := dbdump.Classify(t.name); class == dbdump.NodeLocal || t.name == "fleet_parameters_state" || t.name == "ca_set_state" {
				continue
			}
			var any bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{t.name}.Sanitize()+`)`).Scan(&any); err != nil {
				return fmt.Errorf("postgres restore: %w", err)
			}
			if any {
				full = append(full, t.name)
			}
		}
		if len(full) > 0 && !o.Force {
			return fault.Conflictf("the database %s is not empty (%s hold rows): restore into an empty database, or pass --force to replace what it holds (nothing was restored)", s.what, strings.Join(full, ", "))
		}
		byName := map[string]pgTable{}
		all := make([]string, 0, len(tables))
		for _, t := range tables {
			byName[t.name] = t
			all = append(all, pgx.Identifier{t.name}.Sanitize())
		}
		if len(all) > 0 {
			if _, err := tx.Exec(ctx, `TRUNCATE `+strings.Join(all, ", ")+` RESTART IDENTITY CASCADE`); err != nil {
				return fmt.Errorf("postgres restore: empty the tables: %w", err)
			}
		}
		names := slices.Clone(src.Tables())
		slices.SortStableFunc(names, func(a, b string) int { return dbdump.Rank(a) - dbdump.Rank(b) })
		for _, name := range names {
			t, ok := byName[name]
			if !ok {
				return fmt.Errorf("postgres restore: the archive has a table %s that this schema does not", name)
			}
			if err := pgRestoreTable(ctx, tx, t, src); err != nil {
				return err
			}
		}
		return nil
	})
}

func pgRestoreTable(ctx context.Context, tx pgx.Tx, t pgTable, src dbdump.Source) error {
	r, c, err := src.Open(t.name)
	if err != nil {
		return err
	}
	defer c.Close()
	h := r.Header()
	target := make([]int, len(h.Columns))
	var cols []string
	for i, dc := range h.Columns {
		target[i] = -1
		for j, tc := range t.columns {
			if tc.name == dc.Name && !tc.generated {
				target[i] = j
			}
		}
		if target[i] < 0 {
			return fmt.Errorf("postgres restore: the archive's column %s.%s has no place in this schema", t.name, dc.Name)
		}
		cols = append(cols, dc.Name)
	}
	var rowErr error
	src2 := pgx.CopyFromFunc(func() ([]any, error) {
		row, err := r.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			rowErr = err
			return nil, err
		}
		for i, v := range row {
			tc := t.columns[target[i]]
			v, err := dbdump.Convert(h.Columns[i].Type, tc.typ, v)
			if err != nil {
				rowErr = fmt.Errorf("postgres restore %s.%s: %w", t.name, tc.name, err)
				return nil, rowErr
			}
			if s, ok := v.(string); ok && tc.typ == dbdump.JSON {
				v = json.RawMessage(s)
			}
			row[i] = v
		}
		return row, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, cols, src2); err != nil {
		if rowErr != nil {
			return rowErr
		}
		return fmt.Errorf("postgres restore %s: %w", t.name, err)
	}
	for _, c := range t.columns {
		if !c.identity {
			continue
		}
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX(%s) FROM %s), 0) + 1, false)`,
			pgx.Identifier{c.name}.Sanitize(), pgx.Identifier{t.name}.Sanitize())
		if _, err := tx.Exec(ctx, q, pgx.Identifier{t.name}.Sanitize(), c.name); err != nil {
			return fmt.Errorf("postgres restore %s: continue the identity of %s: %w", t.name, c.name, err)
		}
	}
	return nil
}
