package trust

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

func TestKeystoreCreatesTwoIdentities(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trust")
	ks, created, err := OpenKeystore(KeystoreOptions{Dir: dir, Now: func() time.Time { return testNow }})
	if err != nil || !created {
		t.Fatalf("OpenKeystore: created %v, %v", created, err)
	}
	for _, id := range ks.Identities() {
		st, err := os.Stat(id.KeyPath)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", id.KeyPath, st.Mode().Perm(), err)
		}
		if id.Key == nil || id.Cert.PublicKey.(interface{ Size() int }).Size() != 256 {
			t.Errorf("%s: no RSA 2048 key", id.Name)
		}
		if !id.Cert.NotAfter.After(testNow.Add(19 * 365 * 24 * time.Hour)) {
			t.Errorf("%s: valid until %s only", id.Name, id.Cert.NotAfter)
		}
		if err := id.Cert.CheckSignature(id.Cert.SignatureAlgorithm, id.Cert.RawTBSCertificate, id.Cert.Signature); err != nil || !bytes.Equal(id.Cert.RawIssuer, id.Cert.RawSubject) {
			t.Errorf("%s: not self-signed: %v", id.Name, err)
		}
		if !strings.Contains(id.Cert.Subject.CommonName, "CAPF SAST "+id.Name) {
			t.Errorf("%s: subject %s", id.Name, id.Cert.Subject)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("keystore dir mode %v", st.Mode().Perm())
	}
	again, created, err := OpenKeystore(KeystoreOptions{Dir: dir})
	if err != nil || created || !bytes.Equal(again.Primary.Cert.Raw, ks.Primary.Cert.Raw) || !bytes.Equal(again.Backup.Cert.Raw, ks.Backup.Cert.Raw) {
		t.Fatalf("reopen: created %v, %v, or different certificates", created, err)
	}
}

func TestKeystoreExportBackup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trust")
	ks, _, err := OpenKeystore(KeystoreOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.pem")
	if err := ks.ExportBackup(out, true); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export: %v %v", st, err)
	}
	if _, err := os.Stat(ks.Backup.KeyPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup key still in the data directory: %v", err)
	}
	ks, _, err = OpenKeystore(KeystoreOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if ks.Backup.Key != nil || ks.Backup.Cert == nil {
		t.Fatal("after removal the backup should have a certificate and no key")
	}
	if _, err := ks.Backup.Signing(); fault.KindOf(err) != fault.NotFound {
		t.Errorf("offline backup Signing: %v", err)
	}
	if err := ks.ExportBackup(filepath.Join(t.TempDir(), "again.pem"), false); fault.KindOf(err) != fault.NotFound {
		t.Errorf("second export: %v", err)
	}
	s, err := ReadSigning(out)
	if err != nil || !bytes.Equal(s.Cert.Raw, ks.Backup.Cert.Raw) {
		t.Fatalf("ReadSigning: %v", err)
	}
	// Exporting over an existing file is refused.
	ks2, _, _ := OpenKeystore(KeystoreOptions{Dir: filepath.Join(t.TempDir(), "t2")})
	if err := ks2.ExportBackup(out, false); fault.KindOf(err) != fault.Conflict {
		t.Errorf("export over a file: %v", err)
	}
}

func TestKeystoreRefuses(t *testing.T) {
	writeOther := func(t *testing.T, dir string) {
		t.Helper()
		other, _, err := OpenKeystore(KeystoreOptions{Dir: filepath.Join(t.TempDir(), "other")})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(other.Primary.KeyPath)
		if err := os.WriteFile(filepath.Join(dir, "sast-primary.key"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"mismatched-key", writeOther, "does not match"},
		{"missing-certificate", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "sast-backup.pem")) }, "is missing while other SAST files exist"},
		{"not-pem", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "sast-primary.pem"), []byte("hello"), 0o644)
		}, "not a PEM file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "trust")
			if _, _, err := OpenKeystore(KeystoreOptions{Dir: dir}); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			if _, _, err := OpenKeystore(KeystoreOptions{Dir: dir}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenKeystore: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReadSigningRefuses(t *testing.T) {
	fx := newFixture(t)
	der, _ := x509.MarshalPKCS8PrivateKey(fx.backup.Key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.primary.Cert.Raw})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"mismatch", append(keyPEM, certPEM...), "does not match"},
		{"no-key", certPEM, "want one private key and one certificate"},
		{"not-pem", []byte("MIIB..."), "not a PEM file"},
		{"trailing", append(append(keyPEM, certPEM...), "junk"...), "data after the last PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "id.pem")
			os.WriteFile(p, tt.data, 0o600)
			if _, err := ReadSigning(p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadSigning: %v, want %q", err, tt.want)
			}
		})
	}
}
