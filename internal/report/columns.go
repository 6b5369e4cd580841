package report

import (
	"strings"
	"unicode"
)

// The columns of the import file, in the order the report writes them.
const (
	ColDeviceName      = "Device Name"
	ColDescription     = "Description"
	ColSecurityProfile = "Security Profile"
	ColAuthMode        = "Authentication Mode"
	ColAuthString      = "Authentication String"
	ColOperation       = "Certificate Operation"
	ColKey             = "Key"
	ColDeadline        = "Operation Completes By"
)

// The columns only the report has. The importer ignores them.
const (
	ColLSCStatus     = "LSC Status"
	ColStatus        = "Operation Status"
	ColLSCSerial     = "LSC Serial"
	ColLSCIssuer     = "LSC Issuer"
	ColLSCValidUntil = "LSC Valid Until"
)

// NA is what the report writes for an empty time and for the LSC columns of
// a device without an LSC. The importer reads it (in any case, or "N/A") as
// an empty value.
const NA = "NA"

// DeadlineLayout is the short form of Operation Completes By the importer
// accepts besides RFC 3339; it is read as UTC.
const DeadlineLayout = "2006-01-02 15:04"

// column identifies a column of the import file internally.
type column int

const (
	colName column = iota
	colDescription
	colSecurityProfile
	colAuthMode
	colAuthString
	colOperation
	colKey
	colDeadline
	colIgnored // a report-only column
)

// importColumns lists the import columns by their column value.
var importColumns = [...]string{
	colName:            ColDeviceName,
	colDescription:     ColDescription,
	colSecurityProfile: ColSecurityProfile,
	colAuthMode:        ColAuthMode,
	colAuthString:      ColAuthString,
	colOperation:       ColOperation,
	colKey:             ColKey,
	colDeadline:        ColDeadline,
}

var reportOnlyColumns = [...]string{ColLSCStatus, ColStatus, ColLSCSerial, ColLSCIssuer, ColLSCValidUntil}

// columnsByKey maps a lower-case header name to its column, and
// canonicalNames to the name as this package spells it.
var columnsByKey, canonicalNames = func() (map[string]column, map[string]string) {
	cols := make(map[string]column, len(importColumns)+len(reportOnlyColumns))
	names := make(map[string]string, len(importColumns)+len(reportOnlyColumns))
	for c, name := range importColumns {
		cols[strings.ToLower(name)] = column(c)
		names[strings.ToLower(name)] = name
	}
	for _, name := range reportOnlyColumns {
		cols[strings.ToLower(name)] = colIgnored
		names[strings.ToLower(name)] = name
	}
	return cols, names
}()

// ImportColumns returns the header of an import file, in the usual order.
func ImportColumns() []string { return append([]string(nil), importColumns[:]...) }

// ReportColumns returns the header of the report: the import columns, then
// the report's own.
func ReportColumns() []string {
	return append(ImportColumns(), reportOnlyColumns[:]...)
}

// formulaStart reports whether a spreadsheet could take v for a formula:
// after any leading single quotes, it starts with a tab or a carriage
// return, or its first character other than white space (spaces, tabs,
// line breaks, no-break and other Unicode spaces) is '=', '+', '-' or '@'.
// Spreadsheets skip leading white space before a formula, so " =1+1" runs
// as one.
func formulaStart(v string) bool {
	s := strings.TrimLeft(v, "'")
	if s == "" {
		return false
	}
	if s[0] == '\t' || s[0] == '\r' {
		return true
	}
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	return s != "" && strings.IndexByte("=+-@", s[0]) >= 0
}

// escapeCell guards v against formula injection by putting a single quote in
// front of a value that [formulaStart] flags. Counting the quotes a value
// may already start with keeps the mapping reversible: a value "'=x" gets
// a second quote, which unescapeCell removes again.
func escapeCell(v string) string {
	if formulaStart(v) {
		return "'" + v
	}
	return v
}

// unescapeCell undoes [escapeCell]: it removes exactly one leading single
// quote, and only when the quote is followed (possibly after more quotes) by
// one of the characters escapeCell guards against.
func unescapeCell(v string) string {
	if len(v) > 1 && v[0] == '\'' && formulaStart(v) {
		return v[1:]
	}
	return v
}
