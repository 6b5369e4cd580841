package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/capf-server/capf/internal/cli"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/wire"
)

// capfdSchema is the table capfd, the Python CAPF daemon, keeps, exactly.
const capfdSchema = `CREATE TABLE devices (device_name TEXT PRIMARY KEY, operation TEXT NOT NULL, authentication TEXT, password TEXT, key_size INTEGER, curve_name TEXT, certificate TEXT, serial_number TEXT, not_valid_before TEXT, not_valid_after TEXT)`

// capfdInstall is a capfd installation made in the test: its CAPF
// certificate and key as `openssl req -x509` makes them (CA:TRUE, no key
// usage), its database, and a phone holding an LSC it issued.
type capfdInstall struct {
	ca       *x509.Certificate
	caKey    crypto.Signer
	pemFile  string // certificate and key in one PEM file (--capf)
	db       string
	lscPhone string
	lsc      *phonesim.Credential
	pwPhone  string
	bad      map[string]string // device name → what the report must say
	// A separate issuing CA (--issuer) and a phone holding an LSC it
	// issued.
	issuerFile  string
	issuerPhone string
	issuerLSC   *phonesim.Credential
}

func newCapfdInstall(t *testing.T) *capfdInstall {
	t.Helper()
	dir := t.TempDir()
	in := &capfdInstall{lscPhone: "SEP0000000CAF01", pwPhone: "SEP0000000CAF02", issuerPhone: "SEP0000000CAF03"}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x5EED), Subject: pkix.Name{CommonName: "capfd CAPF", Organization: []string{"Example"}},
		NotBefore: time.Now().Add(-365 * 24 * time.Hour), NotAfter: time.Now().Add(9 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	in.ca, _ = x509.ParseCertificate(der)
	in.caKey = key
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	in.pemFile = filepath.Join(dir, "capf.pem")
	pair := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(in.pemFile, pair, 0o600); err != nil {
		t.Fatal(err)
	}

	// The LSC capfd issued to a phone: signed with capfd's CAPF key.
	lscPEM, lsc := in.issue(t, in.lscPhone, 0x0CAF01)
	_, other := in.issue(t, "SEP0000000CAFF2", 0x0CAFF2)
	otherPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Certificate.Raw}))
	in.lsc = lsc
	// The separate issuing CA: its certificate (and key, which the
	// migration must not use) in the --issuer file.
	iss := newPKI(t, "capfd issuing CA")
	issKeyDER, _ := x509.MarshalPKCS8PrivateKey(iss.key)
	in.issuerFile = filepath.Join(dir, "issuer.pem")
	if err := os.WriteFile(in.issuerFile, append(iss.pem(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: issKeyDER})...), 0o600); err != nil {
		t.Fatal(err)
	}
	in.issuerLSC = iss.issue(t, in.issuerPhone, false, false)
	issuerPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: in.issuerLSC.Certificate.Raw}))
	in.bad = map[string]string{
		"SEP0000000CAFF0": `operation "renew" is unknown`,
		"SEP0000000CAFF1": `curve_name "secp192k1" is unknown`,
		"SEP0000000CAFF2": "does not match the certificate's serial",
		"SEP0000000CAFF3": "certificate does not parse",
	}
	in.db = filepath.Join(dir, "capfd.sqlite3")
	db, err := sql.Open("sqlite", in.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(capfdSchema); err != nil {
		t.Fatal(err)
	}
	na := lsc.Certificate.NotAfter.UTC().Format("2006-01-02 15:04:05")
	for _, r := range [][]any{
		{in.lscPhone, "install", "certificate", nil, nil, "secp256r1", lscPEM, fmt.Sprintf("%X", lsc.Certificate.SerialNumber), nil, na},
		{in.pwPhone, "install", "password", "24680", nil, "secp256r1", nil, nil, nil, nil},
		{in.issuerPhone, "install", "certificate", nil, nil, "secp256r1", issuerPEM, in.issuerLSC.Certificate.SerialNumber.String(), nil, nil},
		{"SEP0000000CAFF0", "renew", "no password", nil, nil, nil, nil, nil, nil, nil},
		{"SEP0000000CAFF1", "install", "no password", nil, nil, "secp192k1", nil, nil, nil, nil},
		{"SEP0000000CAFF2", "none", "certificate", nil, nil, nil, otherPEM, "1234", nil, nil},
		{"SEP0000000CAFF3", "none", "certificate", nil, nil, nil, "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n", nil, nil, nil},
	} {
		if _, err := db.Exec(`INSERT INTO devices VALUES (?,?,?,?,?,?,?,?,?,?)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

// issue makes an LSC for cn signed by capfd's CAPF key, as capfd does.
func (in *capfdInstall) issue(t *testing.T, cn string, serial int64) (string, *phonesim.Credential) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-30 * 24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, in.ca, key.Public(), in.caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), &phonesim.Credential{Certificate: c, Key: key}
}

// TestMigrateFromCapfd carries a capfd installation over, on SQLite and on
// PostgreSQL with the keys in the database: a dry run changes nothing;
// the report names every row it could not map; a second run is refused
// (the devices exist) unless --force; the server then presents capfd's
// CAPF certificate, a phone holding the LSC capfd issued re-keys by that
// LSC and gets a new LSC signed by the same CAPF key, and a phone with
// capfd's password enrols with it.
func TestMigrateFromCapfd(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			in := newCapfdInstall(t)
			data := filepath.Join(t.TempDir(), "capf")
			globals := []string{"--data", data}
			if backend == "postgres" {
				kekFile := filepath.Join(t.TempDir(), "kek")
				if _, err := kek.Generate(kekFile, nil); err != nil {
					t.Fatal(err)
				}
				globals = append(globals, "--db", pgtest.DSN(t), "--kek-file", kekFile)
			}
			migrate := func(extra ...string) (string, int) {
				out, errOut, code := capfRun(append(append(globals, "migrate-from", "capfd", in.db, "--capf", in.pemFile, "--issuer", in.issuerFile), extra...)...)
				return out + errOut, code
			}

			// A dry run reports and changes nothing.
			out, code := migrate("--dry-run")
			if code != 0 {
				t.Fatalf("dry run: exit %d\n%s", code, out)
			}
			checkMigrationReport(t, out, in)
			if !strings.Contains(out, "dry run: nothing was changed") {
				t.Errorf("dry run output lacks its last line:\n%s", out)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the dry run made the data directory: %v", err)
			}
			if backend == "postgres" {
				if o, _, code := capfRun(append(globals, "device", "list")...); code == 0 && strings.Contains(o, "SEP0000000CAF") {
					t.Errorf("the dry run wrote devices:\n%s", o)
				}
			}

			out, code = migrate()
			if code != 0 {
				t.Fatalf("migrate: exit %d\n%s", code, out)
			}
			checkMigrationReport(t, out, in)
			if !strings.Contains(out, "migrated: 3 devices created") {
				t.Errorf("migrate output:\n%s", out)
			}
			// Again: the devices exist, and nothing changes without --force.
			if out, code = migrate(); code == 0 || !strings.Contains(out, "3 of capfd's devices exist already") {
				t.Errorf("second migration: exit %d, want a refusal naming the devices that exist\n%s", code, out)
			}
			if out, code = migrate("--force"); code != 0 || !strings.Contains(out, "0 devices created, 0 updated, 3 unchanged") {
				t.Errorf("second migration with --force: exit %d, want 3 unchanged\n%s", code, out)
			}
			auditBefore := migrateAudit(t, globals)
			if !strings.Contains(auditBefore, "migrate.capfd") {
				t.Errorf("audit lacks the migration:\n%s", auditBefore)
			}
			// A dry run over the migrated installation changes nothing
			// either (not even the audit).
			if out, code = migrate("--dry-run", "--force"); code != 0 || !strings.Contains(out, "exist already: 3 devices, updated") {
				t.Errorf("dry run over the migrated installation: exit %d\n%s", code, out)
			}
			if after := migrateAudit(t, globals); after != auditBefore {
				t.Errorf("the dry run changed the audit:\n%s\nwas:\n%s", after, auditBefore)
			}

			// The phone's LSC is on record, as capfd issued it.
			if d := showMigrated(t, globals, in.lscPhone); d.LSCStatus != "valid" || !strings.EqualFold(d.LSCSerial, "0CAF01") ||
				d.AuthMode != "lsc" || d.Operation != "install" || d.Status != "Operation Pending" {
				t.Errorf("device %s as migrated: %+v", in.lscPhone, d)
			}
			if d := showMigrated(t, globals, in.pwPhone); d.AuthMode != "string" || d.AuthString != "24680" || d.LSCStatus != "none" {
				t.Errorf("device %s as migrated: %+v", in.pwPhone, d)
			}

			if show, errOut, code := capfRun(append(globals, "ca", "show")...); code != 0 || !strings.Contains(show, "Subject:       CN=capfd CAPF") ||
				!strings.Contains(show, "LSC issuer:    CN=capfd issuing CA") {
				t.Errorf("ca show: exit %d\n%s%s", code, show, errOut)
			}
			addr := startMigrated(t, globals)
			if leaf := tlsLeaf(t, addr); !bytes.Equal(leaf.Raw, in.ca.Raw) {
				t.Fatalf("the server presents %s, want capfd's CAPF certificate %s", leaf.Subject, in.ca.Subject)
			}
			phone := func(name string, set func(*phonesim.Options)) *phonesim.Result {
				t.Helper()
				o := phonesim.Options{Server: addr, Trust: []*x509.Certificate{in.ca}, DeviceName: name,
					RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second}
				set(&o)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				res, err := phonesim.Run(ctx, o)
				if err != nil {
					t.Fatalf("phone %s: %v", name, err)
				}
				if res.EndReason != wire.ReasonSuccess || res.Installed == nil {
					t.Fatalf("phone %s: ended %v (%s), installed %v", name, res.EndReason, res.ReasonInfo, res.Installed)
				}
				if err := res.Installed.CheckSignatureFrom(in.ca); err != nil {
					t.Fatalf("phone %s: the new LSC is not signed by capfd's CAPF key: %v", name, err)
				}
				return res
			}
			// Re-key by the LSC capfd issued.
			res := phone(in.lscPhone, func(o *phonesim.Options) { o.LSC, o.AuthMode = in.lsc, phonesim.AuthModeLSC })
			if res.Installed.SerialNumber.Cmp(in.lsc.Certificate.SerialNumber) == 0 {
				t.Fatal("the phone kept its old LSC")
			}
			d := showMigrated(t, globals, in.lscPhone)
			if d.Status != "Upgrade Success" || !strings.EqualFold(d.LSCSerial, fmt.Sprintf("%X", res.Installed.SerialNumber.Bytes())) ||
				len(d.History) == 0 || d.History[0].AuthMode != "lsc" {
				t.Errorf("device %s after the re-key: %+v", in.lscPhone, d)
			}
			// A phone holding an LSC of the separate issuing CA re-keys by
			// it; its new LSC comes from the CAPF key.
			phone(in.issuerPhone, func(o *phonesim.Options) { o.LSC, o.AuthMode = in.issuerLSC, phonesim.AuthModeLSC })
			if d := showMigrated(t, globals, in.issuerPhone); d.Status != "Upgrade Success" || d.History[0].AuthMode != "lsc" {
				t.Errorf("device %s after the re-key: %+v", in.issuerPhone, d)
			}
			// capfd's password is the authentication string.
			phone(in.pwPhone, func(o *phonesim.Options) { o.AuthString = "24680" })
			if d := showMigrated(t, globals, in.pwPhone); d.Status != "Upgrade Success" || d.History[0].AuthMode != "string" {
				t.Errorf("device %s after enrolling: %+v", in.pwPhone, d)
			}
		})
	}
}

// checkMigrationReport checks what every run of the migration reports.
func checkMigrationReport(t *testing.T, out string, in *capfdInstall) {
	t.Helper()
	for _, want := range []string{
		"capfd database " + in.db + ": 7 devices",
		"mapped: 3 devices (2 with their LSC)",
		"LSC issuer (--issuer): CN=capfd issuing CA",
		"NEW LSCs are signed by the CAPF key above",
		"the --issuer file holds a private key: it is not imported or used",
		"not mapped: 4 rows",
		"no key-usage extension",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for name, why := range in.bad {
		if !regexp.MustCompile(`row \d+ ` + name + `: .*` + regexp.QuoteMeta(why)).MatchString(out) {
			t.Errorf("report does not name row %s with %q:\n%s", name, why, out)
		}
	}
}

// startMigrated runs serve on the migrated installation and returns the
// phones' address.
func startMigrated(t *testing.T, globals []string) string {
	t.Helper()
	out, errOut, done := &syncBuffer{}, &syncBuffer{}, make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	argv := append(append([]string(nil), globals...), "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--drain", "5s")
	go func() { done <- cli.Run(ctx, argv, out, errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("capf serve did not stop")
		}
		if t.Failed() {
			t.Logf("server log:\n%s\n%s", out, errOut)
		}
	})
	re := regexp.MustCompile(`listening \(phones\): (\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("capf serve exited %d before listening:\n%s\n%s", code, out, errOut)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("capf serve did not start:\n%s\n%s", out, errOut)
		}
	}
}

// showMigrated returns capf device show --json of name.
func showMigrated(t *testing.T, globals []string, name string) deviceJSON {
	t.Helper()
	out, errOut, code := capfRun(append(globals, "device", "show", name, "--json")...)
	if code != 0 {
		t.Fatalf("device show %s: exit %d: %s", name, code, errOut)
	}
	var d deviceJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// migrateAudit returns the audit log as capf audit prints it.
func migrateAudit(t *testing.T, globals []string) string {
	t.Helper()
	out, errOut, code := capfRun(append(globals, "audit")...)
	if code != 0 {
		t.Fatalf("audit: exit %d: %s", code, errOut)
	}
	return out
}

// TestMigrateFromCapfdRefusesAnotherCA: an installation whose CAPF
// certificate is another is left as it was.
func TestMigrateFromCapfdRefusesAnotherCA(t *testing.T) {
	in := newCapfdInstall(t)
	data := t.TempDir()
	if out, errOut, code := capfRun("--data", data, "init"); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	before, err := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// capfd's key file readable by others is worth a warning too.
	if err := os.Chmod(in.pemFile, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := capfRun("--data", data, "migrate-from", "capfd", in.db, "--capf", in.pemFile)
	if !strings.Contains(out, "WARNING: the --capf file") || !strings.Contains(out, "mode 0644") {
		t.Errorf("no warning about the readable key file:\n%s", out)
	}
	if code == 0 || !strings.Contains(out, "REFUSED: the installation has another CAPF certificate") || !strings.Contains(errOut, "nothing was changed") {
		t.Fatalf("migrate into another CA: exit %d\n%s%s", code, out, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if !bytes.Equal(before, after) {
		t.Error("the installation's CAPF certificate changed")
	}
	if list, _, _ := capfRun("--data", data, "device", "list"); strings.Contains(list, "SEP0000000CAF") {
		t.Errorf("devices were imported:\n%s", list)
	}
}
