package cli

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
	"github.com/capf-server/capf/internal/trust"
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
	k, err := keyref.LoadString(context.Background(), ref, keyref.Options{Module: h.Module, PINFile: h.PINFile})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "CAPF SAST primary in token", OrganizationalUnit: []string{"SAST"}, Organization: []string{"CAPF"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k.Signer())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(data, "trust")
	if err := os.WriteFile(filepath.Join(dir, "sast-primary.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
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
	b := mustRead(t, filepath.Join(data, "tftp", servedTrustFile))
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exited %d", code)
	}
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
		{"module-without-key", data, mod, ExitUsage, "give --sast-key"},
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
			if _, err := os.Stat(filepath.Join(tt.data, "tftp", servedTrustFile)); err == nil {
				t.Fatal("a trust file was written")
			}
		})
	}
}
