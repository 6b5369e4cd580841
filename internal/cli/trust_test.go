package cli

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
	"encoding/json"
	"encoding/pem"
	"errors"
	"github.com/capf-server/capf/internal/datadir"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// newTrustData returns a data directory with a CAPF certificate, as after
// the first `capf serve`.
func newTrustData(t *testing.T) (string, *x509.Certificate) {
	t.Helper()
	data := initData(t)
	a, _, err := ca.LoadOrCreate(ca.Options{Dir: filepath.Join(data, datadir.CADir)})
	if err != nil {
		t.Fatal(err)
	}
	return data, a.Certificate()
}

// writeCert writes a self-signed certificate for key to dir/name.
func writeCert(t *testing.T, dir, name, cn string, key crypto.Signer) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Asterisk"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ecSigner(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustNotExist(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s was written (%v)", path, err)
	}
}

func TestTrustBuildShowCheck(t *testing.T) {
	data, capf := newTrustData(t)
	dir := t.TempDir()
	asterisk := writeCert(t, dir, "asterisk.pem", "asterisk.example.net", ecSigner(t))
	out := filepath.Join(dir, "ITLFile.tlv")

	o, e, code := run(t, data, "trust", "build", "--out", out, "--add", "ccm="+asterisk, "--digest", "sha512")
	if code != ExitOK || !strings.Contains(o, "5 records") || !strings.Contains(e, "created the SAST signing identities") {
		t.Fatalf("build: %d\n%s%s", code, o, e)
	}
	o, e, code = run(t, data, "trust", "show", out)
	for _, want := range []string{"File name:      ITLFile.tlv", "Role:     sast", "Role:     tftp", "Role:     capf", "Role:     ccm",
		"O=Asterisk,CN=asterisk.example.net", "Key:      EC P-256", "Key:      RSA 2048", "Signature: verifies", "Digest:         sha512"} {
		if !strings.Contains(o, want) {
			t.Errorf("show lacks %q", want)
		}
	}
	if code != ExitOK {
		t.Fatalf("show: %d %s%s", code, o, e)
	}
	o, _, code = run(t, data, "trust", "show", out, "--json")
	var v struct {
		Verified bool `json:"signature_verified"`
		Records  []struct {
			Role, Subject, SHA256 string
		}
	}
	if err := json.Unmarshal([]byte(o), &v); err != nil || code != ExitOK || !v.Verified || len(v.Records) != 5 || v.Records[3].Role != "capf" {
		t.Fatalf("show --json: %d %v %+v", code, err, v)
	}
	if o, e, code := run(t, data, "trust", "check", out); code != ExitOK || !strings.Contains(o, "CAPF certificate: ok") {
		t.Fatalf("check: %d %s%s", code, o, e)
	}
	f, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := trust.Parse(f)
	if !bytes.Equal(parsed.Records[3].Certificate, capf.Raw) {
		t.Error("CAPF record is not the current CAPF certificate")
	}

	t.Run("fail/check-other-capf", func(t *testing.T) {
		other, _ := newTrustData(t)
		o, e, code := run(t, other, "trust", "check", out)
		if code != ExitFailure || !strings.Contains(o, "is not in the file") || !strings.Contains(e, "the current CAPF certificate is not in the file") || !strings.Contains(o, "signature:        ok") {
			t.Fatalf("check with another CAPF: %d %s%s", code, o, e)
		}
	})
	t.Run("fail/check-broken-signature", func(t *testing.T) {
		bad := bytes.Clone(f)
		bad[len(bad)-1] ^= 0xff // the last certificate's last byte: covered by the signature
		p := filepath.Join(t.TempDir(), "ITLFile.tlv")
		os.WriteFile(p, bad, 0o644)
		o, e, code := run(t, data, "trust", "check", p)
		if code != ExitFailure || !strings.Contains(o, "signature:        FAILED") || !strings.Contains(e, "the signature does not verify") || !strings.Contains(o, "CAPF certificate: ok") {
			t.Fatalf("check broken: %d %s%s", code, o, e)
		}
		if _, e, code := run(t, data, "trust", "show", p); code != ExitFailure || !strings.Contains(e, "signature does not verify") {
			t.Fatalf("show broken: %d %s", code, e)
		}
	})
	t.Run("fail/check-capf-with-other-role", func(t *testing.T) {
		capfPEM := filepath.Join(data, datadir.CADir, ca.CertFile)
		p := filepath.Join(t.TempDir(), "x.tlv")
		if _, e, code := run(t, other(t), "trust", "build", "--out", p, "--add", "ccm="+capfPEM); code != ExitOK {
			t.Fatal(e)
		}
		o, e, code := run(t, data, "trust", "check", p)
		if code != ExitFailure || !strings.Contains(o, "is listed only with role ccm, not CAPF") || !strings.Contains(e, "not listed with the CAPF role") {
			t.Fatalf("check: %d %s%s", code, o, e)
		}
	})
	t.Run("fail/truncated", func(t *testing.T) {
		for _, n := range []int{0, 1, 9, parsed.Header.Length, len(f) - 1} {
			p := filepath.Join(t.TempDir(), "cut.tlv")
			os.WriteFile(p, f[:n], 0o644)
			for _, cmd := range []string{"show", "check"} {
				_, e, code := run(t, data, "trust", cmd, p)
				if code != ExitUsage || !strings.Contains(e, "trust file: offset") {
					t.Fatalf("%s of %d bytes: exit %d: %s", cmd, n, code, e)
				}
			}
		}
	})
}

