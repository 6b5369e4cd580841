package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ITLFile.tlv")
	if err := Write(p, []byte("one"), 0o644, false); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two"), 0o644, false); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("three"), 0o644, true); fault.KindOf(err) != fault.Conflict {
		t.Fatalf("exclusive over a file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing", "x"), nil, 0o644, false); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
