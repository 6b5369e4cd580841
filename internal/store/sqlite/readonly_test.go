package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

func TestOpenReadOnlyMissingCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "capf.db")
	_, err := OpenReadOnly(t.Context(), path, Options{})
	if fault.KindOf(err) != fault.NotFound {
		t.Fatalf("OpenReadOnly(missing) = %v (kind %v), want not-found", err, fault.KindOf(err))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("OpenReadOnly of a missing file left %d files in the directory", len(entries))
	}
}

func TestOpenReadOnlyReadsAndRefusesWrites(t *testing.T) {
	s, path := openTemp(t)
	d := device.Device{Name: "SEP001122334455", Operation: device.OpNone, CreatedAt: time.Now()}
	if err := s.CreateDevice(t.Context(), d, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	t.Cleanup(func() { ro.Close() })
	got, err := ro.GetDevice(t.Context(), d.Name)
	if err != nil || got.Name != d.Name {
		t.Fatalf("GetDevice = %+v, %v", got, err)
	}
	err = ro.CreateDevice(t.Context(), device.Device{Name: "SEP001122334456", Operation: device.OpNone, CreatedAt: time.Now()}, device.AuditEvent{})
	if !errors.Is(err, ErrReadOnly) || fault.KindOf(err) != fault.Invalid {
		t.Fatalf("CreateDevice on a read-only store = %v, want ErrReadOnly of kind invalid", err)
	}
	if _, err := ro.GetDevice(t.Context(), "SEP001122334456"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("the refused write changed the database: %v", err)
	}
}

func TestOpenReadOnlyRefusesOtherSchema(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.write.ExecContext(t.Context(), `DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenReadOnly(t.Context(), path, Options{}); err == nil {
		t.Fatal("OpenReadOnly accepted a database whose schema is older than the binary's")
	}
}
