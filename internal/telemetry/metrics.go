// Package telemetry holds the CAPF service's Prometheus metrics: it
// implements the session and server observer interfaces and wraps the
// session store to time its commits. The registry is injected, so tests and
// several servers in one process do not share global state.
package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/session"
)

// Metrics is the set of CAPF metrics registered on one registry.
type Metrics struct {
	sessions     *prometheus.CounterVec
	retryLater   *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	evicted      *prometheus.CounterVec
	active       prometheus.Gauge
	waitingKey   prometheus.Gauge
	issuance     prometheus.Histogram
	storeCommit  *prometheus.HistogramVec
	sessionTimes *prometheus.HistogramVec
	usedUp       prometheus.Counter
	exp          expiry
}

// New registers the CAPF metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capf_sessions_total",
			Help: "Phone sessions that got past the TLS handshake, by outcome and pending operation.",
		}, []string{"outcome", "operation"}),
		retryLater: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capf_retry_later_total",
			Help: "RETRY_LATER answers, by reason (busy, maintenance-window, device-busy, store, auth-backoff, auth-address-budget, auth-busy).",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capf_connections_rejected_total",
			Help: "Connections closed at once, by reason (per-address-limit, total-limit).",
		}, []string{"reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "capf_connections_evicted_total",
			Help: "Connections still in their TLS handshake closed to admit a new one, by reason (total-limit).",
		}, []string{"reason"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capf_connections_active",
			Help: "Open phone connections (sessions in progress, handshakes included).",
		}),
		waitingKey: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "capf_sessions_waiting_for_key",
			Help: "Sessions waiting for the phone to generate its key pair.",
		}),
		issuance: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "capf_issuance_seconds",
			Help:    "Time to sign an LSC and commit its record, before it is sent.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		storeCommit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "capf_store_commit_seconds",
			Help:    "Latency of the store writes a session makes, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}, []string{"op"}),
		sessionTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "capf_session_seconds",
			Help:    "Duration of phone sessions, by pending operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"operation"}),
		usedUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "capf_auth_strings_used_up_total",
			Help: "Authentication strings used up by auth_string_max_failures consecutive wrong guesses.",
		}),
	}
	reg.MustRegister(m.sessions, m.retryLater, m.rejected, m.evicted, m.active, m.waitingKey, m.issuance, m.storeCommit, m.sessionTimes, m.usedUp)
	m.exp = newExpiry(reg)
	return m
}

// SessionEnded implements session.Observer.
func (m *Metrics) SessionEnded(sum session.Summary, d time.Duration) {
	op := string(sum.Operation)
	if op == "" {
		op = "unknown"
	}
	outcome := sum.Outcome
	if outcome == "" {
		outcome = "aborted"
	}
	m.sessions.WithLabelValues(outcome, op).Inc()
	m.sessionTimes.WithLabelValues(op).Observe(d.Seconds())
	if outcome == "retry-later" {
		m.retryLater.WithLabelValues(sum.RetryWhy).Inc()
	}
	m.exp.renewalEnded(sum)
}

// KeyWait implements session.Observer.
func (m *Metrics) KeyWait(delta int) { m.waitingKey.Add(float64(delta)) }

// Issued implements session.Observer.
func (m *Metrics) Issued(d time.Duration) { m.issuance.Observe(d.Seconds()) }

// AuthStringUsedUp implements session.Observer.
func (m *Metrics) AuthStringUsedUp() { m.usedUp.Inc() }

// ConnOpened implements server.Observer.
func (m *Metrics) ConnOpened() { m.active.Inc() }

// ConnClosed implements server.Observer.
func (m *Metrics) ConnClosed() { m.active.Dec() }

// ConnRejected implements server.Observer.
func (m *Metrics) ConnRejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// InstrumentStore returns st with the latency of every write observed.
func (m *Metrics) InstrumentStore(st session.Store) session.Store {
	return &timedStore{Store: st, m: m}
}

type timedStore struct {
	session.Store
	m *Metrics
}

func (t *timedStore) observe(op string, start time.Time) {
	t.m.storeCommit.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (t *timedStore) StartAttempt(ctx context.Context, a device.Attempt) (device.Claim, error) {
	defer t.observe("start_attempt", time.Now())
	return t.Store.StartAttempt(ctx, a)
}

func (t *timedStore) RecordIssuance(ctx context.Context, is device.Issuance) error {
	defer t.observe("record_issuance", time.Now())
	return t.Store.RecordIssuance(ctx, is)
}

func (t *timedStore) FinishAttempt(ctx context.Context, o device.Outcome) error {
	defer t.observe("finish_attempt", time.Now())
	return t.Store.FinishAttempt(ctx, o)
}

func (t *timedStore) SaveFetchedCertificate(ctx context.Context, fc device.FetchedCertificate) error {
	defer t.observe("save_fetched", time.Now())
	return t.Store.SaveFetchedCertificate(ctx, fc)
}

// ConnEvicted implements server.Observer.
func (m *Metrics) ConnEvicted(reason string) { m.evicted.WithLabelValues(reason).Inc() }
