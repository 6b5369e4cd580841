package capfd

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// schema is capfd's table, exactly.
const schema = `CREATE TABLE devices (device_name TEXT PRIMARY KEY, operation TEXT NOT NULL, authentication TEXT, password TEXT, key_size INTEGER, curve_name TEXT, certificate TEXT, serial_number TEXT, not_valid_before TEXT, not_valid_after TEXT)`

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// testCA is a CA as `openssl req -x509` makes one: CA:TRUE, no key usage.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(9, 0, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{c, key}
}

// lsc issues an LSC for cn as capfd does; it returns the PEM and the
// certificate.
func (c *testCA) lsc(t testing.TB, cn string, serial int64, notAfter time.Time) (string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.AddDate(-2, 0, 0), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), cert
}

// writeDB makes a capfd database with rows (nil is NULL).
func writeDB(t *testing.T, rows [][]any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capfd.sqlite3")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := db.Exec(`INSERT INTO devices VALUES (?,?,?,?,?,?,?,?,?,?)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestReadAndMap(t *testing.T) {
	capf, other, issuer := newCA(t, "capfd CAPF"), newCA(t, "somebody else"), newCA(t, "capfd issuing CA")
	goodPEM, good := capf.lsc(t, "SEP000000000001", 0x1A2B, now.AddDate(1, 0, 0))
	issPEM, iss := issuer.lsc(t, "SEP000000000002", 77, now.AddDate(1, 0, 0))
	oldPEM, _ := capf.lsc(t, "SEP000000000003", 5, now.AddDate(0, -1, 0))
	foreignPEM, _ := other.lsc(t, "SEP0000000000F1", 9, now.AddDate(1, 0, 0))
	wrongCN, _ := capf.lsc(t, "SEP00000000FFFF", 10, now.AddDate(1, 0, 0))
	mismatchPEM, _ := capf.lsc(t, "SEP0000000000F2", 11, now.AddDate(1, 0, 0))
	rows := [][]any{
		// device_name, operation, authentication, password, key_size, curve_name, certificate, serial_number, not_valid_before, not_valid_after
		{"SEP000000000001", "install", "certificate", nil, nil, "secp384r1", goodPEM, "1A2B", good.NotBefore.Format("2006-01-02 15:04:05"), good.NotAfter.Format(time.RFC3339)},
		{"SEP000000000002", "fetch", "certificate", nil, 2048, nil, issPEM, fmt.Sprint(iss.SerialNumber), nil, nil},
		{"SEP000000000003", "none", "no password", nil, nil, nil, oldPEM, "05", nil, "2001-01-01 00:00:00"},
		{"sep000000000004", "install", "password", "123456", 1024, nil, nil, nil, nil, nil},
		{"SEP000000000005", "delete", nil, nil, nil, "secp521r1", nil, nil, nil, nil},
		{"SEP000000000006", "install", "password", nil, nil, nil, nil, nil, nil, nil},
		{"SEP000000000007", "none", "certificate", nil, nil, nil, wrongCN, nil, nil, nil},
		// Rows that cannot be mapped.
		{"SEP0000000000B1", "renew", "password", "1234", nil, nil, nil, nil, nil, nil},
		{"SEP0000000000B2", "install", "no password", nil, nil, "secp192r1", nil, nil, nil, nil},
		{"SEP0000000000B3", "install", "no password", nil, nil, nil, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", nil, nil, nil},
		{"SEP0000000000F2", "none", "certificate", nil, nil, nil, mismatchPEM, "12", nil, nil},
		{"SEP0000000000F1", "none", "certificate", nil, nil, nil, foreignPEM, nil, nil, nil},
		{"SEP0000000000B4", "install", "password", "12ab", nil, nil, nil, nil, nil, nil},
		{"SEP0000000000B5", "install", "biometrics", nil, nil, nil, nil, nil, nil, nil},
		{"SEP0000000000B6", "install", "no password", nil, 1536, nil, nil, nil, nil, nil},
		{"PHONE-1", "install", "no password", nil, nil, nil, nil, nil, nil, nil},
		{"SEP0000000000b1x", "install", nil, nil, nil, nil, nil, nil, nil, nil},
		{"SEP0000000000C1", "install", nil, nil, nil, nil, "just text", nil, nil, nil},
	}
	path := writeDB(t, rows)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rows) {
		t.Fatalf("Read: %d rows, want %d", len(got), len(rows))
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("Read changed the capfd database")
	}
	p := Map(got, Options{CAPF: capf.cert, Issuers: []*x509.Certificate{issuer.cert}, Now: now})

	mapped := map[string]device.ImportRow{}
	for _, r := range p.Rows {
		mapped[r.Device.Name] = r
		if !r.MustCreate {
			t.Errorf("%s: MustCreate = false", r.Device.Name)
		}
	}
	type want struct {
		op   device.Operation
		mode device.AuthMode
		str  string
		key  device.KeySpec
		lsc  string
	}
	for name, w := range map[string]want{
		"SEP000000000001": {device.OpInstall, device.AuthLSC, "", device.EC384, "1A2B"},
		"SEP000000000002": {device.OpTroubleshoot, device.AuthLSC, "", device.RSA2048, "4D"},
		"SEP000000000003": {device.OpNone, device.AuthNull, "", "", "05"},
		"SEP000000000004": {device.OpInstall, device.AuthString, "123456", device.RSA1024, ""},
		"SEP000000000005": {device.OpDelete, device.AuthNull, "", device.EC521, ""},
		"SEP000000000006": {device.OpInstall, device.AuthString, "", "", ""},
		"SEP000000000007": {device.OpNone, device.AuthLSC, "", "", "0A"},
	} {
		r, ok := mapped[name]
		if !ok {
			t.Errorf("%s not mapped", name)
			continue
		}
		d := r.Device
		if d.Operation != w.op || d.AuthMode != w.mode || d.AuthString != w.str || d.Key != w.key {
			t.Errorf("%s = op %s mode %s string %q key %s; want %+v", name, d.Operation, d.AuthMode, d.AuthString, d.Key, w)
		}
		switch {
		case w.lsc == "" && r.LSC != nil:
			t.Errorf("%s: LSC %s, want none", name, r.LSC.Serial)
		case w.lsc != "" && (r.LSC == nil || r.LSC.Serial != w.lsc):
			t.Errorf("%s: LSC %+v, want serial %s", name, r.LSC, w.lsc)
		}
	}
	if r := mapped["SEP000000000001"]; r.LSC == nil || string(r.LSC.DER) != string(good.Raw) || r.LSC.Issuer != good.Issuer.String() || !r.LSC.NotAfter.Equal(good.NotAfter) {
		t.Errorf("SEP000000000001 LSC = %+v, want the certificate capfd issued", r.LSC)
	}
	if len(p.Rows) != 7 || p.LSCs != 4 {
		t.Errorf("mapped %d rows, %d LSCs; want 7, 4", len(p.Rows), p.LSCs)
	}

	skipped := map[string]string{}
	for _, s := range p.Skipped {
		skipped[s.Name] = s.Reason
		if s.N < 1 || s.N > len(rows) {
			t.Errorf("skipped %s: row number %d", s.Name, s.N)
		}
	}
	for name, reason := range map[string]string{
		"SEP0000000000B1":  `operation "renew" is unknown`,
		"SEP0000000000B2":  `curve_name "secp192r1" is unknown`,
		"SEP0000000000B3":  "certificate does not parse",
		"SEP0000000000F2":  `serial_number "12" does not match the certificate's serial 0B`,
		"SEP0000000000F1":  "was not signed by the CAPF certificate",
		"SEP0000000000B4":  "password: must be 4 to 10 digits",
		"SEP0000000000B5":  `authentication "biometrics" is unknown`,
		"SEP0000000000B6":  `key_size "1536"`,
		"PHONE-1":          "device_name",
		"SEP0000000000b1x": "device_name",
		"SEP0000000000C1":  "no PEM certificate",
	} {
		if got, ok := skipped[name]; !ok || !strings.Contains(got, reason) {
			t.Errorf("skipped[%s] = %q (listed %v), want it to say %q", name, got, ok, reason)
		}
	}
	if len(p.Skipped) != 11 {
		t.Errorf("%d rows skipped, want 11: %+v", len(p.Skipped), p.Skipped)
	}

	notes := map[string][]string{}
	for _, n := range p.Notes {
		notes[n.Name] = append(notes[n.Name], n.Text)
	}
	for name, text := range map[string]string{
		"SEP000000000003": "expired",
		"SEP000000000006": "a new authentication string is generated",
		"SEP000000000007": "does not name the device",
	} {
		if !strings.Contains(strings.Join(notes[name], "|"), text) {
			t.Errorf("notes[%s] = %q, want one saying %q", name, notes[name], text)
		}
	}
	if n := notes["SEP000000000003"]; !strings.Contains(strings.Join(n, "|"), "not_valid_after 2001-01-01T00:00:00Z differs") {
		t.Errorf("notes[SEP000000000003] = %q, want the not_valid_after mismatch", n)
	}
	if n := notes["SEP000000000001"]; len(n) != 0 {
		t.Errorf("notes[SEP000000000001] = %q, want none (its dates match)", n)
	}
}

