package report_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// sampleDevices has every field set on some device, LSCs valid and
// expired, and values a spreadsheet would take for formulas.
func sampleDevices() []device.Device {
	paris := time.FixedZone("CEST", 2*3600)
	return []device.Device{
		{
			Name: "SEP001122334455", Description: "Lobby, west", SecurityProfile: device.NonSecure,
			AuthMode: device.AuthString, AuthString: "0123", Operation: device.OpInstall, Key: device.RSA2048,
			Deadline: time.Date(2026, 7, 1, 19, 0, 0, 0, paris), Status: device.StatusPending,
		},
		{
			Name: "CSFJDOE", Description: "=HYPERLINK(\"http://x\")", SecurityProfile: device.Encrypted,
			AuthMode: device.AuthLSC, Operation: device.OpNone, Key: device.EC384,
			Status: device.SuccessStatus(device.OpInstall),
			LSC: &device.Certificate{
				Serial: "0A1B2C3D4E5F", Issuer: "CN=CAPF-1234,O=Example,C=US",
				NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
			},
		},
		{
			Name: "SEPAABBCCDDEEFF", Description: "@ reception\twith tab", SecurityProfile: device.Authenticated,
			AuthMode: device.AuthMIC, Operation: device.OpDelete, Key: device.EC521,
			Status: device.FailedStatus(device.OpDelete, device.ReasonInvalidMIC),
			LSC: &device.Certificate{
				Serial: "FF", Issuer: "-CN=odd issuer", NotAfter: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			},
		},
		{Name: "TCT.JANE-2"}, // nothing set: empty labels and NA
	}
}

func TestWriteReportGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := report.WriteReport(&buf, sampleDevices(), now); err != nil {
		t.Fatal(err)
	}
	want := "Device Name,Description,Security Profile,Authentication Mode,Authentication String,Certificate Operation,Key,Operation Completes By,LSC Status,Operation Status,LSC Serial,LSC Issuer,LSC Valid Until\r\n" +
		"SEP001122334455,\"Lobby, west\",Non Secure,By Authentication String,0123,Install/Upgrade,RSA 2048,2026-07-01T17:00:00Z,none,Operation Pending,NA,NA,NA\r\n" +
		"CSFJDOE,\"'=HYPERLINK(\"\"http://x\"\")\",Encrypted,By Existing Certificate (Precedence LSC),,No Pending Operation,EC P-384,NA,valid,Upgrade Success,0A1B2C3D4E5F,\"CN=CAPF-1234,O=Example,C=US\",2030-01-01T00:00:00Z\r\n" +
		"SEPAABBCCDDEEFF,'@ reception\twith tab,Authenticated,By Existing Certificate (Precedence MIC),,Delete,EC P-521,NA,expired,Delete Failed: Invalid MIC,FF,'-CN=odd issuer,2026-01-01T00:00:00Z\r\n" +
		"TCT.JANE-2,,,,,,,NA,none,,NA,NA,NA\r\n"
	if got := buf.String(); got != want {
		t.Errorf("report =\n%q\nwant\n%q", got, want)
	}
	if bytes.HasPrefix(buf.Bytes(), []byte("\ufeff")) {
		t.Error("report starts with a byte-order mark")
	}
}

func TestWriteReportEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := report.WriteReport(&buf, nil, now); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(report.ReportColumns(), ",") + "\r\n"; buf.String() != want {
		t.Errorf("report = %q, want %q", buf.String(), want)
	}
}

// TestReportImportRoundTrip writes a report and imports it back: every
// import column must come back as it was.
func TestReportImportRoundTrip(t *testing.T) {
	ds := sampleDevices()
	var buf bytes.Buffer
	if err := report.WriteReport(&buf, ds, now); err != nil {
		t.Fatal(err)
	}
	rows, err := report.ParseImport(&buf)
	if err != nil {
		t.Fatalf("ParseImport of the report: %v", err)
	}
	if len(rows) != len(ds) {
		t.Fatalf("%d rows, want %d", len(rows), len(ds))
	}
	for i, d := range ds {
		t.Run(d.Name, func(t *testing.T) {
			want := report.Row{Line: i + 2, Device: device.Device{
				Name: d.Name, Description: d.Description, SecurityProfile: d.SecurityProfile, AuthMode: d.AuthMode,
				AuthString: d.AuthString, Operation: d.Operation, Key: d.Key, Deadline: d.Deadline,
			}, Given: report.Fields{
				Description: d.Description != "", SecurityProfile: d.SecurityProfile != "", AuthMode: d.AuthMode != "",
				AuthString: d.AuthString != "", Operation: d.Operation != "", Key: d.Key != "", Deadline: !d.Deadline.IsZero(),
			}}
			if want.Device.Deadline.IsZero() {
				want.Device.Deadline = time.Time{}.UTC()
			}
			equalRow(t, rows[i], want)
		})
	}
}

