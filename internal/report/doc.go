// Package report reads and writes the two CSV files administrators exchange
// with the CAPF: the bulk-import file and the CAPF report.
//
// The import file has a header row and these columns, matched by name
// (case-insensitively, surrounding spaces ignored, in any order; only
// [ColDeviceName] is required):
//
//	Device Name, Description, Security Profile, Authentication Mode,
//	Authentication String, Certificate Operation, Key, Operation Completes By
//
// The report has the same columns, then LSC Status, Operation Status, LSC
// Serial, LSC Issuer and LSC Valid Until. The importer ignores those five,
// so a report can be edited and imported back; any other unknown column is
// an error.
//
// [ParseImport] checks the form of every value (device name, profile, mode,
// authentication string, operation, key, deadline) and reports the first
// problem as a [fault.Invalid] error starting with "line N:", N being the
// physical line of the file. It does not apply rules that relate fields to
// each other (a security profile that forbids an authentication mode, say),
// nor decide what an empty value means: [Row.Given] tells the caller which
// values the file gave, and the device service decides the rest.
//
// [WriteReport] writes the report in plain UTF-8 (no byte-order mark) with
// CRLF line endings, values in CallManager's words. To keep a spreadsheet
// from running a value as a formula, a value that starts with '=', '+', '-',
// '@', a tab or a carriage return is written with a leading single quote;
// [ParseImport] removes exactly that quote again, and only when one of those
// characters follows it, so report and import round trip. (A value that
// already starts with single quotes followed by one of them gets one more
// quote too, which keeps the mapping reversible.) The rule applies to every
// column in both directions.
package report
