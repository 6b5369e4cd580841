package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/capf-server/capf/internal/dbdump"
)

// Dump writes the database at path, as one consistent snapshot, to sink
// in the neutral form of dbdump, and returns its schema version. It first
// copies the database with VACUUM INTO into a file in tmpDir (a read
// transaction of its own: writers carry on, and the copy is the database
// as of one instant), then reads the copy, which nothing else writes.
// Node-local tables (dbdump.NodeLocal) are left out.
func Dump(ctx context.Context, path, tmpDir string, sink dbdump.Sink) (schema int, err error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("sqlite store: %w", err)
	}
	live, err := sql.Open("sqlite", strings.Replace(dsn(path, DefaultBusyTimeout, false), "&_pragma=query_only(1)", "", 1))
	if err != nil {
		return 0, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	defer live.Close()
	live.SetMaxOpenConns(1)
	snap := filepath.Join(tmpDir, "snapshot.db")
	if _, err := live.ExecContext(ctx, `VACUUM INTO ?`, snap); err != nil {
		return 0, fmt.Errorf("sqlite store %s: snapshot (VACUUM INTO): %w", path, err)
	}
	defer os.Remove(snap)
	db, err := openReader(ctx, dsn(snap, DefaultBusyTimeout, false)+"&mode=ro", 1)
	if err != nil {
		return 0, fmt.Errorf("sqlite snapshot: %w", err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&schema); err != nil {
		return 0, fmt.Errorf("sqlite snapshot: read schema version: %w", err)
	}
	tables, err := listTables(ctx, db)
	if err != nil {
		return 0, err
	}
	for _, t := range tables {
		if class, _ := dbdump.Classify(t.name); class == dbdump.NodeLocal {
			continue
		}
		if err := dumpTable(ctx, db, t, sink); err != nil {
			return 0, err
		}
	}
	return schema, nil
}

type tableInfo struct {
	name    string
	rowid   bool
	columns []columnInfo
}

type columnInfo struct {
	name string
	typ  dbdump.Type
}

// listTables lists the data tables of db with their columns, in restore
// order.
func listTables(ctx context.Context, db *sql.DB) ([]tableInfo, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []tableInfo
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		if dbdump.Internal(name) {
			continue
		}
		out = append(out, tableInfo{name: name, rowid: !strings.Contains(strings.ToUpper(ddl), "WITHOUT ROWID")})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for i := range out {
		cols, err := db.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`, out[i].name)
		if err != nil {
			return nil, fmt.Errorf("columns of %s: %w", out[i].name, err)
		}
		for cols.Next() {
			var name, typ string
			if err := cols.Scan(&name, &typ); err != nil {
				cols.Close()
				return nil, fmt.Errorf("columns of %s: %w", out[i].name, err)
			}
			nt, err := neutralType(typ)
			if err != nil {
				cols.Close()
				return nil, fmt.Errorf("column %s.%s: %w", out[i].name, name, err)
			}
			out[i].columns = append(out[i].columns, columnInfo{name, nt})
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", out[i].name, err)
		}
	}
	slices.SortStableFunc(out, func(a, b tableInfo) int { return dbdump.Rank(a.name) - dbdump.Rank(b.name) })
	return out, nil
}

// neutralType maps the declared type of a STRICT table's column.
func neutralType(decl string) (dbdump.Type, error) {
	switch strings.ToUpper(decl) {
	case "INTEGER", "INT":
		return dbdump.Int, nil
	case "TEXT":
		return dbdump.Text, nil
	case "BLOB":
		return dbdump.Bytes, nil
	}
	return "", fmt.Errorf("declared type %q has no neutral form", decl)
}

// neutralColumn is the name and value a column has in the neutral form
// where SQLite's schema differs from PostgreSQL's, whose names the dump
// uses: a token's owner is the account's key, its name in lower case.
func neutralColumn(table, col string) (name, expr string) {
	if table == "api_tokens" && col == "owner" {
		return "owner_key", `lower("owner")`
	}
	return col, quote(col)
}

func dumpTable(ctx context.Context, db *sql.DB, t tableInfo, sink dbdump.Sink) error {
	h := dbdump.Header{Table: t.name}
	exprs := make([]string, len(t.columns))
	for i, c := range t.columns {
		name, expr := neutralColumn(t.name, c.name)
		h.Columns = append(h.Columns, dbdump.Column{Name: name, Type: c.typ})
		exprs[i] = expr
	}
	q := `SELECT ` + strings.Join(exprs, ", ") + ` FROM ` + quote(t.name)
	if t.rowid {
		q += ` ORDER BY rowid`
	}
	w, err := sink(h)
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("dump %s: %w", t.name, err)
	}
	defer rows.Close()
	vals := make([]any, len(t.columns))
	ptrs := make([]any, len(t.columns))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
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

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// Restore creates the database at path (which must not exist) with this
// binary's schema and fills it from src, in one transaction: a failure
// leaves no file. The dump must come from a database at this binary's
// schema (either backend): a column of the dump that this schema lacks
// is an error unless it is a PostgreSQL-only ordering column
// (issuances.seq, whose order the rows keep), and a column the dump lacks
// takes its default.
func Restore(ctx context.Context, path string, src dbdump.Source) (err error) {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("sqlite restore: %s exists", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite restore: %w", err)
	}
	st, err := Open(ctx, path, Options{})
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("sqlite restore: %w", err)
	}
	defer func() {
		if err != nil {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(path + suffix)
			}
		}
	}()
	db, err := sql.Open("sqlite", dsn(path, DefaultBusyTimeout, true))
	if err != nil {
		return fmt.Errorf("sqlite restore: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tables, err := listTables(ctx, db)
	if err != nil {
		return err
	}
	byName := map[string]tableInfo{}
	for _, t := range tables {
		byName[t.name] = t
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite restore: %w", err)
	}
	defer tx.Rollback()
	names := slices.Clone(src.Tables())
	slices.SortStableFunc(names, func(a, b string) int { return dbdump.Rank(a) - dbdump.Rank(b) })
	owners := map[string]string{} // account key -> name, for api_tokens.owner
	for _, name := range names {
		t, ok := byName[name]
		if !ok {
			return fmt.Errorf("sqlite restore: the archive has a table %s that this schema does not", name)
		}
		if err := restoreTable(ctx, tx, t, src, owners); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite restore: commit: %w", err)
	}
	return nil
}

func restoreTable(ctx context.Context, tx *sql.Tx, t tableInfo, src dbdump.Source, owners map[string]string) error {
	r, c, err := src.Open(t.name)
	if err != nil {
		return err
	}
	defer c.Close()
	h := r.Header()
	// The target column (by SQLite name) of each dump column, or -1.
	target := make([]int, len(h.Columns))
	var cols []string
	for i, dc := range h.Columns {
		target[i] = -1
		name := dc.Name
		if t.name == "api_tokens" && name == "owner_key" {
			name = "owner"
		}
		for j, tc := range t.columns {
			if tc.name == name {
				target[i] = j
			}
		}
		if target[i] < 0 {
			if t.name == "issuances" && name == "seq" {
				continue // PostgreSQL's insertion order; rows come in it
			}
			return fmt.Errorf("sqlite restore: the archive's column %s.%s has no place in this schema", t.name, dc.Name)
		}
		cols = append(cols, quote(name))
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+quote(t.name)); err != nil {
		return fmt.Errorf("sqlite restore %s: %w", t.name, err)
	}
	ins := `INSERT INTO ` + quote(t.name) + ` (` + strings.Join(cols, ", ") + `) VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)`
	stmt, err := tx.PrepareContext(ctx, ins)
	if err != nil {
		return fmt.Errorf("sqlite restore %s: %w", t.name, err)
	}
	defer stmt.Close()
	args := make([]any, 0, len(cols))
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		args = args[:0]
		for i, v := range row {
			if target[i] < 0 {
				continue
			}
			tc := t.columns[target[i]]
			v, err := dbdump.Convert(h.Columns[i].Type, tc.typ, v)
			if err != nil {
				return fmt.Errorf("sqlite restore %s.%s: %w", t.name, tc.name, err)
			}
			if t.name == "accounts" && tc.name == "name" {
				if s, ok := v.(string); ok {
					owners[strings.ToLower(s)] = s
				}
			}
			if t.name == "api_tokens" && tc.name == "owner" {
				if s, ok := v.(string); ok {
					if n, ok := owners[s]; ok {
						v = n
					}
				}
			}
			args = append(args, v)
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite restore %s: %w", t.name, err)
		}
	}
	return nil
}
