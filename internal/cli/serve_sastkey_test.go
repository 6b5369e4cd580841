//go:build cgo

package cli

import (
	"bytes"
	"crypto/elliptic"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/keyref/keyreftest"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// tokenSASTData returns a data directory whose primary SAST certificate
// is for an RSA key generated in the SoftHSM2 token (its key file
// removed, as for a key kept offline), trust_file_dir set, and the key's
// reference.
func tokenSASTData(t *testing.T, h *keyreftest.HSM, object string) (data, ref string) {
	t.Helper()
	data = initData(t)
	if out, errOut, code := run(t, data, "trust", "signers"); code != ExitOK {
		t.Fatalf("trust signers: exit %d: %s%s", code, out, errOut)
	}
	ref = h.GenerateRSA(t, object, 2048)
	certFile := filepath.Join(t.TempDir(), "sast-token.pem")
	if out, errOut, code := run(t, data, "trust", "sast-cert", "--sast-key", ref, "--pkcs11-module", h.Module, "--pin-file", h.PINFile, "-o", certFile); code != ExitOK {
		t.Fatalf("trust sast-cert: exit %d: %s%s", code, out, errOut)
	}
	der := mustRead(t, certFile)
	dir := filepath.Join(data, "trust")
	if err := os.WriteFile(filepath.Join(dir, "sast-primary.pem"), der, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "sast-primary.key")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(data, "tftp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, data, "config", "set", "trust_file_dir", "tftp"); code != ExitOK {
		t.Fatalf("config set: exit %d: %s%s", code, out, errOut)
	}
	return data, ref
}

// TestServeSignsTrustFileInToken: with --sast-key naming a key in a
// PKCS #11 token, serve writes the ITL in trust_file_dir signed there, and
// the project's parser verifies it against the primary SAST certificate.
func TestServeSignsTrustFileInToken(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data, ref := tokenSASTData(t, h, "serve-sast")
	_, stop := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "",
		"--sast-key", ref, "--pkcs11-module", h.Module, "--pin-file", h.PINFile)
	b := mustRead(t, filepath.Join(data, "tftp", trustfile.ServedName))
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exited %d", code)
	}
	signedInToken(t, data, b)
}

// signedInToken checks that the served trust file b verifies and was
// signed for the primary SAST certificate of data, whose key is not in
// the data directory (it is in the token).
func signedInToken(t *testing.T, data string, b []byte) {
	t.Helper()
	f, err := trust.Parse(b)
	if err != nil {
		t.Fatalf("parse the served file: %v", err)
	}
	if err := f.Verify(); err != nil {
		t.Fatalf("the served file does not verify: %v", err)
	}
	ks, err := trust.LoadKeystore(filepath.Join(data, "trust"))
	if err != nil {
		t.Fatal(err)
	}
	if ks.Primary.Key != nil {
		t.Fatal("the primary SAST key is in the data directory")
	}
	rec, err := f.Signer()
	if err != nil || !bytes.Equal(rec.Certificate, ks.Primary.Cert.Raw) {
		t.Fatalf("signer record %v, %v: want the primary SAST certificate (its key in the token)", rec, err)
	}
}

// TestServeSASTKeyFromCapfJSON: the node settings sast_key, pkcs11_module
// and pkcs11_pin_file, set with capf config set, do what the flags do (the
// served ITL is signed in the token and verifies), relative paths are the
// data directory's, and a flag wins over the file. Settings that cannot
// work are refused by config set, or stop serve naming the setting, and
// write no trust file.
func TestServeSASTKeyFromCapfJSON(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data, ref := tokenSASTData(t, h, "serve-sast-json")
	pin := mustRead(t, h.PINFile)
	if err := os.WriteFile(filepath.Join(data, "token.pin"), pin, 0o600); err != nil {
		t.Fatal(err)
	}
	set := func(t *testing.T, key, value string) {
		t.Helper()
		if out, errOut, code := run(t, data, "config", "set", key, value); code != ExitOK {
			t.Fatalf("config set %s: exit %d: %s%s", key, code, out, errOut)
		}
	}
	// Refused by config set: a PIN file without a module, and a key
	// reference over two lines; capf.json keeps what it had.
	for _, bad := range []struct{ key, value, want string }{
		{"pkcs11_pin_file", "token.pin", "pkcs11_pin_file: needs pkcs11_module"},
		{"sast_key", ref + "\nx", "sast_key: a key reference is one line"},
	} {
		if _, errOut, code := run(t, data, "config", "set", bad.key, bad.value); code != ExitUsage || !strings.Contains(errOut, bad.want) {
			t.Fatalf("config set %s %q: exit %d %s, want a usage error saying %q", bad.key, bad.value, code, errOut, bad.want)
		}
	}
	served := filepath.Join(data, "tftp", trustfile.ServedName)
	set(t, "sast_key", "pkcs11:token=CAPF;object=nobody")
	set(t, "pkcs11_module", h.Module)
	set(t, "pkcs11_pin_file", "token.pin")
	_, errOut, code := run(t, data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "")
	if code == ExitOK || !strings.Contains(errOut, "sast_key (capf.json)") {
		t.Fatalf("serve with a sast_key the token lacks: exit %d, want a refusal naming sast_key:\n%s", code, errOut)
	}
	if _, err := os.Stat(served); err == nil {
		t.Fatal("a refused serve wrote a trust file")
	}

	set(t, "sast_key", ref)
	// A flag wins: a PIN file that does not exist, given on the command
	// line, is the one serve reads.
	if _, errOut, code := run(t, data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "", "--pin-file", filepath.Join(data, "no-such.pin")); code == ExitOK || !strings.Contains(errOut, "no-such.pin") {
		t.Fatalf("serve --pin-file over capf.json: exit %d, want the flag's file refused:\n%s", code, errOut)
	}
	_, stop := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	b := mustRead(t, served)
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exited %d", code)
	}
	signedInToken(t, data, b)
}