func TestMapDuplicateAfterNormalizing(t *testing.T) {
	// capfd's primary key is case-sensitive; ours is not.
	path := writeDB(t, [][]any{
		{"SEP0000000000AA", "none", nil, nil, nil, nil, nil, nil, nil, nil},
		{"sep0000000000aa", "install", nil, nil, nil, nil, nil, nil, nil, nil},
	})
	rows, err := Read(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	p := Map(rows, Options{Now: now})
	if len(p.Rows) != 1 || len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0].Reason, "also row 1") {
		t.Fatalf("rows %d, skipped %+v; want the second name refused as a duplicate of row 1", len(p.Rows), p.Skipped)
	}
}

func TestReadRefuses(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "text")
	if err := os.WriteFile(notDB, []byte("this is not a database, but it is long enough to look like a file of some sort......................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherTable := filepath.Join(dir, "other.sqlite3")
	db, err := sql.Open("sqlite", otherTable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE devices (device_name TEXT, operation TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	long := writeDB(t, [][]any{{"SEP000000000001", strings.Repeat("x", MaxFieldLen+1), nil, nil, nil, nil, nil, nil, nil, nil}})
	for _, tc := range []struct{ name, path, want string }{
		{"fail/missing", filepath.Join(dir, "nope"), "no such file"},
		{"fail/not-sqlite", notDB, "not a SQLite database"},
		{"fail/other-schema", otherTable, "lacks the column(s) authentication, password"},
		{"fail/long-value", long, "column operation is 1025 bytes long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(t.Context(), tc.path)
			if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read = %v, want an Invalid error saying %q", err, tc.want)
			}
		})
	}
}

func TestDescribeCAPF(t *testing.T) {
	c := newCA(t, "openssl req -x509")
	got := strings.Join(DescribeCAPF(c.cert, now), "\n")
	for _, want := range []string{"no key-usage extension", "no extended key usage", "no path-length constraint"} {
		if !strings.Contains(got, want) {
			t.Errorf("DescribeCAPF = %q, want it to say %q", got, want)
		}
	}
	if got := strings.Join(DescribeCAPF(c.cert, c.cert.NotAfter.Add(time.Hour)), "\n"); !strings.Contains(got, "EXPIRED") {
		t.Errorf("DescribeCAPF after expiry = %q, want EXPIRED", got)
	}
}
