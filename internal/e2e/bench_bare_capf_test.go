package e2e

import (
	"testing"

	"github.com/capf-server/capf/internal/bench"
)

// TestBenchBareCAPF: capf bench --bare-capf drives the simulated phones at
// the bare CAPF server it spawns through the binary's hidden command:
// every phone installs its LSC, and the server is measured apart, as a
// capf server would be.
func TestBenchBareCAPF(t *testing.T) {
	rep := runBenchBinary(t, "--bare-capf", "--phones", "40", "--concurrency", "4", "--capf-key", "rsa2048", "--quiet")
	checkBenchCounts(t, rep, 40)
	if rep.Params.Mode != bench.ModeBareCAPF || rep.Params.CAPFKey != "rsa2048" || rep.Params.Operation != "install" {
		t.Errorf("params %+v: want mode %s, CAPF key rsa2048, operation install", rep.Params, bench.ModeBareCAPF)
	}
	if !rep.ServerMeasured || rep.CPUPerEnrollment <= 0 || rep.PeakRSSBytes <= 0 || rep.ServerWarnings != 0 {
		t.Errorf("server measured %v: CPU per enrollment %v, peak RSS %d, warnings %d; want measured, no warnings",
			rep.ServerMeasured, rep.CPUPerEnrollment, rep.PeakRSSBytes, rep.ServerWarnings)
	}
}
