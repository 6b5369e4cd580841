package report_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/report"
)

// header is the import header in the usual order, with CRLF.
const header = "Device Name,Description,Security Profile,Authentication Mode,Authentication String,Certificate Operation,Key,Operation Completes By\r\n"

const name1 = "SEP001122334455"

// parseOK parses file and fails the test on an error.
func parseOK(t *testing.T, file string) []report.Row {
	t.Helper()
	rows, err := report.ParseImport(strings.NewReader(file))
	if err != nil {
		t.Fatalf("ParseImport: %v", err)
	}
	return rows
}

// wantInvalid checks that err is a fault.Invalid error whose message starts
// with prefix and contains every one of parts.
func wantInvalid(t *testing.T, err error, prefix string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one starting with %q", prefix)
	}
	if k := fault.KindOf(err); k != fault.Invalid {
		t.Errorf("kind = %v, want invalid (%v)", k, err)
	}
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error = %q, want it to start with %q", err, prefix)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error = %q, want it to mention %q", err, p)
		}
	}
}

// equalRow compares rows, times with Equal and in UTC.
func equalRow(t *testing.T, got, want report.Row) {
	t.Helper()
	gd, wd := got.Device, want.Device
	if !gd.Deadline.Equal(wd.Deadline) || gd.Deadline.Location() != time.UTC {
		t.Errorf("Deadline = %v, want %v in UTC", gd.Deadline, wd.Deadline)
	}
	gd.Deadline, wd.Deadline = time.Time{}, time.Time{}
	if got.Line != want.Line || got.Given != want.Given || fmt.Sprint(gd) != fmt.Sprint(wd) {
		t.Errorf("row =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseImportValues(t *testing.T) {
	deadline := time.Date(2026, 3, 1, 17, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		column string
		value  string // as written in the file, quoted if needed
		dev    device.Device
		given  report.Fields
	}{
		{"name/upper-cased", "Device Name", "sep001122334455", device.Device{}, report.Fields{}},
		{"name/trimmed", "Device Name", "  SEP001122334455 ", device.Device{}, report.Fields{}},

		{"description/plain", "Description", "Lobby phone", device.Device{Description: "Lobby phone"}, report.Fields{Description: true}},
		{"description/trimmed", "Description", "  Lobby  ", device.Device{Description: "Lobby"}, report.Fields{Description: true}},
		{"description/utf8", "Description", "Büro 3. Stock", device.Device{Description: "Büro 3. Stock"}, report.Fields{Description: true}},
		{"description/quoted-comma", "Description", `"Lobby, west"`, device.Device{Description: "Lobby, west"}, report.Fields{Description: true}},
		{"description/multi-line", "Description", "\"two\r\nlines\"", device.Device{Description: "two\nlines"}, report.Fields{Description: true}},
		{"description/formula-guard-removed", "Description", "'=SUM(A1)", device.Device{Description: "=SUM(A1)"}, report.Fields{Description: true}},
		{"description/other-quote-kept", "Description", "'quoted'", device.Device{Description: "'quoted'"}, report.Fields{Description: true}},
		{"description/na-is-text", "Description", "NA", device.Device{Description: "NA"}, report.Fields{Description: true}},
		{"description/empty", "Description", "", device.Device{}, report.Fields{}},
		{"description/blank", "Description", "   ", device.Device{}, report.Fields{}},

		{"profile/short-name", "Security Profile", "non-secure", device.Device{SecurityProfile: device.NonSecure}, report.Fields{SecurityProfile: true}},
		{"profile/label", "Security Profile", "Non Secure", device.Device{SecurityProfile: device.NonSecure}, report.Fields{SecurityProfile: true}},
		{"profile/upper-case", "Security Profile", "ENCRYPTED", device.Device{SecurityProfile: device.Encrypted}, report.Fields{SecurityProfile: true}},
		{"profile/authenticated", "Security Profile", "Authenticated", device.Device{SecurityProfile: device.Authenticated}, report.Fields{SecurityProfile: true}},
		{"profile/empty", "Security Profile", "", device.Device{}, report.Fields{}},

		{"mode/string", "Authentication Mode", "string", device.Device{AuthMode: device.AuthString}, report.Fields{AuthMode: true}},
		{"mode/string-label", "Authentication Mode", "By Authentication String", device.Device{AuthMode: device.AuthString}, report.Fields{AuthMode: true}},
		{"mode/null", "Authentication Mode", "null", device.Device{AuthMode: device.AuthNull}, report.Fields{AuthMode: true}},
		{"mode/null-label", "Authentication Mode", "By Null String", device.Device{AuthMode: device.AuthNull}, report.Fields{AuthMode: true}},
		{"mode/lsc", "Authentication Mode", "LSC", device.Device{AuthMode: device.AuthLSC}, report.Fields{AuthMode: true}},
		{"mode/lsc-label", "Authentication Mode", "By Existing Certificate (Precedence LSC)", device.Device{AuthMode: device.AuthLSC}, report.Fields{AuthMode: true}},
		{"mode/mic-label-lower-case", "Authentication Mode", "by existing certificate (precedence mic)", device.Device{AuthMode: device.AuthMIC}, report.Fields{AuthMode: true}},

		{"auth-string/4-digits", "Authentication String", "1234", device.Device{AuthString: "1234"}, report.Fields{AuthString: true}},
		{"auth-string/10-digits-leading-zero", "Authentication String", "0123456789", device.Device{AuthString: "0123456789"}, report.Fields{AuthString: true}},
		{"auth-string/empty", "Authentication String", "", device.Device{}, report.Fields{}},

		{"operation/install", "Certificate Operation", "install", device.Device{Operation: device.OpInstall}, report.Fields{Operation: true}},
		{"operation/install-label", "Certificate Operation", "Install/Upgrade", device.Device{Operation: device.OpInstall}, report.Fields{Operation: true}},
		{"operation/none-label", "Certificate Operation", "No Pending Operation", device.Device{Operation: device.OpNone}, report.Fields{Operation: true}},
		{"operation/delete", "Certificate Operation", "Delete", device.Device{Operation: device.OpDelete}, report.Fields{Operation: true}},
		{"operation/troubleshoot", "Certificate Operation", "troubleshoot", device.Device{Operation: device.OpTroubleshoot}, report.Fields{Operation: true}},

		{"key/rsa2048", "Key", "rsa2048", device.Device{Key: device.RSA2048}, report.Fields{Key: true}},
		{"key/upper-case", "Key", "RSA4096", device.Device{Key: device.RSA4096}, report.Fields{Key: true}},
		{"key/ec256", "Key", "ec256", device.Device{Key: device.EC256}, report.Fields{Key: true}},

		{"deadline/rfc3339", "Operation Completes By", "2026-03-01T17:00:00Z", device.Device{Deadline: deadline}, report.Fields{Deadline: true}},
		{"deadline/rfc3339-offset", "Operation Completes By", "2026-03-01T18:00:00+01:00", device.Device{Deadline: deadline}, report.Fields{Deadline: true}},
		{"deadline/short-utc", "Operation Completes By", "2026-03-01 17:00", device.Device{Deadline: deadline}, report.Fields{Deadline: true}},
		{"deadline/na", "Operation Completes By", "NA", device.Device{}, report.Fields{}},
		{"deadline/n-slash-a", "Operation Completes By", "n/a", device.Device{}, report.Fields{}},
		{"deadline/empty", "Operation Completes By", "", device.Device{}, report.Fields{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var file string
			if tt.column == "Device Name" {
				file = "Device Name\n" + tt.value + "\n"
			} else {
				file = "Device Name," + tt.column + "\n" + name1 + "," + tt.value + "\n"
			}
			rows := parseOK(t, file)
			if len(rows) != 1 {
				t.Fatalf("%d rows, want 1", len(rows))
			}
			want := report.Row{Line: 2, Device: tt.dev, Given: tt.given}
			want.Device.Name = name1
			equalRow(t, rows[0], want)
		})
	}
}

func TestParseImportBadValues(t *testing.T) {
	tests := []struct {
		name   string
		column string
		value  string
		want   string // the error after "line 3: column <column>: "
	}{
		{"name/empty", "Device Name", "", "device name is empty"},
		{"name/short-mac", "Device Name", "SEP1234", "12 hex digits"},
		{"name/not-hex", "Device Name", "SEP00112233445G", "12 hex digits"},
		{"name/unknown-prefix", "Device Name", "XYZ001122334455", "must start with SEP"},
		{"name/softphone-space", "Device Name", `"CSFJ DOE"`, "not allowed"},
		{"name/too-long", "Device Name", "CSF" + strings.Repeat("A", 48), "longer than 50"},

		{"description/too-long", "Description", strings.Repeat("x", 129), "129 bytes long; the limit is 128"},
		{"description/invalid-utf8", "Description", "caf\xe9", "not valid UTF-8"},
		{"description/control-character", "Description", "bell\x07", "U+0007"},
		{"description/carriage-return", "Description", "\"a\rb\"", "U+000D"},

		{"profile/unknown", "Security Profile", "secure", `security profile "secure"`},
		{"mode/unknown", "Authentication Mode", "password", `authentication mode "password"`},

		{"auth-string/too-short", "Authentication String", "123", "4 to 10 digits"},
		{"auth-string/too-long", "Authentication String", "12345678901", "4 to 10 digits"},
		{"auth-string/letters", "Authentication String", "12a4", "4 to 10 digits"},
		{"auth-string/spaces-inside", "Authentication String", "12 34", "4 to 10 digits"},

		{"operation/unknown", "Certificate Operation", "renew", `certificate operation "renew"`},

		{"key/odd-size", "Key", "rsa2047", `key "rsa2047"`},
		{"key/unknown-curve", "Key", "ec255", `key "ec255"`},
		{"key/dsa", "Key", "dsa1024", `key "dsa1024"`},

		{"deadline/words", "Operation Completes By", "tomorrow", `Operation Completes By "tomorrow"`},
		{"deadline/bad-month", "Operation Completes By", "2026-13-01 10:00", `Operation Completes By "2026-13-01 10:00"`},
		{"deadline/us-style", "Operation Completes By", "03/01/2026", `Operation Completes By "03/01/2026"`},
		{"deadline/seconds-in-short-form", "Operation Completes By", "2026-03-01 10:00:00", "RFC 3339"},
		{"deadline/year-too-early", "Operation Completes By", "0001-01-01T00:00:00Z", "year must be from 2000"},
		{"deadline/year-past-9999-in-utc", "Operation Completes By", "9999-12-31T23:00:00-02:00", "year must be from 2000 to 9999"},

		{"too-long/description", "Description", strings.Repeat("x", 1025), "the value is 1025 bytes long; the limit is 1024"},
		{"too-long/ignored-report-column", "LSC Issuer", strings.Repeat("x", 1025), "the value is 1025 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Line 1 header, line 2 a good row, line 3 the bad one.
			file := "Device Name," + tt.column + "\r\nSEP0011223344AA,\r\n" + name1 + "," + tt.value + "\r\n"
			if tt.column == "Device Name" {
				file = "Device Name,Key\r\nSEP0011223344AA,\r\n" + tt.value + ",rsa2048\r\n"
			}
			_, err := report.ParseImport(strings.NewReader(file))
			wantInvalid(t, err, "line 3: column "+tt.column+": ", tt.want)
		})
	}
}

func TestParseImportLineNumbers(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // error prefix
	}{
		{"blank-lines-count", header + "\r\n\r\n" + name1 + ",,,,12,,,\r\n", "line 4: column Authentication String:"},
		{"multi-line-field-counts", "Device Name,Description\n" + name1 + ",\"a\nb\nc\"\nSEP0011223344AA,\"x\x01\"\n", "line 5: column Description:"},
		{"error-inside-multi-line-row-names-its-start", "Device Name,Description,Key\n" + name1 + ",\"a\nb\",rsa1\n", "line 2: column Key:"},
		{"header-after-blank-lines", "\n\nDevice Name\nSEP12\n", "line 4: column Device Name:"},
		{"bom-does-not-shift", "\ufeffDevice Name\r\n" + name1 + "\r\nbad\r\n", "line 3: column Device Name:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report.ParseImport(strings.NewReader(tt.file))
			wantInvalid(t, err, tt.want)
		})
	}
}

