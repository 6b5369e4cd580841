package telemetry

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/session"
)

type nopStore struct{ session.Store }

func (nopStore) StartAttempt(context.Context, device.Attempt) (device.Claim, error) {
	return device.Claim{AttemptID: 1}, nil
}
func (nopStore) RecordIssuance(context.Context, device.Issuance) error { return nil }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.SessionEnded(session.Summary{Outcome: "success", Operation: device.OpInstall}, 20*time.Millisecond)
	m.SessionEnded(session.Summary{Outcome: "retry-later", RetryWhy: "busy", Operation: device.OpInstall}, time.Millisecond)
	m.SessionEnded(session.Summary{}, time.Millisecond)
	m.KeyWait(1)
	m.KeyWait(1)
	m.KeyWait(-1)
	m.ConnOpened()
	m.ConnRejected("per-address-limit")
	m.ConnRejected("total-limit")
	m.ConnRejected("total-limit")
	m.ConnEvicted("total-limit")
	m.Issued(3 * time.Millisecond)
	st := m.InstrumentStore(nopStore{})
	if _, err := st.StartAttempt(context.Background(), device.Attempt{}); err != nil {
		t.Fatal(err)
	}
	_ = st.RecordIssuance(context.Background(), device.Issuance{})

	want := `
# HELP capf_sessions_total Phone sessions that got past the TLS handshake, by outcome and pending operation.
# TYPE capf_sessions_total counter
capf_sessions_total{operation="install",outcome="retry-later"} 1
capf_sessions_total{operation="install",outcome="success"} 1
capf_sessions_total{operation="unknown",outcome="aborted"} 1
# HELP capf_retry_later_total RETRY_LATER answers, by reason (busy, maintenance-window, device-busy, store, auth-backoff, auth-address-budget, auth-busy).
# TYPE capf_retry_later_total counter
capf_retry_later_total{reason="busy"} 1
# HELP capf_sessions_waiting_for_key Sessions waiting for the phone to generate its key pair.
# TYPE capf_sessions_waiting_for_key gauge
capf_sessions_waiting_for_key 1
# HELP capf_connections_active Open phone connections (sessions in progress, handshakes included).
# TYPE capf_connections_active gauge
capf_connections_active 1
# HELP capf_connections_rejected_total Connections closed at once, by reason (per-address-limit, total-limit).
# TYPE capf_connections_rejected_total counter
capf_connections_rejected_total{reason="per-address-limit"} 1
capf_connections_rejected_total{reason="total-limit"} 2
# HELP capf_connections_evicted_total Connections still in their TLS handshake closed to admit a new one, by reason (total-limit).
# TYPE capf_connections_evicted_total counter
capf_connections_evicted_total{reason="total-limit"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"capf_sessions_total", "capf_retry_later_total", "capf_sessions_waiting_for_key", "capf_connections_active", "capf_connections_rejected_total", "capf_connections_evicted_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.storeCommit); n != 2 {
		t.Errorf("store commit series = %d, want 2 (start_attempt, record_issuance)", n)
	}
	if n := testutil.CollectAndCount(m.issuance); n != 1 {
		t.Errorf("issuance histogram series = %d", n)
	}
}