// other returns another data directory with its own CAPF.
func other(t *testing.T) string {
	t.Helper()
	d, _ := newTrustData(t)
	return d
}

func TestTrustBuildRefuses(t *testing.T) {
	data, _ := newTrustData(t)
	if _, e, code := run(t, data, "trust", "signers"); code != ExitOK {
		t.Fatal(e)
	}
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "cert.der")
	os.WriteFile(notPEM, []byte{0x30, 0x82, 0x01, 0x00}, 0o644)
	ccm := writeCert(t, dir, "ccm.pem", "ccm", ecSigner(t))
	sast3 := writeCert(t, dir, "sast3.pem", "third sast", ecSigner(t))
	// A signer-key file whose key is not its certificate's.
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	primaryPEM, _ := os.ReadFile(filepath.Join(data, trustDir, "sast-primary.pem"))
	mismatch := filepath.Join(dir, "mismatch.pem")
	os.WriteFile(mismatch, append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), primaryPEM...), 0o600)
	// 45 certificates: more than 64 KiB.
	var many []string
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for i := range 45 {
		many = append(many, "--add", "ccm="+writeCert(t, dir, "c"+string(rune('a'+i%26))+string(rune('a'+i/26))+".pem", "ccm-"+strings.Repeat("x", i), rk))
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"not-pem", []string{"--add", "ccm=" + notPEM}, ExitUsage, "not a PEM file"},
		{"missing-cert", []string{"--add", "ccm=" + filepath.Join(dir, "nope.pem")}, ExitNotFound, "no such file"},
		{"unknown-role", []string{"--add", "phone=" + ccm}, ExitUsage, `unknown role "phone"`},
		{"no-equals", []string{"--add", ccm}, ExitUsage, "want ROLE=CERT.pem"},
		{"three-sast", []string{"--add", "sast=" + sast3}, ExitUsage, "3 SAST records: phones accept at most 2"},
		{"key-mismatch", []string{"--signer-key", mismatch}, ExitUsage, "does not match"},
		{"foreign-signer-key", []string{"--signer-key", filepath.Join(data, datadir.CADir, ca.CertFile)}, ExitUsage, "want one private key and one certificate"},
		{"bad-digest", []string{"--digest", "md5"}, ExitUsage, "unknown digest"},
		{"bad-kind", []string{"--kind", "xtl"}, ExitUsage, "want itl or ctl"},
		{"bad-filename", []string{"--filename", "a/b.tlv"}, ExitUsage, "only letters"},
		{"over-64k", many, ExitUsage, "phones fail to load files over 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run("fail/"+tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "ITLFile.tlv")
			_, e, code := run(t, data, append([]string{"trust", "build", "--out", out}, tt.args...)...)
			if code != tt.code || !strings.Contains(e, tt.want) {
				t.Fatalf("exit %d, want %d; stderr lacks %q:\n%s", code, tt.code, tt.want, e)
			}
			mustNotExist(t, out)
		})
	}
	t.Run("fail/rsa-3072-signer", func(t *testing.T) {
		d, _ := newTrustData(t)
		ks := filepath.Join(d, trustDir)
		os.MkdirAll(ks, 0o700)
		for _, name := range []string{"primary", "backup"} {
			key, _ := rsa.GenerateKey(rand.Reader, 3072)
			der, _ := x509.MarshalPKCS8PrivateKey(key)
			os.WriteFile(filepath.Join(ks, "sast-"+name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
			writeCert(t, ks, "sast-"+name+".pem", name, key)
		}
		out := filepath.Join(t.TempDir(), "ITLFile.tlv")
		_, e, code := run(t, d, "trust", "build", "--out", out)
		if code != ExitUsage || !strings.Contains(e, "RSA 3072 bits: phones accept at most 2048") {
			t.Fatalf("exit %d: %s", code, e)
		}
		mustNotExist(t, out)
	})
	t.Run("fail/before-first-start", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "ITLFile.tlv")
		_, e, code := run(t, t.TempDir(), "trust", "build", "--out", out)
		if code != ExitNotFound || !strings.Contains(e, "capf serve") {
			t.Fatalf("exit %d: %s", code, e)
		}
		mustNotExist(t, out)
	})
}