func TestParseImportRowLines(t *testing.T) {
	file := "Device Name,Description\r\n" +
		name1 + ",\"two\r\nlines\"\r\n" +
		"\r\n" +
		"SEP0011223344AA,x\r\n"
	rows := parseOK(t, file)
	if len(rows) != 2 || rows[0].Line != 2 || rows[1].Line != 5 {
		t.Errorf("rows = %+v, want lines 2 and 5", rows)
	}
}

func TestParseImportHeader(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr string // error prefix; "" for success
		parts   []string
	}{
		{"ok/usual-order", header + name1 + ",d,encrypted,null,,install,ec384,\r\n", "", nil},
		{"ok/any-order-and-case", "KEY, certificate operation ,DEVICE NAME\n" + "ec384,install," + name1 + "\n", "", nil},
		{"ok/bom", "\ufeff" + header + name1 + ",d,encrypted,null,,install,ec384,\r\n", "", nil},
		{"ok/lf-line-endings", strings.ReplaceAll(header, "\r\n", "\n") + name1 + ",d,encrypted,null,,install,ec384,\n", "", nil},
		{"ok/no-final-newline", header + name1 + ",d,encrypted,null,,install,ec384,", "", nil},
		{"ok/report-columns-ignored", strings.TrimSuffix(header, "\r\n") + ",LSC Status,Operation Status,LSC Serial,LSC Issuer,LSC Valid Until\r\n" +
			name1 + ",d,Encrypted,By Null String,,Install/Upgrade,ec384,NA,valid,Upgrade Success,0A1B,CN=CAPF,2027-01-01T00:00:00Z\r\n", "", nil},
		{"ok/blank-trailing-lines", header + name1 + ",d,encrypted,null,,install,ec384,\r\n\r\n\r\n", "", nil},
		{"ok/empty-trailing-rows", header + name1 + ",d,encrypted,null,,install,ec384,\r\n,,,,,,,\r\n , , ,,,,,\r\n", "", nil},
		{"ok/whitespace-only-line", header + name1 + ",d,encrypted,null,,install,ec384,\r\n   \r\n", "", nil},
		{"fail/empty-file", "", "line 1: the file is empty", nil},
		{"fail/bom-only", "\ufeff", "line 1: the file is empty", nil},
		{"fail/missing-device-name", "Description,Key\nd,rsa2048\n", `line 1: the required column "Device Name" is missing`, nil},
		{"fail/unknown-column", "Device Name,Colour\n" + name1 + ",red\n", `line 1: unknown column "Colour"`, []string{"Device Name, Description"}},
		{"fail/no-header", name1 + ",d,encrypted,null,,install,ec384,\n", `line 1: unknown column "SEP001122334455"`, []string{"must be the header"}},
		{"fail/empty-column-name", "Device Name,\n" + name1 + ",\n", `line 1: unknown column ""`, nil},
		{"fail/duplicate-column", "Device Name,Key,key\n" + name1 + ",rsa2048,rsa2048\n", `line 1: column "key" appears twice (fields 2 and 3)`, nil},
		{"fail/too-few-fields", header + name1 + ",d\r\n", "line 2: the row has 2 fields, the header 8", nil},
		{"fail/too-many-fields", "Device Name,Key\n" + name1 + ",rsa2048,extra\n", "line 2: the row has 3 fields, the header 2", nil},
		{"fail/bare-quote", "Device Name,Description\n" + name1 + ",ab\"c\n", "line 2: CSV syntax error", []string{`bare "`}},
		{"fail/unterminated-quote", "Device Name,Description\n" + name1 + ",\"abc\n", "line 2: CSV syntax error", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := report.ParseImport(strings.NewReader(tt.file))
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr, tt.parts...)
				return
			}
			if err != nil {
				t.Fatalf("ParseImport: %v", err)
			}
			if len(rows) != 1 || rows[0].Device.Name != name1 || rows[0].Line != 2 {
				t.Fatalf("rows = %+v, want %s on line 2", rows, name1)
			}
			if d := rows[0].Device; d.Key != device.EC384 || d.Operation != device.OpInstall {
				t.Errorf("device = %+v", d)
			}
		})
	}
}

