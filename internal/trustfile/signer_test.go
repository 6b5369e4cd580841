package trustfile

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/trust"
)

// TestServiceSyncSigner: Signer chooses who signs the served file (serve
// --sast-key: a key in a PKCS #11 token); its error writes nothing.
func TestServiceSyncSigner(t *testing.T) {
	ks := newKeystore(t, time.Now(), 0)
	serve := device.Actor{Kind: device.ActorSystem, Name: "serve"}
	for _, tt := range []struct {
		name    string
		signer  func(*trust.Keystore) (trust.Signing, error)
		want    *x509.Certificate // nil: Sync fails
		wantErr error
	}{
		{"default-primary", nil, ks.Primary.Cert, nil},
		{"backup", func(ks *trust.Keystore) (trust.Signing, error) { return ks.Backup.Signing() }, ks.Backup.Cert, nil},
		{"refused", func(*trust.Keystore) (trust.Signing, error) { return trust.Signing{}, errTest }, nil, errTest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := &Service{Path: filepath.Join(t.TempDir(), ServedName), Keystore: func() (*trust.Keystore, error) { return ks, nil },
				CAPF: []*x509.Certificate{newCert(t, "CAPF")}, Signer: tt.signer}
			_, err := svc.Sync(t.Context(), serve, false)
			if tt.want == nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Sync: %v, want %v", err, tt.wantErr)
				}
				if _, err := os.Stat(svc.Path); err == nil {
					t.Fatal("a file was written")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(svc.Path)
			f := parse(t, b)
			rec, err := f.Signer()
			if err != nil || f.Verify() != nil || !bytes.Equal(rec.Certificate, tt.want.Raw) {
				t.Fatalf("signed by %v (%v, verify %v), want %s", rec, err, f.Verify(), tt.want.Subject)
			}
		})
	}
}

var errTest = errors.New("the token is gone")