func TestTrustBackupOffline(t *testing.T) {
	data, _ := newTrustData(t)
	dir := t.TempDir()
	backup := filepath.Join(dir, "sast-backup.pem")
	if _, e, code := run(t, data, "trust", "export-backup", "--remove"); code != ExitUsage || !strings.Contains(e, "needs -o") {
		t.Fatalf("--remove without -o: %d %s", code, e)
	}
	o, e, code := run(t, data, "trust", "export-backup", "-o", backup, "--remove")
	if code != ExitOK || !strings.Contains(e, "WARNING: the backup SAST key is no longer on this machine") {
		t.Fatalf("export: %d %s%s", code, o, e)
	}
	if st, err := os.Stat(backup); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", st, err)
	}
	mustNotExist(t, filepath.Join(data, trustDir, "sast-backup.key"))
	o, e, _ = run(t, data, "trust", "signers")
	if !strings.Contains(o, "OFFLINE") || !strings.Contains(e, "WARNING: only one SAST key is on this machine") || strings.Count(o, "SHA-256:") != 2 {
		t.Fatalf("signers:\n%s%s", o, e)
	}
	out := filepath.Join(dir, "ITLFile.tlv")
	if _, e, code := run(t, data, "trust", "build", "--out", out, "--signer", "backup"); code != ExitNotFound || !strings.Contains(e, "--signer-key") {
		t.Fatalf("build with offline backup: %d %s", code, e)
	}
	mustNotExist(t, out)
	if o, e, code := run(t, data, "trust", "build", "--out", out, "--signer-key", backup); code != ExitOK || !strings.Contains(o, "backup SAST") {
		t.Fatalf("build --signer-key: %d %s%s", code, o, e)
	}
	o, _, code = run(t, data, "trust", "show", out)
	if code != ExitOK || !strings.Contains(o, "Signer:         O=CAPF,OU=SAST,CN=CAPF SAST backup") {
		t.Fatalf("show:\n%s", o)
	}
	// The primary may sign the next file: it is SAST in this one.
	if _, e, code := run(t, data, "trust", "build", "--out", out); code != ExitOK {
		t.Fatalf("rebuild with the primary: %s", e)
	}
	// Another CAPF's SAST did not sign anything in this file's list.
	o2 := other(t)
	_, e, code = run(t, o2, "trust", "build", "--out", out)
	if code != ExitConflict || !strings.Contains(e, "WARNING: phones that installed") || !strings.Contains(e, "not replaced") {
		t.Fatalf("foreign successor: %d %s", code, e)
	}
	if _, e, code := run(t, o2, "trust", "build", "--out", out, "--force"); code != ExitOK || !strings.Contains(e, "--force") {
		t.Fatalf("forced: %d %s", code, e)
	}
	if _, e, code := run(t, data, "trust", "export-backup", "-o", filepath.Join(dir, "again.pem")); code != ExitNotFound {
		t.Fatalf("second export: %d %s", code, e)
	}
}