func TestParseImportHeaderOnly(t *testing.T) {
	rows := parseOK(t, header)
	if len(rows) != 0 {
		t.Errorf("rows = %+v, want none", rows)
	}
}

func TestParseImportFullRow(t *testing.T) {
	rows := parseOK(t, header+"csfjdoe,Jane's Jabber,Non Secure,By Authentication String,20260301,Install/Upgrade,RSA2048,2026-03-01 17:00\r\n")
	want := report.Row{
		Line: 2,
		Device: device.Device{
			Name: "CSFJDOE", Description: "Jane's Jabber", SecurityProfile: device.NonSecure,
			AuthMode: device.AuthString, AuthString: "20260301", Operation: device.OpInstall,
			Key: device.RSA2048, Deadline: time.Date(2026, 3, 1, 17, 0, 0, 0, time.UTC),
		},
		Given: report.Fields{Description: true, SecurityProfile: true, AuthMode: true, AuthString: true, Operation: true, Key: true, Deadline: true},
	}
	equalRow(t, rows[0], want)
}

// TestParseImportNoCrossFieldRules checks that the parser leaves rules
// relating fields to the service: an encrypted phone cannot use an
// authentication string, but that is not the parser's to say.
func TestParseImportNoCrossFieldRules(t *testing.T) {
	rows := parseOK(t, header+name1+",,encrypted,string,1234,delete,,\r\n")
	if d := rows[0].Device; d.SecurityProfile != device.Encrypted || d.AuthMode != device.AuthString {
		t.Errorf("device = %+v", d)
	}
}

