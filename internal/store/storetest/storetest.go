package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// opener returns a new, empty store for one test.
type opener func(t *testing.T) device.Store

// Run runs the contract suite against the stores open returns. open must
// return a new, empty store each time it is called (once per subtest); Run
// closes it when the subtest ends. The store's clock must be the real one:
// the suite checks that a query without Now is evaluated at the current time.
func Run(t *testing.T, open func(t *testing.T) device.Store) {
	t.Helper()
	o := opener(open)
	t.Run("device", func(t *testing.T) { runDevice(t, o) })
	t.Run("import", func(t *testing.T) { runImport(t, o) })
	t.Run("list", func(t *testing.T) { runList(t, o) })
	t.Run("attempt", func(t *testing.T) { runAttempt(t, o) })
	t.Run("issuance", func(t *testing.T) { runIssuance(t, o) })
	t.Run("fetched", func(t *testing.T) { runFetched(t, o) })
	t.Run("stale", func(t *testing.T) { runStale(t, o) })
	t.Run("claims", func(t *testing.T) { runClaims(t, o) })
	t.Run("fleet-limit", func(t *testing.T) { runFleetLimit(t, o) })
	t.Run("auth-failures", func(t *testing.T) { runAuthFailures(t, o) })
	t.Run("contacts", func(t *testing.T) { runContacts(t, o) })
	t.Run("audit", func(t *testing.T) { runAudit(t, o) })
	t.Run("campaigns", func(t *testing.T) { runCampaigns(t, o) })
	t.Run("campaign-strings", func(t *testing.T) { runCampaignStrings(t, o) })
	t.Run("dashboard", func(t *testing.T) { runDashboard(t, o) })
	t.Run("concurrency", func(t *testing.T) {
		runConcurrency(t, o)
		runConcurrentFailures(t, o)
	})
	t.Run("context", func(t *testing.T) { runContext(t, o) })
}

