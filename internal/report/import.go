package report

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// Limits of the import file.
const (
	// MaxRows is the largest number of devices one file may hold.
	MaxRows = 100_000
	// MaxFieldLen is the longest value, in bytes, of any field.
	MaxFieldLen = 1024
	// maxRecordBytes bounds the raw bytes of one row, so that a file with a
	// huge (say, unterminated quoted) field fails before it is buffered
	// whole. No valid row comes near it: 13 columns of MaxFieldLen bytes,
	// every byte a doubled quote, need about 27 KiB.
	maxRecordBytes = 64 << 10
	// maxDescriptionLen mirrors the limit device.Device.Validate applies,
	// so that the importer can report the line.
	maxDescriptionLen = 128
)

// Fields says which optional values a row gave (non-empty, and not "NA" for
// Operation Completes By). A column the file does not have gives nothing.
type Fields struct {
	Description     bool
	SecurityProfile bool
	AuthMode        bool
	AuthString      bool
	Operation       bool
	Key             bool
	Deadline        bool
}

// Row is one device of an import file.
type Row struct {
	// Line is the physical line (1-based; the header is usually line 1)
	// on which the row starts.
	Line int
	// Device holds the parsed, normalized values: the device name always;
	// every other field only when Given says so, and its zero value
	// otherwise. Status, LSC and the timestamps are never set.
	Device device.Device
	// Given says which optional fields the row gave.
	Given Fields
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// ParseImport reads a bulk-import CSV file: a header row naming the columns
// (see the package documentation), then one row per device. It tolerates a
// UTF-8 byte-order mark, CRLF line endings and blank lines, and skips rows
// whose fields are all empty (what spreadsheets leave at the end).
//
// Every value is checked on its own; any problem rejects the whole file
// with a *[device.RowErrors] (a [fault.Invalid] error whose message starts
// with "line N:") that names every problem, up to [device.MaxRowProblems],
// each with its line, column and reason as data: a bad value, a device name
// that appears twice (the reason gives both lines), a row with the wrong
// number of fields, more than [MaxRows] rows, a field longer than
// [MaxFieldLen] bytes. A CSV syntax error or an over-long row ends the
// reading there (where the next row starts is unknown), and a bad header
// is the only problem named. An error reading r is returned wrapped, with
// no fault kind.
//
// Values are trimmed of surrounding white space, then stripped of the
// single quote [WriteReport] puts in front of values a spreadsheet could
// take for a formula. An empty value means "not given" (see [Row.Given]);
// for Operation Completes By, so does "NA". Values are accepted as the CLI
// takes them or as CallManager (and the report) labels them: "encrypted" or
// "Encrypted", "null" or "By Null String", "install" or "Install/Upgrade",
// rsa2048, and the deadline as RFC 3339 or [DeadlineLayout] in UTC.
//
// ParseImport does not relate fields to each other (a security profile
// that excludes an authentication mode, an authentication string without
// the mode that uses it): the device service does, when it applies the rows.
// A file with a header and no rows gives no rows and no error.
func ParseImport(r io.Reader) ([]Row, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(utf8BOM)); err == nil && string(b) == string(utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	lim := &recordLimiter{r: br, line: 1, start: 1}
	cr := csv.NewReader(lim)
	cr.ReuseRecord = true // FieldsPerRecord 0: the header sets the field count

	header, err := cr.Read()
	if err == io.EOF {
		return nil, device.RowError(1, "", "the file is empty; the first row must be the header: %s", strings.Join(ImportColumns(), ", "))
	}
	if err != nil {
		p, ioErr := readProblem(err, header, 0)
		if ioErr != nil {
			return nil, ioErr
		}
		return nil, &device.RowErrors{Problems: []device.RowProblem{p}}
	}
	headerLine, _ := cr.FieldPos(0)
	cols, err := parseHeader(header, headerLine)
	if err != nil {
		return nil, err
	}

	var rows []Row
	var probs device.RowErrors
	lineOf := make(map[string]int) // device name → line
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, csv.ErrFieldCount) && blank(rec) {
				continue
			}
			p, ioErr := readProblem(err, rec, len(cols))
			if ioErr != nil {
				return nil, ioErr
			}
			probs.Add(p)
			if errors.Is(err, csv.ErrFieldCount) {
				continue // the next row starts on a line of its own
			}
			break // a syntax error or an over-long row: where the next row starts is unknown
		}
		if blank(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rows)+len(probs.Problems) >= MaxRows {
			probs.Add(device.RowProblem{Line: line, Reason: fmt.Sprintf("the file has more than %d rows; split it into smaller files", MaxRows)})
			break
		}
		row, bad := parseRow(cols, rec, line)
		if len(bad) > 0 {
			for _, p := range bad {
				probs.Add(p)
			}
			continue
		}
		if first, dup := lineOf[row.Device.Name]; dup {
			probs.Add(device.RowProblem{Line: line, Column: ColDeviceName,
				Reason: fmt.Sprintf("device %s appears twice, on lines %d and %d", row.Device.Name, first, line)})
			continue
		}
		lineOf[row.Device.Name] = line
		rows = append(rows, row)
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// headerField is one column of the file's header.
type headerField struct {
	col  column
	name string // the column's name as this package spells it
}