func TestTrustSign(t *testing.T) {
	data, _ := newTrustData(t)
	dir := t.TempDir()
	cnf := filepath.Join(dir, "SEP58971ECC97C1.cnf.xml")
	content := []byte("<device><deviceSecurityMode>2</deviceSecurityMode></device>\n")
	os.WriteFile(cnf, content, 0o644)
	if o, e, code := run(t, data, "trust", "sign", cnf); code != ExitOK || !strings.Contains(o, "TFTP-role") {
		t.Fatalf("sign: %d %s%s", code, o, e)
	}
	b, err := os.ReadFile(cnf + ".sgn")
	if err != nil {
		t.Fatal(err)
	}
	s, err := trust.ParseSigned(b)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := trust.ReadCertificate(filepath.Join(data, trustDir, "sast-primary.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(primary); err != nil || !bytes.Equal(s.Content, content) || s.Header.FileName != "SEP58971ECC97C1.cnf.xml" {
		t.Fatalf("sgn: %v %q %q", err, s.Content, s.Header.FileName)
	}
	if _, _, code := run(t, data, "trust", "sign", filepath.Join(dir, "missing.xml")); code != ExitNotFound {
		t.Fatalf("sign missing: %d", code)
	}
	mustNotExist(t, filepath.Join(dir, "missing.xml.sgn"))
}

func TestPhoneConfig(t *testing.T) {
	data := initData(t)
	if _, e, code := run(t, data, "device", "add", "SEP58971ECC97C1", "--auth-mode", "lsc", "--security-profile", "authenticated"); code != ExitOK {
		t.Fatal(e)
	}
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"ok/lsc-authenticated", []string{"SEP58971ECC97C1", "--host", "capf.example.net"}, ExitOK, []string{
			"<capfAuthMode>3</capfAuthMode>", "<phonePort>3804</phonePort>",
			"<processNodeName>capf.example.net</processNodeName>", "<deviceSecurityMode>2</deviceSecurityMode>"}},
		{"ok/ip", []string{"sep58971ecc97c1", "--host", "192.0.2.10"}, ExitOK, []string{"<processNodeName>192.0.2.10</processNodeName>"}},
		{"fail/unknown-device", []string{"SEP000000000000", "--host", "h"}, ExitNotFound, []string{"not found"}},
		{"fail/bad-host", []string{"SEP58971ECC97C1", "--host", "<script>"}, ExitUsage, []string{"want a host name or IP address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, e, code := run(t, data, append([]string{"phone-config"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tt.code, o, e)
			}
			for _, w := range tt.wants {
				if !strings.Contains(o+e, w) {
					t.Errorf("output lacks %q:\n%s%s", w, o, e)
				}
			}
		})
	}
	os.WriteFile(filepath.Join(data, config.FileName), []byte(`{"listen": "127.0.0.1:13804"}`), 0o600)
	if o, _, _ := run(t, data, "phone-config", "SEP58971ECC97C1", "--host", "h"); !strings.Contains(o, "<phonePort>13804</phonePort>") {
		t.Errorf("configured port not used:\n%s", o)
	}
}