// TestFormulaInjection writes values a spreadsheet would run as formulas,
// checks that no cell of the file starts with a formula character, and that
// importing the report gives the values back.
func TestFormulaInjection(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		written string // the cell as the report writes it
		// imported is what the importer reads back when it differs from
		// value: it trims white space that no guard quote protects.
		imported string
	}{
		{"equals", "=1+1", "'=1+1", ""},
		{"plus", "+41 22 000", "'+41 22 000", ""},
		{"minus", "-2", "'-2", ""},
		{"at", "@SUM(A1)", "'@SUM(A1)", ""},
		{"tab", "\t=1", "'\t=1", ""},
		{"dde", "=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0", ""},
		{"quote-then-formula", "'=x", "''=x", ""},
		{"quotes-then-formula", "''+x", "'''+x", ""},
		{"quote-then-text", "'x", "'x", ""},
		{"lone-quote", "'", "'", ""},
		{"formula-char-inside", "a=b", "a=b", ""},
		{"plain", "Lobby", "Lobby", ""},
		{"space-then-equals", " =1+1", "' =1+1", ""},
		{"spaces-then-plus", "   +41", "'   +41", ""},
		{"space-tab-then-minus", " \t-2", "' \t-2", ""},
		{"newline-then-at", "\n@SUM(A1)", "'\n@SUM(A1)", ""},
		{"nbsp-then-equals", "\u00a0=1", "'\u00a0=1", ""},
		{"ideographic-space-then-equals", "\u3000=1", "'\u3000=1", ""},
		{"quote-space-equals", "' =x", "'' =x", ""},
		{"space-then-text", " Lobby", " Lobby", "Lobby"},
		{"space-then-quote-equals", " '=x", " '=x", "'=x"},
		{"only-spaces", "   ", "   ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := []device.Device{{Name: name1, Description: tt.value}}
			var buf bytes.Buffer
			if err := report.WriteReport(&buf, ds, now); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := recs[1][1]; got != tt.written {
				t.Errorf("written %q, want %q", got, tt.written)
			}
			for _, rec := range recs {
				for _, cell := range rec {
					if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
						t.Errorf("cell %q starts with a formula character", cell)
					}
					if rest := strings.TrimLeftFunc(cell, unicode.IsSpace); rest != "" && strings.ContainsRune("=+-@", rune(rest[0])) {
						t.Errorf("cell %q starts with a formula character after white space", cell)
					}
				}
			}
			rows, err := report.ParseImport(&buf)
			if err != nil {
				t.Fatalf("ParseImport: %v", err)
			}
			want := tt.value
			if tt.imported != "" || strings.TrimSpace(tt.value) == "" {
				want = tt.imported
			}
			if got := rows[0].Device.Description; got != want {
				t.Errorf("imported %q, want %q", got, want)
			}
		})
	}
}

// TestFormulaInjectionCarriageReturn covers the one guarded character the
// importer refuses: a leading carriage return is guarded on writing (and
// dropped by encoding/csv, which writes CRLF line endings), so the cell is
// safe, though the value does not come back.
func TestFormulaInjectionCarriageReturn(t *testing.T) {
	var buf bytes.Buffer
	ds := []device.Device{{Name: name1, Description: "\r=1+1"}}
	if err := report.WriteReport(&buf, ds, now); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := recs[1][1]; !strings.HasPrefix(got, "'") {
		t.Errorf("cell %q is not guarded", got)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportError(t *testing.T) {
	err := report.WriteReport(failWriter{}, sampleDevices(), now)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error = %v, want the writer's", err)
	}
}

func TestColumns(t *testing.T) {
	imp := report.ImportColumns()
	if got := strings.Join(imp, ",") + "\r\n"; got != header {
		t.Errorf("ImportColumns = %q", got)
	}
	imp[0] = "changed"
	if report.ImportColumns()[0] != report.ColDeviceName {
		t.Error("ImportColumns returns a shared slice")
	}
	if got := report.ReportColumns(); len(got) != 13 || got[8] != report.ColLSCStatus || got[12] != report.ColLSCValidUntil {
		t.Errorf("ReportColumns = %q", got)
	}
}
