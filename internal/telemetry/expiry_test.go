package telemetry_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/telemetry"
)

type failingLister struct{}

func (failingLister) ListDevices(context.Context, device.Query) (device.Page, error) {
	return device.Page{}, errors.New("database is locked")
}

// TestCountExpiring counts, on a real store and a fake clock, the phones
// whose current LSC is valid and expires within 30 and 7 days: not the
// expired ones, not the later ones, not the phones without an LSC, not an
// LSC superseded by a newer one, not an LSC revoked by hand; a failed
// count keeps the last values and the count time.
func TestCountExpiring(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	serial := 0
	// give issues and installs an LSC on name expiring at notAfter, and
	// returns its serial.
	give := func(name string, notAfter time.Time) string {
		t.Helper()
		if _, err := st.GetDevice(ctx, name); err != nil {
			if err := st.CreateDevice(ctx, device.Device{Name: name, SecurityProfile: "authenticated", AuthMode: device.AuthNull,
				Operation: device.OpInstall, Key: "ec256", Status: device.StatusPending}, device.AuditEvent{}); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := st.GetDevice(ctx, name)
		c, err := st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: now, Rev: d.Rev})
		if err != nil {
			t.Fatal(err)
		}
		serial++
		hex := strings.ToUpper(strconv.FormatInt(int64(0xA0+serial), 16))
		if err := st.RecordIssuance(ctx, device.Issuance{Serial: hex, Device: name, AttemptID: c.AttemptID,
			IssuedAt: now, NotBefore: now.Add(-time.Hour), NotAfter: notAfter, DER: []byte{0x30}}); err != nil {
			t.Fatal(err)
		}
		if err := st.FinishAttempt(ctx, device.Outcome{AttemptID: c.AttemptID, Device: name, FinishedAt: now,
			Result: device.SuccessStatus(device.OpInstall), Completed: true,
			SetLSC: &device.Certificate{Serial: hex, NotBefore: now.Add(-time.Hour), NotAfter: notAfter, DER: []byte{0x30}}}); err != nil {
			t.Fatal(err)
		}
		return hex
	}
	day := 24 * time.Hour
	give("SEP00000000000A", now.Add(3*day))  // within 7 and 30 days
	give("SEP00000000000B", now.Add(20*day)) // within 30 days
	give("SEP00000000000C", now.Add(60*day)) // later
	give("SEP00000000000D", now.Add(-day))   // expired
	give("SEP00000000000E", now.Add(5*day))  // superseded below by a later LSC
	give("SEP00000000000E", now.Add(400*day))
	revoked := give("SEP00000000000G", now.Add(2*day)) // revoked by hand below: proves nothing any more
	if _, err := st.RevokeCertificate(ctx, revoked, lsc.Revocation{At: now, Reason: lsc.ReasonKeyCompromise, By: "cli:alice"},
		device.AuditEvent{At: now, Actor: device.CLIActor("alice"), Action: lsc.AuditRevoke, Target: "certificate " + revoked}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateDevice(ctx, device.Device{Name: "SEP00000000000F", SecurityProfile: "authenticated", AuthMode: device.AuthNull,
		Operation: device.OpInstall, Key: "ec256", Status: device.StatusPending}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewPedanticRegistry()
	m := telemetry.New(reg)
	want := func(within30, within7 int, countedAt time.Time) {
		t.Helper()
		exp := `
# HELP capf_lscs_expiring Phones whose current LSC is valid and expires within the horizon (30d, 7d); counted every minute, not per scrape.
# TYPE capf_lscs_expiring gauge
capf_lscs_expiring{within="30d"} ` + itoa(within30) + `
capf_lscs_expiring{within="7d"} ` + itoa(within7) + `
# HELP capf_lscs_expiring_counted_timestamp_seconds Unix time of the last successful count of capf_lscs_expiring (0: never).
# TYPE capf_lscs_expiring_counted_timestamp_seconds gauge
capf_lscs_expiring_counted_timestamp_seconds ` + itoa(int(countedAt.Unix())) + `
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "capf_lscs_expiring", "capf_lscs_expiring_counted_timestamp_seconds"); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.CountExpiring(ctx, st, now); err != nil {
		t.Fatal(err)
	}
	want(2, 1, now)

	// A month on, B has expired and C is within 30 days.
	later := now.Add(35 * day)
	if err := m.CountExpiring(ctx, st, later); err != nil {
		t.Fatal(err)
	}
	want(1, 0, later)

	if err := m.CountExpiring(ctx, failingLister{}, later.Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "database is locked") {
		t.Fatalf("CountExpiring on a failing store = %v", err)
	}
	want(1, 0, later)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestRenewalCounters counts the renewals the job armed (none is no
// change) and the successful installs by phones that authenticated by LSC.
func TestRenewalCounters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := telemetry.New(reg)
	m.RenewalsArmed(0)
	m.RenewalsArmed(3)
	m.RenewalsArmed(2)
	for _, sum := range []session.Summary{
		{Outcome: "success", Operation: device.OpInstall, AuthMode: "lsc"},      // a renewal
		{Outcome: "success", Operation: device.OpInstall, AuthMode: "lsc"},      // another
		{Outcome: "failed", Operation: device.OpInstall, AuthMode: "lsc"},       // failed
		{Outcome: "success", Operation: device.OpInstall, AuthMode: "string"},   // a first install
		{Outcome: "success", Operation: device.OpTroubleshoot, AuthMode: "lsc"}, // not an install
	} {
		m.SessionEnded(sum, time.Millisecond)
	}
	exp := `
# HELP capf_lsc_renewals_armed_total Install/Upgrade operations armed by lsc_renew_before to renew an LSC nearing expiry (on the node holding the lsc-renewal lease).
# TYPE capf_lsc_renewals_armed_total counter
capf_lsc_renewals_armed_total 5
# HELP capf_lsc_renewals_completed_total Install/Upgrade sessions that succeeded on a phone authenticated by its existing LSC: completed renewals, whether lsc_renew_before or an administrator armed them.
# TYPE capf_lsc_renewals_completed_total counter
capf_lsc_renewals_completed_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "capf_lsc_renewals_armed_total", "capf_lsc_renewals_completed_total"); err != nil {
		t.Fatal(err)
	}
}
