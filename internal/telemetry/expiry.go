package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/session"
)

// ExpiryHorizon is one horizon of capf_lscs_expiring: the LSCs valid now
// that expire within Within, exported with the label within=Label.
type ExpiryHorizon struct {
	Label  string
	Within time.Duration
}

// ExpiryHorizons are the horizons counted: 30 days (the dashboard's
// "expiring soon") and 7 days (renewal is late).
var ExpiryHorizons = []ExpiryHorizon{{"30d", 30 * 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

// DeviceLister is what the expiry count needs of the device store.
type DeviceLister interface {
	ListDevices(ctx context.Context, q device.Query) (device.Page, error)
}

// expiry holds the fleet's LSC expiry gauges and the renewal counter.
type expiry struct {
	expiring  *prometheus.GaugeVec
	countedAt prometheus.Gauge
	armed     prometheus.Counter
	reissued  prometheus.Counter
}

func newExpiry(reg prometheus.Registerer) expiry {
	e := expiry{
		expiring: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "capf_lscs_expiring",
			Help: "Phones whose current LSC is valid and expires within the horizon (30d, 7d); counted every minute, not per scrape.",
		}, []string{"within"}),
		countedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capf_lscs_expiring_counted_timestamp_seconds",
			Help: "Unix time of the last successful count of capf_lscs_expiring (0: never).",
		}),
		armed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capf_lsc_renewals_armed_total",
			Help: "Install/Upgrade operations armed by lsc_renew_before to renew an LSC nearing expiry (on the node holding the lsc-renewal lease).",
		}),
		reissued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capf_lsc_renewals_completed_total",
			Help: "Install/Upgrade sessions that succeeded on a phone authenticated by its existing LSC: completed renewals, whether lsc_renew_before or an administrator armed them.",
		}),
	}
	reg.MustRegister(e.expiring, e.countedAt, e.armed, e.reissued)
	return e
}

// RenewalsArmed adds n to the renewals armed.
func (m *Metrics) RenewalsArmed(n int) {
	if n > 0 {
		m.exp.armed.Add(float64(n))
	}
}

// renewalEnded counts sum as a completed renewal if it is one: a
// successful install by a phone that authenticated by its LSC.
func (e expiry) renewalEnded(sum session.Summary) {
	if sum.Outcome == "success" && sum.Operation == device.OpInstall && sum.AuthMode == string(device.AuthLSC) {
		e.reissued.Inc()
	}
}

// CountExpiring counts, at now, the phones whose current LSC is valid (so
// not revoked: device.LSCValid) and expires within each of ExpiryHorizons, and sets capf_lscs_expiring. It
// reads only the totals of indexed queries (Limit 1), never the devices.
// On an error the gauges keep their last values and the count time is not
// moved, so a stale count shows.
func (m *Metrics) CountExpiring(ctx context.Context, l DeviceLister, now time.Time) error {
	now = now.UTC()
	counts := make([]int, len(ExpiryHorizons))
	for i, h := range ExpiryHorizons {
		page, err := l.ListDevices(ctx, device.Query{
			Filters: []device.Filter{
				{Field: device.FieldLSCStatus, Match: device.MatchEquals, Value: device.LSCValid},
				{Field: device.FieldLSCExpires, Match: device.MatchBefore, Value: now.Add(h.Within).Format(time.RFC3339)},
			},
			Limit: 1, Now: now,
		})
		if err != nil {
			return fmt.Errorf("count LSCs expiring within %s: %w", h.Label, err)
		}
		counts[i] = page.Total
	}
	for i, h := range ExpiryHorizons {
		m.exp.expiring.WithLabelValues(h.Label).Set(float64(counts[i]))
	}
	m.exp.countedAt.Set(float64(now.Unix()))
	return nil
}

// WatchExpiring runs CountExpiring at once and then every interval until
// ctx ends, on the clock now; a failed count is logged and retried at the
// next tick.
func (m *Metrics) WatchExpiring(ctx context.Context, l DeviceLister, every time.Duration, now func() time.Time, log *slog.Logger) {
	count := func() {
		if err := m.CountExpiring(ctx, l, now()); err != nil && ctx.Err() == nil {
			log.Warn("could not count the expiring LSCs for /metrics", "err", err)
		}
	}
	count()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			count()
		}
	}
}