func TestParseImportDuplicateDevice(t *testing.T) {
	file := "Device Name,Key\r\n" +
		"sep001122334455,rsa2048\r\n" +
		"SEP0011223344AA,rsa2048\r\n" +
		" SEP001122334455,ec256\r\n"
	_, err := report.ParseImport(strings.NewReader(file))
	wantInvalid(t, err, "line 4: column Device Name: ", "SEP001122334455", "lines 2 and 4")
}

func TestParseImportRowLimit(t *testing.T) {
	tests := []struct {
		name    string
		rows    int
		wantErr string
	}{
		{"ok/at-limit", report.MaxRows, ""},
		{"fail/one-over", report.MaxRows + 1, fmt.Sprintf("line %d: the file has more than %d rows", report.MaxRows+2, report.MaxRows)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := report.ParseImport(strings.NewReader(importFile(tt.rows)))
			if tt.wantErr != "" {
				wantInvalid(t, err, tt.wantErr)
				return
			}
			if err != nil || len(rows) != tt.rows {
				t.Fatalf("ParseImport = %d rows, %v; want %d", len(rows), err, tt.rows)
			}
		})
	}
}

func TestParseImportRowTooLong(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{"unterminated-quote", "Device Name,Description\n" + name1 + ",x\n" + name1 + ",\"" + strings.Repeat("a\n", 40_000)},
		{"one-long-line", "Device Name,Description\n" + name1 + ",x\n" + name1 + "," + strings.Repeat("a", 100_000) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := report.ParseImport(strings.NewReader(tt.file))
			wantInvalid(t, err, "line 3: the row is longer than 65536 bytes")
		})
	}
}

