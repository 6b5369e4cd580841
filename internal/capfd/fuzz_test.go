package capfd

import (
	"testing"
	"unicode/utf8"
)

// FuzzMap: whatever a capfd row holds, Map never panics, and every row is
// either mapped or skipped, a skipped one with a reason and a printable
// name.
func FuzzMap(f *testing.F) {
	capf := newCA(f, "fuzz CAPF")
	pemText, _ := capf.lsc(f, "SEP000000000001", 1, now.AddDate(1, 0, 0))
	f.Add("SEP000000000001", "install", "password", "1234", "2048", "", "", "", "", "")
	f.Add("SEP000000000001", "fetch", "certificate", "", "", "secp256r1", pemText, "1", "2025-01-01 00:00:00", "x")
	f.Add("CSF\x00", "none", "no password", "", "-1", "secp521r1", "-----BEGIN CERTIFICATE-----\n", "zz", "", "")
	f.Fuzz(func(t *testing.T, name, op, auth, pw, size, curve, cert, serial, nb, na string) {
		rows := []Row{{N: 1, DeviceName: name, Operation: op, Authentication: auth, Password: pw, KeySize: size,
			CurveName: curve, Certificate: cert, SerialNumber: serial, NotValidBefore: nb, NotValidAfter: na}}
		p := Map(rows, Options{CAPF: capf.cert, Now: now})
		if len(p.Rows)+len(p.Skipped) != 1 {
			t.Fatalf("%d mapped, %d skipped; want the one row in one of them", len(p.Rows), len(p.Skipped))
		}
		for _, s := range p.Skipped {
			if s.Reason == "" || !utf8.ValidString(s.Name) {
				t.Fatalf("skipped %+v", s)
			}
			for _, c := range s.Name {
				if (c < 0x20 || c > 0x7e) && c != '…' { // the ellipsis of safetext's length marker
					t.Fatalf("skipped name %q is not printable ASCII", s.Name)
				}
			}
		}
	})
}
