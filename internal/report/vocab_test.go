package report_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
)

// TestImportSpeaksCallManager: the values the UI shows and CallManager's
// BAT spellings import beside the CLI's, whatever their case and spacing.
func TestImportSpeaksCallManager(t *testing.T) {
	tests := []struct {
		profile, mode, op, key string
		want                   device.Device
	}{
		{"Non Secure", "By Null String", "Install/Upgrade", "RSA 2048",
			device.Device{SecurityProfile: device.NonSecure, AuthMode: device.AuthNull, Operation: device.OpInstall, Key: device.RSA2048}},
		{"NON-SECURE", "by  authentication string", "install / upgrade", "rsa 1024",
			device.Device{SecurityProfile: device.NonSecure, AuthMode: device.AuthString, Operation: device.OpInstall, Key: device.RSA1024}},
		{"non_secure", "string", "install", "rsa4096",
			device.Device{SecurityProfile: device.NonSecure, AuthMode: device.AuthString, Operation: device.OpInstall, Key: device.RSA4096}},
		{"Authenticated", "By Existing Certificate (Precedence LSC)", "No Pending Operation", "EC P-256",
			device.Device{SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC, Operation: device.OpNone, Key: device.EC256}},
		{"authenticated", "By Existing Certificate (precedence to LSC)", "none", "ec384",
			device.Device{SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC, Operation: device.OpNone, Key: device.EC384}},
		{"Encrypted", "By Existing Certificate (Precedence MIC)", "Troubleshoot", "EC P-521",
			device.Device{SecurityProfile: device.Encrypted, AuthMode: device.AuthMIC, Operation: device.OpTroubleshoot, Key: device.EC521}},
		{" encrypted ", "By Existing Certificate (precedence to MIC)", "Delete", "2048",
			device.Device{SecurityProfile: device.Encrypted, AuthMode: device.AuthMIC, Operation: device.OpDelete, Key: device.RSA2048}},
		{"Encrypted", "null", "DELETE", "256",
			device.Device{SecurityProfile: device.Encrypted, AuthMode: device.AuthNull, Operation: device.OpDelete, Key: device.EC256}},
		{"Encrypted", "null", "upgrade", "P-384",
			device.Device{SecurityProfile: device.Encrypted, AuthMode: device.AuthNull, Operation: device.OpInstall, Key: device.EC384}},
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.mode+"/"+tt.op+"/"+tt.key, func(t *testing.T) {
			file := "Device Name,Security Profile,Authentication Mode,Certificate Operation,Key\r\n" +
				fmt.Sprintf("%s,%s,%s,%s,%s\r\n", name1, tt.profile, tt.mode, tt.op, tt.key)
			rows := parseOK(t, file)
			got := rows[0].Device
			if got.SecurityProfile != tt.want.SecurityProfile || got.AuthMode != tt.want.AuthMode || got.Operation != tt.want.Operation || got.Key != tt.want.Key {
				t.Errorf("parsed %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"RSA 2047", "EC P-255", "DSA 1024", "ecc", "256k"} {
		if _, err := device.ParseKeySpec(bad); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}

// TestReportWritesTheUIVocabulary: every fixed-vocabulary column of the
// report is in the words the UI shows, and imports back.
func TestReportWritesTheUIVocabulary(t *testing.T) {
	d := device.Device{Name: name1, SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC, Operation: device.OpInstall, Key: device.EC256}
	var b strings.Builder
	if err := report.WriteReport(&b, []device.Device{d}, now); err != nil {
		t.Fatal(err)
	}
	if want := ",Authenticated,By Existing Certificate (Precedence LSC),,Install/Upgrade,EC P-256,"; !strings.Contains(b.String(), want) {
		t.Errorf("report %q lacks %q", b.String(), want)
	}
	got := parseOK(t, b.String())[0].Device
	if got.Key != d.Key || got.AuthMode != d.AuthMode || got.SecurityProfile != d.SecurityProfile || got.Operation != d.Operation {
		t.Errorf("round trip %+v, want %+v", got, d)
	}
}

// TestImportNamesEveryBadRow: a bad file names every problem with its
// line, column and reason as data, up to device.MaxRowProblems, and gives
// no row.
func TestImportNamesEveryBadRow(t *testing.T) {
	file := "Device Name,Key,Certificate Operation\r\n" +
		name1 + ",RSA 2048,install\r\n" + // line 2: good
		"SEP0011223344AA,rsa1,install\r\n" + // line 3: bad key
		"SEPXYZ,ec256,explode\r\n" + // line 4: bad name and operation
		name1 + ",ec256,none\r\n" + // line 5: duplicate
		"SEP0011223344BB,ec256\r\n" // line 6: too few fields
	rows, err := report.ParseImport(strings.NewReader(file))
	if rows != nil {
		t.Errorf("rows %+v from a bad file", rows)
	}
	wantInvalid(t, err, "line 3: column Key: ", "line 4: column Device Name", "line 4: column Certificate Operation", "line 5: column Device Name", "lines 2 and 5", "line 6: the row has 2 fields", "nothing was imported")
	ps, more := device.RowProblemsOf(err)
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%d/%s", p.Line, p.Column))
	}
	if want := "3/Key 4/Device Name 4/Certificate Operation 5/Device Name 6/"; strings.Join(got, " ") != want || more {
		t.Errorf("problems %q (more %v), want %q", got, more, want)
	}

	var big strings.Builder
	big.WriteString("Device Name\r\n")
	for i := range 150 {
		fmt.Fprintf(&big, "BAD%d\r\n", i)
	}
	_, err = report.ParseImport(strings.NewReader(big.String()))
	if ps, more := device.RowProblemsOf(err); len(ps) != device.MaxRowProblems || !more || ps[99].Line != 101 {
		t.Errorf("%d problems (more %v), want the first %d and more", len(ps), more, device.MaxRowProblems)
	}
	if !strings.Contains(err.Error(), "and more") {
		t.Errorf("error %q does not say there are more", err)
	}
}