// errAfter returns the bytes of s, then fails.
type errAfter struct {
	s   *strings.Reader
	err error
}

func (r *errAfter) Read(p []byte) (int, error) {
	if r.s.Len() == 0 {
		return 0, r.err
	}
	return r.s.Read(p)
}

func TestParseImportReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := report.ParseImport(&errAfter{s: strings.NewReader(header + name1 + ",,,,,,,\r\n"), err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want it to wrap %v", err, boom)
	}
	if k := fault.KindOf(err); k == fault.Invalid {
		t.Errorf("kind = %v: a read failure is not the file's fault", k)
	}
}

// importFile returns an import file of n devices with every column.
func importFile(n int) string {
	var b strings.Builder
	b.WriteString(header)
	for i := range n {
		fmt.Fprintf(&b, "SEP%012X,Phone %d,Non Secure,By Authentication String,%06d,Install/Upgrade,rsa2048,2026-03-01T17:00:00Z\r\n", i, i, i)
	}
	return b.String()
}

// BenchmarkParseImport10k parses a file of 10,000 devices with every column.
func BenchmarkParseImport10k(b *testing.B) {
	file := importFile(10_000)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		rows, err := report.ParseImport(strings.NewReader(file))
		if err != nil || len(rows) != 10_000 {
			b.Fatalf("ParseImport = %d rows, %v", len(rows), err)
		}
	}
}