// parseHeader maps each header field to its column.
func parseHeader(rec []string, line int) ([]headerField, error) {
	cols := make([]headerField, len(rec))
	at := make(map[string]int, len(rec)) // lower-case name → 1-based position
	for i, raw := range rec {
		if len(raw) > MaxFieldLen {
			return nil, device.RowError(line, "", "header field %d is %d bytes long; the limit is %d", i+1, len(raw), MaxFieldLen)
		}
		name := strings.TrimSpace(raw)
		key := strings.ToLower(name)
		c, ok := columnsByKey[key]
		if !ok {
			return nil, device.RowError(line, "", "unknown column %q; the first row must be the header, with the columns %s (a report's %s are ignored)",
				name, strings.Join(ImportColumns(), ", "), strings.Join(reportOnlyColumns[:], ", "))
		}
		if j, dup := at[key]; dup {
			return nil, device.RowError(line, "", "column %q appears twice (fields %d and %d)", name, j, i+1)
		}
		at[key] = i + 1
		cols[i] = headerField{col: c, name: canonicalNames[key]}
	}
	if _, ok := at[strings.ToLower(ColDeviceName)]; !ok {
		return nil, device.RowError(line, "", "the required column %q is missing", ColDeviceName)
	}
	return cols, nil
}

// parseRow checks and converts the fields of one row with the one parser
// of device changes; bad names every value that is wrong, by the column
// its field came from.
func parseRow(cols []headerField, rec []string, line int) (row Row, bad []device.RowProblem) {
	row = Row{Line: line}
	d, given := &row.Device, &row.Given
	var in device.ChangeInput
	column := map[string]string{} // field (as device errors blame it) -> column name
	for i, raw := range rec {
		c := cols[i].col
		if len(raw) > MaxFieldLen {
			bad = append(bad, device.RowProblem{Line: line, Column: cols[i].name, Reason: fmt.Sprintf("the value is %d bytes long; the limit is %d", len(raw), MaxFieldLen)})
			continue
		}
		if c == colIgnored {
			continue
		}
		// Only a quote at the very start of the cell can be one WriteReport
		// added: " '=x" is a value of its own (read as "'=x"), not an
		// escaped "=x".
		v := strings.TrimSpace(raw)
		if strings.HasPrefix(raw, "'") {
			v = unescapeCell(v)
		}
		if v == "" && c != colName {
			continue
		}
		var to **string
		var field string
		switch c {
		case colName:
			var err error
			if d.Name, err = device.NormalizeName(v); err != nil {
				bad = append(bad, device.RowProblem{Line: line, Column: cols[i].name, Reason: err.Error()})
			}
			continue
		case colDescription:
			if err := checkDescription(v); err != nil {
				bad = append(bad, device.RowProblem{Line: line, Column: cols[i].name, Reason: err.Error()})
				continue
			}
			to, field = &in.Description, device.FieldNameDescription
		case colSecurityProfile:
			to, field = &in.SecurityProfile, device.FieldNameSecurityProfile
		case colAuthMode:
			to, field = &in.AuthMode, device.FieldNameAuthMode
		case colAuthString:
			to, field = &in.AuthString, device.FieldNameAuthString
		case colOperation:
			to, field = &in.Operation, device.FieldNameOperation
		case colKey:
			to, field = &in.Key, device.FieldNameKey
		case colDeadline:
			if isNA(v) {
				continue
			}
			to, field = &in.Deadline, device.FieldNameDeadline
		default:
			continue
		}
		*to = &v
		column[field] = cols[i].name
	}
	ch, err := in.Parse()
	var fe *device.FieldErrors
	switch {
	case errors.As(err, &fe):
		for _, e := range fe.Errors {
			bad = append(bad, device.RowProblem{Line: line, Column: column[fault.FieldOf(e)], Reason: fault.Message(e)})
		}
		slices.SortStableFunc(bad, func(a, b device.RowProblem) int { return colIndex(cols, a.Column) - colIndex(cols, b.Column) })
		return row, bad
	case err != nil:
		return row, append(bad, device.RowProblem{Line: line, Reason: err.Error()})
	}
	name := d.Name
	ch.Apply(d)
	d.Name = name
	*given = Fields{
		Description: in.Description != nil, SecurityProfile: in.SecurityProfile != nil, AuthMode: in.AuthMode != nil,
		AuthString: in.AuthString != nil, Operation: in.Operation != nil, Key: in.Key != nil, Deadline: in.Deadline != nil,
	}
	return row, bad
}