func TestTrustFileDir(t *testing.T) {
	data, capf := newTrustData(t)
	served := filepath.Join(data, "tftp")
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cfg := config.Defaults()
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	cfg.TrustFileDir = "tftp"
	if _, _, err := startTrustFile(context.Background(), g, cfg, []*x509.Certificate{capf}, servedTrust{}, log); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("missing dir: %v", err)
	}
	os.Mkdir(served, 0o755)
	if _, _, err := startTrustFile(context.Background(), g, cfg, []*x509.Certificate{capf}, servedTrust{}, log); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(served, trustfile.ServedName)
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := trust.Parse(first)
	if err != nil || f.Verify() != nil || !bytes.Equal(f.Records[3].Certificate, capf.Raw) {
		t.Fatalf("served file: %v", err)
	}
	later := time.Now().Add(time.Hour)
	if written, err := syncTrustFile(context.Background(), g, path, capf, servedTrust{}, later); err != nil || written {
		t.Fatalf("unchanged records rewritten: %v %v", written, err)
	}
	_, newCAPF := newTrustData(t)
	if written, err := syncTrustFile(context.Background(), g, path, newCAPF, servedTrust{}, later); err != nil || !written {
		t.Fatalf("new CAPF certificate not written: %v %v", written, err)
	}
	f, _ = trust.Parse(mustRead(t, path))
	if !bytes.Equal(f.Records[3].Certificate, newCAPF.Raw) || !f.Header.Timestamp.Equal(later.Truncate(time.Second)) {
		t.Fatal("rewritten file does not list the new CAPF certificate")
	}
	os.WriteFile(path, []byte("garbage"), 0o644)
	if written, err := syncTrustFile(context.Background(), g, path, newCAPF, servedTrust{}, later); err != nil || !written {
		t.Fatalf("garbage not replaced: %v %v", written, err)
	}
	entries, _ := os.ReadDir(served)
	if len(entries) != 1 {
		t.Fatalf("left in the served directory: %v", entries)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrustActionsAudited: a signed trust file, a signed configuration file
// and the export of the backup SAST key are audited by the CLI's user; a
// failed build is not.
func TestTrustActionsAudited(t *testing.T) {
	data, _ := newTrustData(t)
	dir := t.TempDir()
	if _, e, code := run(t, data, "trust", "build", "--out", filepath.Join(dir, "ITLFile.tlv")); code != ExitOK {
		t.Fatal(e)
	}
	if _, _, code := run(t, data, "trust", "build", "--out", filepath.Join(dir, "x.tlv"), "--add", "nope=/no/such.pem"); code == ExitOK {
		t.Fatal("a build with a missing certificate succeeded")
	}
	cnf := filepath.Join(dir, "SEP001122334455.cnf.xml")
	if err := os.WriteFile(cnf, []byte("<device/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, e, code := run(t, data, "trust", "sign", cnf); code != ExitOK {
		t.Fatal(e)
	}
	if _, e, code := run(t, data, "trust", "export-backup", "-o", filepath.Join(dir, "backup.pem")); code != ExitOK {
		t.Fatal(e)
	}
	o, e, code := run(t, data, "audit", "--json")
	if code != ExitOK {
		t.Fatal(e)
	}
	var evs []struct{ Action, Target, Detail, Actor string }
	if err := json.Unmarshal([]byte(o), &evs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Action, "trust.") {
			if !strings.HasPrefix(ev.Actor, "cli:") {
				t.Errorf("%s by %q, want the CLI user", ev.Action, ev.Actor)
			}
			got = append(got, ev.Action+" "+ev.Target)
		}
	}
	want := []string{"trust.export-backup backup SAST key", "trust.sign SEP001122334455.cnf.xml", "trust.build ITLFile.tlv"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audited %q, want %q", got, want)
	}
}
