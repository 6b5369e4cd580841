//go:build cgo

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
	"github.com/capf-server/capf/internal/trust"
)

// tokenSASTTrustData is tokenSASTData with a CAPF certificate, as after
// the first serve, so that trust build lists it and trust check finds it.
func tokenSASTTrustData(t *testing.T, h *keyreftest.HSM, object string) (data, ref string) {
	t.Helper()
	data, ref = tokenSASTData(t, h, object)
	if _, _, err := ca.LoadOrCreate(ca.Options{Dir: filepath.Join(data, datadir.CADir)}); err != nil {
		t.Fatal(err)
	}
	return data, ref
}

// TestTrustBuildSignerKeyInToken: trust build and trust sign with
// --signer-key naming the primary SAST key kept in a PKCS #11 token sign
// there (the data directory holds no primary key), and the files verify
// with the project's parser against the keystore's primary certificate;
// trust check accepts the trust file.
func TestTrustBuildSignerKeyInToken(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data, ref := tokenSASTTrustData(t, h, "build-sast")
	p11 := []string{"--signer-key", ref, "--pkcs11-module", h.Module, "--pin-file", h.PINFile}
	primary, err := trust.ReadCertificate(filepath.Join(data, trustDir, "sast-primary.pem"))
	if err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, filepath.Join(data, trustDir, "sast-primary.key"))

	out := filepath.Join(t.TempDir(), "ITLFile.tlv")
	o, e, code := run(t, data, append([]string{"trust", "build", "--out", out}, p11...)...)
	if code != ExitOK || !strings.Contains(o, "signed by the primary SAST") {
		t.Fatalf("trust build: exit %d: %s%s", code, o, e)
	}
	f, err := trust.Parse(mustRead(t, out))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if err := f.Verify(); err != nil {
		t.Fatalf("the file signed in the token does not verify: %v", err)
	}
	rec, err := f.Signer()
	if err != nil || !bytes.Equal(rec.Certificate, primary.Raw) {
		t.Fatalf("signer record %v, %v: want the primary SAST certificate", rec, err)
	}
	if o, e, code := run(t, data, "trust", "check", out); code != ExitOK {
		t.Fatalf("trust check: exit %d: %s%s", code, o, e)
	}
	// The next file, signed in the token again, is an accepted successor.
	if o, e, code := run(t, data, append([]string{"trust", "build", "--out", out, "--kind", "itl"}, p11...)...); code != ExitOK {
		t.Fatalf("rebuild: exit %d: %s%s", code, o, e)
	}

	cnf := filepath.Join(t.TempDir(), "SEP58971ECC97C1.cnf.xml")
	content := []byte("<device><deviceSecurityMode>2</deviceSecurityMode></device>\n")
	if err := os.WriteFile(cnf, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if o, e, code := run(t, data, append([]string{"trust", "sign", cnf}, p11...)...); code != ExitOK {
		t.Fatalf("trust sign: exit %d: %s%s", code, o, e)
	}
	s, err := trust.ParseSigned(mustRead(t, cnf+".sgn"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(primary); err != nil || !bytes.Equal(s.Content, content) {
		t.Fatalf("sgn signed in the token: %v, content %q", err, s.Content)
	}
}

// TestTrustBuildSignerKeyInTokenRefused: each way a token --signer-key
// cannot sign is its own message, and no file is written.
func TestTrustBuildSignerKeyInTokenRefused(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data, ref := tokenSASTTrustData(t, h, "build-sast-refused")
	other := h.GenerateRSA(t, "build-sast-other", 2048)
	dir := t.TempDir()
	wrongPIN := filepath.Join(dir, "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	backupPEM := filepath.Join(dir, "sast-backup.pem")
	if o, e, code := run(t, data, "trust", "export-backup", "-o", backupPEM); code != ExitOK {
		t.Fatalf("export-backup: exit %d: %s%s", code, o, e)
	}
	mod, pin := []string{"--pkcs11-module", h.Module}, []string{"--pin-file", h.PINFile}
	with := func(key string, more ...string) []string { return append([]string{"--signer-key", key}, more...) }
	badToken := strings.Replace(ref, "token="+h.Token, "token=no-such-token", 1)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fail/not-the-sast-key", with(other, append(mod, pin...)...), ExitUsage, "--signer-key " + other + " matches neither SAST certificate"},
		{"fail/wrong-pin", with(ref, append(mod, "--pin-file", wrongPIN)...), ExitFailure, "refused the PIN"},
		{"fail/no-pin-file", with(ref, mod...), ExitUsage, "give --pin-file"},
		{"fail/no-module", with(ref, pin...), ExitUsage, "give the vendor's module with --pkcs11-module"},
		{"fail/missing-module", with(ref, append([]string{"--pkcs11-module", filepath.Join(dir, "nope.so")}, pin...)...), ExitNotFound, "PKCS #11 module " + filepath.Join(dir, "nope.so")},
		{"fail/missing-token", with(badToken, append(mod, pin...)...), ExitNotFound, `no PKCS #11 token labelled "no-such-token"`},
		{"fail/missing-object", with(h.Ref("no-such-key"), append(mod, pin...)...), ExitNotFound, "holds no key pair"},
		{"fail/pin-in-uri", with(ref+"?pin-value=314159", append(mod, pin...)...), ExitUsage, "pin-value is refused"},
		{"fail/module-with-file-key", with(backupPEM, mod...), ExitUsage, "and " + backupPEM + " is a file"},
		{"fail/module-without-signer-key", mod, ExitUsage, "go with --signer-key pkcs11:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, cmd := range [][]string{{"trust", "build", "--out", filepath.Join(dir, "ITLFile.tlv")}, {"trust", "sign", "-o", filepath.Join(dir, "x.sgn"), backupPEM}} {
				o, e, code := run(t, data, append(cmd, tt.args...)...)
				if code != tt.code || !strings.Contains(e, tt.want) {
					t.Fatalf("%s: exit %d (want %d), stderr lacks %q:\n%s%s", cmd[1], code, tt.code, tt.want, o, e)
				}
			}
			mustNotExist(t, filepath.Join(dir, "ITLFile.tlv"))
			mustNotExist(t, filepath.Join(dir, "x.sgn"))
		})
	}
}