// colIndex is the position of the column named name in the header, so that
// a row's problems are named in the file's order.
func colIndex(cols []headerField, name string) int {
	for i, c := range cols {
		if c.name == name {
			return i
		}
	}
	return len(cols)
}

// checkDescription accepts UTF-8 text of at most maxDescriptionLen bytes
// without control characters other than tab and line feed (a quoted field
// may span lines). A carriage return is refused because the report, written
// with CRLF line endings, could not give it back.
func checkDescription(v string) error {
	if !utf8.ValidString(v) {
		return fault.Invalidf("description is not valid UTF-8")
	}
	if len(v) > maxDescriptionLen {
		return fault.Invalidf("description is %d bytes long; the limit is %d", len(v), maxDescriptionLen)
	}
	for _, r := range v {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7F {
			return fault.Invalidf("description contains the control character %U", r)
		}
	}
	return nil
}

func isNA(v string) bool { return strings.EqualFold(v, NA) || strings.EqualFold(v, "N/A") }

// blank reports whether every field of rec is empty or white space.
func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// readProblem turns an error of the CSV reader into the problem of its
// row: syntax errors, rows with the wrong number of fields (rec, where the
// header has want) and over-long rows; anything else is an I/O error of
// the source, returned wrapped.
func readProblem(err error, rec []string, want int) (device.RowProblem, error) {
	var pe *csv.ParseError
	var tl *recordTooLongError
	switch {
	case errors.As(err, &tl):
		return device.RowProblem{Line: tl.line, Reason: fmt.Sprintf("the row is longer than %d bytes (no field may be longer than %d)", maxRecordBytes, MaxFieldLen)}, nil
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		return device.RowProblem{Line: pe.StartLine, Reason: fmt.Sprintf("the row has %d fields, the header %d; quote a value that contains a comma", len(rec), want)}, nil
	case errors.As(err, &pe) && pe.Line != pe.StartLine:
		return device.RowProblem{Line: pe.StartLine, Reason: fmt.Sprintf("CSV syntax error on line %d, byte %d: %v", pe.Line, pe.Column, pe.Err)}, nil
	case errors.As(err, &pe):
		return device.RowProblem{Line: pe.Line, Reason: fmt.Sprintf("CSV syntax error at byte %d: %v", pe.Column, pe.Err)}, nil
	}
	return device.RowProblem{}, fmt.Errorf("read import file: %w", err)
}

// ImportRows turns parsed CSV rows into the device service's import rows.
func ImportRows(rows []Row) []device.ImportRow {
	out := make([]device.ImportRow, len(rows))
	for i, r := range rows {
		out[i] = device.ImportRow{Line: r.Line, Device: r.Device, Given: device.Given(r.Given)}
	}
	return out
}
