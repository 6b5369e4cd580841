// Package dbdump is the backend-neutral form of a CAPF database, the part
// of a backup archive that either backend can write and either can read
// back: one stream per table, a header line naming the table and its
// columns with a neutral type each, then one JSON array per row.
//
// Which tables travel is decided here, not in the backends: [Tables]
// classifies every table of the schema as [Travel] (the fleet: devices,
// history, accounts, keys, parameters…) or [NodeLocal] (what belongs to
// the nodes that run now and means nothing to a restored server: the node
// registry, leases, browser sessions, the rate-limit window). A table no
// entry names still travels (a new table is never silently dropped), and
// TestDumpRestoreAcrossBackends in internal/store fails, on either
// backend, until it is classified.
package dbdump

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Type is a column's neutral type.
type Type string

// The neutral types. A value of each is, in a row: Int an int64, Text a
// string, Bytes a []byte, Bool a bool, JSON a string holding JSON text;
// any may be nil (NULL).
const (
	Int   Type = "int"
	Text  Type = "text"
	Bytes Type = "bytes"
	Bool  Type = "bool"
	JSON  Type = "json"
)

// Class says whether a table's rows go into a backup.
type Class int

const (
	// Travel tables are dumped and restored.
	Travel Class = iota
	// NodeLocal tables describe the nodes running now; a backup leaves
	// them out and a restored server starts with them empty.
	NodeLocal
)

// Tables classifies every table of the CAPF schema (both backends name
// the same tables). Order matters: a table comes after the tables its
// foreign keys point to, so that a restore inserts parents first. Tables
// this list does not name are dumped after these, in name order.
var Tables = []struct {
	Name  string
	Class Class
	Why   string
}{
	{"devices", Travel, "the fleet"},
	{"attempts", Travel, "each device's history"},
	{"issuances", Travel, "every certificate that left the CA"},
	{"fetched_certificates", Travel, "certificates fetched from phones"},
	{"device_resets", Travel, "each device's latest reset and its outcome"},
	{"audit_events", Travel, "the audit trail"},
	{"accounts", Travel, "administrators"},
	{"api_tokens", Travel, "API tokens (hashes only)"},
	{"service_state", Travel, "service activation"},
	{"campaigns", Travel, "bulk operations"},
	{"campaign_devices", Travel, "the devices of each campaign"},
	{"keys", Travel, "the cluster's keys, sealed under the KEK"},
	{"fleet_parameters", Travel, "parameters set by administrators"},
	{"fleet_parameters_state", Travel, "the parameters' change counter"},
	{"ca_set", Travel, "the CAPF certificates and their states (keys: files or the keys table)"},
	{"ca_set_state", Travel, "the CA set's change counter"},
	{"ca_issuing", Travel, "the issuing CA below a CAPF certificate (keys: a file or the keys table)"},
	{"ca_issuing_former", Travel, "issuing CAs taken out of place, still trusted for their LSCs (keys: files or the keys table)"},
	{"crls", Travel, "each CA's latest CRL: its number must keep growing after a restore"},
	{"account_sessions", NodeLocal, "browser sessions: administrators log in again after a restore"},
	{"leases", NodeLocal, "held by nodes that are gone after a restore; taken again at start"},
	{"nodes", NodeLocal, "the registry of running nodes; each registers itself at start"},
	{"address_guesses", NodeLocal, "a sliding rate-limit window of minutes"},
}

// Classify returns the class of table and whether Tables names it.
func Classify(table string) (Class, bool) {
	for _, t := range Tables {
		if t.Name == table {
			return t.Class, true
		}
	}
	return Travel, false
}

// Rank is the position of table in a restore: the index in Tables, or
// after all of them for a table Tables does not name.
func Rank(table string) int {
	for i, t := range Tables {
		if t.Name == table {
			return i
		}
	}
	return len(Tables)
}

// Internal reports whether table is the backend's bookkeeping rather than
// data: the migrations table and SQLite's own tables.
func Internal(table string) bool {
	return table == "schema_migrations" || strings.HasPrefix(table, "sqlite_")
}

// Column is one column of a dumped table.
type Column struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Header is the first line of a table's stream.
type Header struct {
	Table   string   `json:"table"`
	Columns []Column `json:"columns"`
}

