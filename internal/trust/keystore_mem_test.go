package trust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// TestGenerateAndLoadKeystore: GenerateKeystore makes two distinct
// identities and writes nothing; NewKeystore refuses a key of another
// certificate and the same certificate twice; LoadKeystore never creates.
func TestGenerateAndLoadKeystore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trust")
	ks, err := GenerateKeystore(KeystoreOptions{Dir: dir, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("GenerateKeystore wrote %s: %v", dir, err)
	}
	if ks.Primary.Key == nil || ks.Backup.Key == nil || ks.Primary.Cert.Equal(ks.Backup.Cert) {
		t.Fatal("GenerateKeystore: want two identities with keys")
	}
	if _, err := NewKeystore("db", Identity{Cert: ks.Primary.Cert, Key: ks.Backup.Key}, ks.Backup); fault.KindOf(err) != fault.Invalid {
		t.Errorf("NewKeystore with a mismatched key: %v, want Invalid", err)
	}
	if _, err := NewKeystore("db", ks.Primary, ks.Primary); fault.KindOf(err) != fault.Invalid {
		t.Errorf("NewKeystore with one certificate twice: %v, want Invalid", err)
	}
	if got, err := NewKeystore("db", ks.Primary, Identity{Cert: ks.Backup.Cert}); err != nil || got.Backup.Key != nil || got.Backup.Name != Backup {
		t.Errorf("NewKeystore with an offline backup: %+v, %v", got, err)
	}
	if _, err := LoadKeystore(dir); fault.KindOf(err) != fault.NotFound {
		t.Errorf("LoadKeystore of an empty directory: %v, want NotFound", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadKeystore created %s: %v", dir, err)
	}
	made, _, err := OpenKeystore(KeystoreOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeystore(dir)
	if err != nil || !got.Primary.Cert.Equal(made.Primary.Cert) {
		t.Errorf("LoadKeystore: %v", err)
	}
}
