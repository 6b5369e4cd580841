//go:build !cgo

package keyref_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/capf-server/capf/internal/keyref"
)

// TestNoPKCS11WithoutCgo: a binary built without cgo refuses pkcs11:
// references with its own error instead of failing to build.
func TestNoPKCS11WithoutCgo(t *testing.T) {
	dir := t.TempDir()
	mod, pin := filepath.Join(dir, "lib.so"), filepath.Join(dir, "pin")
	_ = os.WriteFile(mod, []byte("x"), 0o644)
	_ = os.WriteFile(pin, []byte("1234\n"), 0o600)
	_, err := keyref.LoadString(context.Background(), "pkcs11:token=T;object=o", keyref.Options{Module: mod, PINFile: pin})
	if !errors.Is(err, keyref.ErrNoPKCS11) {
		t.Fatalf("err = %v, want ErrNoPKCS11", err)
	}
}