// Index returns the position of the column name, or -1.
func (h Header) Index(name string) int {
	for i, c := range h.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Writer writes one table's stream.
type Writer struct {
	w    *bufio.Writer
	h    Header
	rows int64
	buf  []any
}

// NewWriter writes h to w and returns a Writer for its rows.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	for _, c := range h.Columns {
		switch c.Type {
		case Int, Text, Bytes, Bool, JSON:
		default:
			return nil, fmt.Errorf("dump %s.%s: unknown type %q", h.Table, c.Name, c.Type)
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	if _, err := bw.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	return &Writer{w: bw, h: h, buf: make([]any, len(h.Columns))}, nil
}

// Write writes one row; row[i] is the value of column i, of the Go type
// its neutral type says (int64 also accepted as any integer type, and a
// []byte for Text or JSON).
func (w *Writer) Write(row []any) error {
	if len(row) != len(w.h.Columns) {
		return fmt.Errorf("dump %s: row of %d values, want %d", w.h.Table, len(row), len(w.h.Columns))
	}
	for i, v := range row {
		c := w.h.Columns[i]
		out, err := encode(c.Type, v)
		if err != nil {
			return fmt.Errorf("dump %s.%s: %w", w.h.Table, c.Name, err)
		}
		w.buf[i] = out
	}
	b, err := json.Marshal(w.buf)
	if err != nil {
		return fmt.Errorf("dump %s: %w", w.h.Table, err)
	}
	w.rows++
	_, err = w.w.Write(append(b, '\n'))
	return err
}

// Rows returns how many rows were written.
func (w *Writer) Rows() int64 { return w.rows }

// Close flushes the stream (it does not close the underlying writer).
func (w *Writer) Close() error { return w.w.Flush() }

func encode(t Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case Int:
		switch n := v.(type) {
		case int64:
			return n, nil
		case int32:
			return int64(n), nil
		case int:
			return int64(n), nil
		case bool:
			if n {
				return int64(1), nil
			}
			return int64(0), nil
		}
	case Bool:
		switch n := v.(type) {
		case bool:
			return n, nil
		case int64:
			return n != 0, nil
		}
	case Text, JSON:
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			return string(s), nil
		}
	case Bytes:
		switch b := v.(type) {
		case []byte:
			return base64.StdEncoding.EncodeToString(b), nil
		case string:
			return base64.StdEncoding.EncodeToString([]byte(b)), nil
		}
	}
	return nil, fmt.Errorf("value of Go type %T is not %s", v, t)
}

// Reader reads one table's stream.
type Reader struct {
	s *bufio.Scanner
	h Header
}

// maxLine bounds one row (a certificate chain or a long audit detail fits
// many times over).
const maxLine = 16 << 20

// NewReader reads the header of r's stream.
func NewReader(r io.Reader) (*Reader, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), maxLine)
	if !s.Scan() {
		if err := s.Err(); err != nil {
			return nil, fmt.Errorf("read dump header: %w", err)
		}
		return nil, errors.New("read dump header: empty stream")
	}
	var h Header
	if err := json.Unmarshal(s.Bytes(), &h); err != nil || h.Table == "" || len(h.Columns) == 0 {
		return nil, errors.New("read dump header: not a table header")
	}
	for _, c := range h.Columns {
		switch c.Type {
		case Int, Text, Bytes, Bool, JSON:
		default:
			return nil, fmt.Errorf("dump %s.%s: unknown type %q", h.Table, c.Name, c.Type)
		}
	}
	return &Reader{s: s, h: h}, nil
}

// Header returns the stream's header.
func (r *Reader) Header() Header { return r.h }

// Next returns the next row, decoded to the Go types Writer.Write takes
// (int64, string, []byte, bool, nil), or io.EOF after the last.
func (r *Reader) Next() ([]any, error) {
	if !r.s.Scan() {
		if err := r.s.Err(); err != nil {
			return nil, fmt.Errorf("read dump %s: %w", r.h.Table, err)
		}
		return nil, io.EOF
	}
	dec := json.NewDecoder(strings.NewReader(r.s.Text()))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("read dump %s: %w", r.h.Table, err)
	}
	if len(raw) != len(r.h.Columns) {
		return nil, fmt.Errorf("read dump %s: row of %d values, want %d", r.h.Table, len(raw), len(r.h.Columns))
	}
	for i, v := range raw {
		c := r.h.Columns[i]
		out, err := decode(c.Type, v)
		if err != nil {
			return nil, fmt.Errorf("read dump %s.%s: %w", r.h.Table, c.Name, err)
		}
		raw[i] = out
	}
	return raw, nil
}

func decode(t Type, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch t {
	case Int:
		if n, ok := v.(json.Number); ok {
			i, err := strconv.ParseInt(string(n), 10, 64)
			if err == nil {
				return i, nil
			}
		}
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Text, JSON:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case Bytes:
		if s, ok := v.(string); ok {
			b, err := base64.StdEncoding.DecodeString(s)
			if err == nil {
				return b, nil
			}
		}
	}
	return nil, fmt.Errorf("value %v is not %s", v, t)
}

// Convert turns a value read from a dump (of neutral type from) into the
// Go value a column of neutral type to takes, for a restore into the
// other backend: a SQLite INTEGER 0/1 into a PostgreSQL boolean and back,
// SQLite JSON text into PostgreSQL json. Anything else that does not
// match is an error.
func Convert(from, to Type, v any) (any, error) {
	if v == nil || from == to {
		return v, nil
	}
	switch {
	case from == Int && to == Bool:
		return v.(int64) != 0, nil
	case from == Bool && to == Int:
		if v.(bool) {
			return int64(1), nil
		}
		return int64(0), nil
	case (from == Text && to == JSON) || (from == JSON && to == Text):
		return v, nil
	}
	return nil, fmt.Errorf("a %s value cannot go into a %s column", from, to)
}

// RowWriter takes the rows of one table; *Writer is one.
type RowWriter interface {
	Write(row []any) error
	Close() error
}

// Sink receives the tables of a dump, one at a time, from inside the
// backend's consistent read: it returns where the rows of the table h
// describes go.
type Sink func(h Header) (RowWriter, error)

// Source gives a restore the tables of a dump: Tables lists their names,
// Open returns a reader for one, which the restore closes.
type Source interface {
	Tables() []string
	Open(table string) (*Reader, io.Closer, error)
}
