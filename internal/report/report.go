package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// WriteReport writes the CAPF report of ds to w: the header ([ReportColumns])
// then one row per device, in the order given. Values are in CallManager's
// words, the one vocabulary the UI shows (the Label of the profile, mode,
// operation and key: "Non Secure", "By Null String", "Install/Upgrade",
// "RSA 2048"), times in RFC 3339 UTC; an empty deadline and the LSC
// columns of a device without an LSC read [NA]. LSC Status is
// device.Device.LSCState at now: none, valid, expired or revoked.
//
// The file is plain UTF-8 without a byte-order mark, with CRLF line
// endings. A value that starts with a tab or a carriage return, or whose
// first character after white space is '=', '+', '-' or '@' (after any
// single quotes it already starts with), gets one more leading single quote, so that a spreadsheet shows it as text instead of
// running it as a formula; [ParseImport] removes that quote again. Note that
// encoding/csv, writing CRLF line endings, drops a carriage return inside a
// value.
func WriteReport(w io.Writer, ds []device.Device, now time.Time) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(ReportColumns()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	rec := make([]string, len(importColumns)+len(reportOnlyColumns))
	for i := range ds {
		d := &ds[i]
		rec = append(rec[:0],
			d.Name,
			d.Description,
			d.SecurityProfile.Label(),
			d.AuthMode.Label(),
			d.AuthString,
			d.Operation.Label(),
			d.Key.Label(),
			timeOrNA(d.Deadline),
			d.LSCState(now),
			d.Status,
		)
		if d.LSC == nil {
			rec = append(rec, NA, NA, NA)
		} else {
			rec = append(rec, OrNA(d.LSC.Serial), OrNA(d.LSC.Issuer), timeOrNA(d.LSC.NotAfter))
		}
		for j, v := range rec {
			rec[j] = escapeCell(v)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// timeOrNA formats t in RFC 3339 UTC, or returns NA for the zero time.
func timeOrNA(t time.Time) string {
	if t.IsZero() {
		return NA
	}
	return t.UTC().Format(time.RFC3339)
}

// OrNA returns s, or NA for the empty string: how the report and the
// CLI show a value that does not apply.
func OrNA(s string) string {
	if s == "" {
		return NA
	}
	return s
}