// TestServeSASTKeyRefused: a key reference serve cannot use stops it with
// a message that names the cause.
func TestServeSASTKeyRefused(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data, ref := tokenSASTData(t, h, "serve-sast-refused")
	other := h.GenerateRSA(t, "serve-sast-other", 2048)
	ec := h.GenerateECDSA(t, "serve-sast-ec", elliptic.P256())
	noTrustDir := initData(t)
	wrongPIN := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(wrongPIN, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mod, pin := []string{"--pkcs11-module", h.Module}, []string{"--pin-file", h.PINFile}
	for _, tt := range []struct {
		name string
		data string
		args []string
		code int
		want string
	}{
		{"other-key", data, append(append([]string{"--sast-key", other}, mod...), pin...), ExitUsage, "matches neither SAST certificate"},
		{"ecdsa-key", data, append(append([]string{"--sast-key", ec}, mod...), pin...), ExitUsage, "matches neither SAST certificate"},
		{"wrong-pin", data, append(append([]string{"--sast-key", ref}, mod...), "--pin-file", wrongPIN), ExitFailure, "refused the PIN"},
		{"no-module", data, append([]string{"--sast-key", ref}, pin...), ExitUsage, "--pkcs11-module"},
		{"bad-reference", data, []string{"--sast-key", "pkcs11:token=x;object=y;pin-value=1"}, ExitUsage, "pin-value is refused"},
		{"no-trust-file-dir", noTrustDir, append(append([]string{"--sast-key", ref}, mod...), pin...), ExitUsage, "trust_file_dir, which is not set"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, tt.data, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", ""}, tt.args...)...)
			if !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: stderr lacks %q:\n%s", code, tt.want, errOut)
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, errOut)
			}
			if _, err := os.Stat(filepath.Join(tt.data, "tftp", trustfile.ServedName)); err == nil {
				t.Fatal("a trust file was written")
			}
		})
	}
}

// TestTrustSASTCertRefused: trust sast-cert makes certificates only for
// keys phones can verify with, and says why not.
func TestTrustSASTCertRefused(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	ec := h.GenerateECDSA(t, "sast-cert-ec", elliptic.P256())
	big := h.GenerateRSA(t, "sast-cert-3072", 3072)
	rsa := h.GenerateRSA(t, "sast-cert-rsa", 2048)
	p11 := []string{"--pkcs11-module", h.Module, "--pin-file", h.PINFile}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no-key", p11, "give the key"},
		{"ecdsa", append([]string{"--sast-key", ec}, p11...), "must be RSA"},
		{"rsa-3072", append([]string{"--sast-key", big}, p11...), "at most 2048"},
		{"bad-name", append([]string{"--sast-key", rsa, "--name", "tertiary"}, p11...), `"tertiary": want primary or backup`},
		{"missing-object", append([]string{"--sast-key", h.Ref("nope")}, p11...), "holds no key pair"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, append([]string{"trust", "sast-cert"}, tt.args...)...)
			if code == ExitOK || !strings.Contains(errOut, tt.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr lacks %q:\n%s", code, out, tt.want, errOut)
			}
		})
	}
	out, errOut, code := run(t, data, append([]string{"trust", "sast-cert", "--sast-key", rsa, "--name", "backup"}, p11...)...)
	if code != ExitOK || !strings.Contains(out, "BEGIN CERTIFICATE") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	c, err := trust.ReadCertificate(writeTemp(t, out))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Subject.CommonName, "CAPF SAST backup ") || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
		t.Fatalf("certificate %s: want a self-signed CAPF SAST backup certificate", c.Subject)
	}
}

// writeTemp writes s to a new temporary file and returns its path.
func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
