package device_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func newService(t *testing.T) (*device.Service, device.Store) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return now }, DefaultKey: device.EC256}), st
}

func ptr[T any](v T) *T { return &v }

func TestAdd(t *testing.T) {
	tests := []struct {
		name    string
		in      device.Device
		gen     bool
		wantErr string // substring; "" means success
		check   func(t *testing.T, d device.Device)
	}{
		{name: "ok/defaults", in: device.Device{Name: "sep001122334455"}, check: func(t *testing.T, d device.Device) {
			if d.Name != "SEP001122334455" || d.SecurityProfile != device.NonSecure || d.AuthMode != device.AuthNull ||
				d.Operation != device.OpNone || d.Key != device.EC256 || d.Status != device.StatusNone {
				t.Errorf("defaults: %+v", d)
			}
		}},
		{name: "ok/string-mode-armed-gets-generated-string", in: device.Device{Name: "SEP001122334456", AuthMode: device.AuthString, Operation: device.OpInstall},
			check: func(t *testing.T, d device.Device) {
				if len(d.AuthString) != device.GeneratedStringLen || strings.Trim(d.AuthString, "0123456789") != "" || d.Status != device.StatusPending {
					t.Errorf("device %+v", d)
				}
			}},
		{name: "ok/generate-on-request", in: device.Device{Name: "CSFJDOE"}, gen: true, check: func(t *testing.T, d device.Device) {
			if d.AuthString == "" {
				t.Error("no string generated")
			}
		}},
		{name: "fail/authenticated-profile-with-string-mode", in: device.Device{Name: "SEP001122334457", SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "1234"},
			wantErr: "cannot use By Authentication String"},
		{name: "fail/encrypted-profile-with-string-mode", in: device.Device{Name: "SEP001122334457", SecurityProfile: device.Encrypted, AuthMode: device.AuthString, AuthString: "1234"},
			wantErr: "never contacts CAPF before it registers"},
		{name: "fail/short-string", in: device.Device{Name: "SEP001122334458", AuthString: "123"}, wantErr: "4 to 10 digits"},
		{name: "fail/long-string", in: device.Device{Name: "SEP001122334458", AuthString: "12345678901"}, wantErr: "4 to 10 digits"},
		{name: "fail/letters-in-string", in: device.Device{Name: "SEP001122334458", AuthString: "12a4"}, wantErr: "4 to 10 digits"},
		{name: "fail/bad-name", in: device.Device{Name: "SEP1234"}, wantErr: "12 hex digits"},
		{name: "fail/unknown-prefix", in: device.Device{Name: "XYZ123"}, wantErr: "must start with SEP"},
		{name: "fail/past-deadline", in: device.Device{Name: "SEP001122334459", Operation: device.OpInstall, Deadline: now.Add(-time.Hour)}, wantErr: "is in the past"},
		{name: "fail/bad-key", in: device.Device{Name: "SEP00112233445A", Key: "rsa999"}, wantErr: "key \"rsa999\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newService(t)
			d, err := svc.Add(context.Background(), tt.in, tt.gen)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Invalid {
					t.Fatalf("Add = %v, want invalid error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, d)
			got, err := svc.Get(context.Background(), d.Name)
			if err != nil || got.AuthString != d.AuthString || got.Status != d.Status {
				t.Errorf("stored %+v, %v", got, err)
			}
		})
	}
}

func TestAddDuplicateConflicts(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	if _, err := svc.Add(ctx, device.Device{Name: "SEP001122334455"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Add(ctx, device.Device{Name: "sep001122334455"}, false); !errors.Is(err, fault.ErrConflict) {
		t.Fatalf("duplicate add = %v, want conflict", err)
	}
}

func TestChange(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	if _, err := svc.Add(ctx, device.Device{Name: "SEP001122334455", Description: "lobby"}, false); err != nil {
		t.Fatal(err)
	}
	d, err := svc.Change(ctx, "SEP001122334455", device.Change{Operation: ptr(device.OpInstall)})
	if err != nil || d.Status != device.StatusPending || d.Description != "lobby" {
		t.Fatalf("arm: %+v %v", d, err)
	}
	d, err = svc.Change(ctx, "SEP001122334455", device.Change{Operation: ptr(device.OpNone)})
	if err != nil || d.Status != device.StatusNone {
		t.Fatalf("disarm: %+v %v", d, err)
	}
	if _, err := svc.Change(ctx, "SEP001122334455", device.Change{SecurityProfile: ptr(device.Encrypted), AuthMode: ptr(device.AuthString)}); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("encrypted + string = %v, want invalid", err)
	}
	if got, _ := svc.Get(ctx, "SEP001122334455"); got.SecurityProfile != device.NonSecure {
		t.Error("a refused change was stored")
	}
	if _, err := svc.Change(ctx, "SEP0011223344FF", device.Change{}); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("unknown device = %v, want not found", err)
	}
	d, err = svc.Change(ctx, "SEP001122334455", device.Change{Deadline: ptr(now.Add(time.Hour))})
	if err != nil || !d.Deadline.Equal(now.Add(time.Hour)) {
		t.Fatalf("deadline: %+v %v", d, err)
	}
	d, err = svc.Change(ctx, "SEP001122334455", device.Change{Deadline: ptr(time.Time{})})
	if err != nil || !d.Deadline.IsZero() {
		t.Fatalf("clear deadline: %+v %v", d, err)
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	if _, err := svc.Add(ctx, device.Device{Name: "SEP000000000001", Description: "old"}, false); err != nil {
		t.Fatal(err)
	}
	rows := []device.ImportRow{
		{Line: 2, Device: device.Device{Name: "SEP000000000001", Description: "new"}, Given: device.Given{Description: true}},
		{Line: 3, Device: device.Device{Name: "SEP000000000002", AuthMode: device.AuthString, Operation: device.OpInstall}, Given: device.Given{AuthMode: true, Operation: true}},
	}
	counts, err := svc.Import(ctx, rows)
	if err != nil || counts.Created != 1 || counts.Updated != 1 {
		t.Fatalf("import = %+v, %v", counts, err)
	}
	d, _ := svc.Get(ctx, "SEP000000000002")
	if d.AuthString == "" || d.Status != device.StatusPending {
		t.Errorf("armed string-mode device imported without a string: %+v", d)
	}
	if d, _ := svc.Get(ctx, "SEP000000000001"); d.Description != "new" {
		t.Errorf("update lost: %+v", d)
	}

	bad := []struct {
		name    string
		rows    []device.ImportRow
		wantErr string
	}{
		{"fail/profile-vs-mode", []device.ImportRow{
			{Line: 2, Device: device.Device{Name: "SEP000000000003"}},
			{Line: 3, Device: device.Device{Name: "SEP000000000004", SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "1234"},
				Given: device.Given{SecurityProfile: true, AuthMode: true, AuthString: true}},
		}, "line 3:"},
		{"fail/duplicate", []device.ImportRow{
			{Line: 2, Device: device.Device{Name: "SEP000000000005"}},
			{Line: 7, Device: device.Device{Name: "sep000000000005"}},
		}, "line 7: device SEP000000000005 already appears on line 2"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Import(ctx, tt.rows)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) || fault.KindOf(err) != fault.Invalid {
				t.Fatalf("import = %v, want invalid starting %q", err, tt.wantErr)
			}
			page, _ := svc.List(ctx, device.Query{})
			if page.Total != 2 {
				t.Errorf("a rejected import changed the devices: %d now", page.Total)
			}
		})
	}
}

func BenchmarkImport10k(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc := device.NewService(device.ServiceOptions{Store: st})
	rows := make([]device.ImportRow, 10000)
	for i := range rows {
		rows[i] = device.ImportRow{Line: i + 2, Device: device.Device{Name: fmt.Sprintf("SEP%012X", i), AuthMode: device.AuthString, Operation: device.OpInstall},
			Given: device.Given{AuthMode: true, Operation: true}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := svc.Import(context.Background(), rows); err != nil {
			b.Fatal(err)
		}
	}
}