// fresh opens a store for t and closes it when t ends.
func (o opener) fresh(t *testing.T) device.Store {
	t.Helper()
	s := o(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// t0 is the suite's reference time: not UTC, and with nanoseconds, so that
// the tests see the conversion to UTC and the truncation to microseconds.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

// at returns t0 + d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// stored returns t as a store gives it back: UTC, at microsecond precision,
// zero for zero.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// newDevice returns a device with every field set and no LSC.
func newDevice(name string) device.Device {
	return device.Device{
		Name:            name,
		Description:     "Phone " + name,
		SecurityProfile: device.Encrypted,
		AuthMode:        device.AuthString,
		AuthString:      "123456",
		Operation:       device.OpInstall,
		Key:             device.RSA2048,
		Deadline:        at(48 * time.Hour),
		Status:          device.StatusPending,
		CreatedAt:       t0,
		UpdatedAt:       at(time.Minute),
	}
}

// newCert returns an LSC with the given serial that expires at notAfter.
func newCert(serial string, notAfter time.Time) *device.Certificate {
	return &device.Certificate{
		Serial:    serial,
		Issuer:    "CN=CAPF-TEST,O=Example",
		NotBefore: notAfter.Add(-365 * 24 * time.Hour),
		NotAfter:  notAfter,
		DER:       []byte("DER of " + serial),
	}
}

// diffTime describes how got differs from want as stored, or returns "".
func diffTime(field string, got, want time.Time) string {
	want = stored(want)
	switch {
	case want.IsZero() && !got.IsZero():
		return fmt.Sprintf("%s = %v, want the zero time", field, got)
	case !got.Equal(want):
		return fmt.Sprintf("%s = %v, want %v", field, got, want)
	case got.Location() != time.UTC:
		return fmt.Sprintf("%s location = %v, want UTC", field, got.Location())
	}
	return ""
}

// diffCert describes how got differs from want.
func diffCert(field string, got, want *device.Certificate) []string {
	switch {
	case got == nil && want == nil:
		return nil
	case got == nil:
		return []string{field + " = nil, want a certificate"}
	case want == nil:
		return []string{fmt.Sprintf("%s = %+v, want nil", field, *got)}
	}
	var d []string
	if got.Serial != want.Serial {
		d = append(d, fmt.Sprintf("%s.Serial = %q, want %q", field, got.Serial, want.Serial))
	}
	if got.Issuer != want.Issuer {
		d = append(d, fmt.Sprintf("%s.Issuer = %q, want %q", field, got.Issuer, want.Issuer))
	}
	if !bytes.Equal(got.DER, want.DER) {
		d = append(d, fmt.Sprintf("%s.DER = %q, want %q", field, got.DER, want.DER))
	}
	for _, s := range []string{
		diffTime(field+".NotBefore", got.NotBefore, want.NotBefore),
		diffTime(field+".NotAfter", got.NotAfter, want.NotAfter),
	} {
		if s != "" {
			d = append(d, s)
		}
	}
	return d
}

// checkDevice fails t if got differs from want as stored.
func checkDevice(t *testing.T, got, want device.Device) {
	t.Helper()
	var d []string
	str := func(field, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s = %q, want %q", field, g, w))
		}
	}
	str("Name", got.Name, want.Name)
	str("Description", got.Description, want.Description)
	str("SecurityProfile", string(got.SecurityProfile), string(want.SecurityProfile))
	str("AuthMode", string(got.AuthMode), string(want.AuthMode))
	str("AuthString", got.AuthString, want.AuthString)
	str("Operation", string(got.Operation), string(want.Operation))
	str("Key", string(got.Key), string(want.Key))
	str("Status", got.Status, want.Status)
	for _, s := range []string{
		diffTime("Deadline", got.Deadline, want.Deadline),
		diffTime("CreatedAt", got.CreatedAt, want.CreatedAt),
		diffTime("UpdatedAt", got.UpdatedAt, want.UpdatedAt),
	} {
		if s != "" {
			d = append(d, s)
		}
	}
	d = append(d, diffCert("LSC", got.LSC, want.LSC)...)
	if len(d) > 0 {
		t.Errorf("device %q differs:\n\t%s", want.Name, strings.Join(d, "\n\t"))
	}
}

// checkAttempt fails t if got differs from want as stored (IDs included
// when want.ID is not 0).
func checkAttempt(t *testing.T, got, want device.Attempt) {
	t.Helper()
	var d []string
	if want.ID != 0 && got.ID != want.ID {
		d = append(d, fmt.Sprintf("ID = %d, want %d", got.ID, want.ID))
	}
	for _, f := range [][3]string{
		{"Device", got.Device, want.Device},
		{"Operation", string(got.Operation), string(want.Operation)},
		{"AuthMode", got.AuthMode, want.AuthMode},
		{"Remote", got.Remote, want.Remote},
		{"Result", got.Result, want.Result},
		{"Reason", got.Reason, want.Reason},
		{"SUDI", got.SUDI, want.SUDI},
	} {
		if f[1] != f[2] {
			d = append(d, fmt.Sprintf("%s = %q, want %q", f[0], f[1], f[2]))
		}
	}
	for _, s := range []string{
		diffTime("StartedAt", got.StartedAt, want.StartedAt),
		diffTime("FinishedAt", got.FinishedAt, want.FinishedAt),
	} {
		if s != "" {
			d = append(d, s)
		}
	}
	if len(d) > 0 {
		t.Errorf("attempt %d differs:\n\t%s", want.ID, strings.Join(d, "\n\t"))
	}
}

// wantKind fails t unless err is of kind want and, when name is not "",
// its message names it.
func wantKind(t *testing.T, err error, want *fault.Error, name string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("err = nil, want %s", want.Kind)
	case !errors.Is(err, want):
		t.Fatalf("err = %v (kind %s), want kind %s", err, fault.KindOf(err), want.Kind)
	case name != "" && !strings.Contains(err.Error(), name):
		t.Errorf("err = %q, want a message naming %q", err, name)
	}
}

// must fails t at once if err is not nil.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// get returns the stored device name, failing t if it cannot.
func get(t *testing.T, s device.Store, name string) device.Device {
	t.Helper()
	d, err := s.GetDevice(t.Context(), name)
	if err != nil {
		t.Fatalf("GetDevice(%q): %v", name, err)
	}
	return d
}

// create stores every device, failing t if it cannot.
func create(t *testing.T, s device.Store, ds ...device.Device) {
	t.Helper()
	for _, d := range ds {
		if err := s.CreateDevice(t.Context(), d, device.AuditEvent{}); err != nil {
			t.Fatalf("CreateDevice(%q): %v", d.Name, err)
		}
	}
}

// names returns the names of ds in order.
func names(ds []device.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}

// StartAttempt claims a device in s and returns the attempt id, for a
// backend's own tests.
func StartAttempt(s device.Store, ctx context.Context, a device.Attempt) (int64, error) {
	c, err := s.StartAttempt(ctx, a)
	return c.AttemptID, err
}

// ImportDevices imports ds into s as they are, for a backend's own tests.
func ImportDevices(s device.Store, ctx context.Context, ds []device.Device) (device.ImportCounts, error) {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return s.ImportDevices(ctx, names, device.CLIActor("test"), func(i int, _ *device.Device) (device.Device, error) {
		return ds[i], nil
	})
}
