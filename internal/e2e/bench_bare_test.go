package e2e

import (
	"testing"

	"github.com/capf-server/capf/internal/bench"
)

// TestBenchBare: capf bench --bare measures the reference loop through the
// command: every phone gets its certificate, and the report says bare.
func TestBenchBare(t *testing.T) {
	rep := runBenchBinary(t, "--bare", "--phones", "16", "--concurrency", "4", "--capf-key", "rsa2048", "--quiet")
	checkBenchCounts(t, rep, 16)
	if rep.Params.Mode != bench.ModeBare || rep.Params.CAPFKey != "rsa2048" || rep.ServerMeasured {
		t.Errorf("params %+v, server measured %v: want mode bare, CAPF key rsa2048, nothing measured apart", rep.Params, rep.ServerMeasured)
	}
}
