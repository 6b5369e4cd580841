package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestBenchTwoNodes runs capf bench --nodes 2 on the CI cluster: one
// cluster's keys in the run's schema, two serve nodes on two loopback
// addresses, each phone's capfList its node first. Every phone enrols
// exactly once (one issuance, one attempt, none open), both nodes serve
// half of them, and the report's per-node shares add up.
func TestBenchTwoNodes(t *testing.T) {
	base := pgtest.DSN(t)
	// CPU time is counted in clock ticks (10 ms): with an EC CAPF key a
	// node's 12 enrolments took ~5 ms and were sometimes measured as 0.
	// An RSA-2048 CAPF key (two private-key operations an enrolment) and 24
	// enrolments a node give each node several ticks.
	const phones = 48
	rep := runBenchBinary(t, "--db", base, "--nodes", "2", "--phones", strconv.Itoa(phones), "--concurrency", "8",
		"--phone-key", "ec256", "--capf-key", "rsa2048", "--quiet", "--keep")
	p := rep.Params
	t.Cleanup(func() {
		if p.DBSchema != "" {
			pgtest.Exec(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{p.DBSchema}.Sanitize()+" CASCADE")
		}
		if rep.DataDir != "" {
			_ = os.RemoveAll(rep.DataDir)
		}
	})
	checkBenchCounts(t, rep, phones)
	if p.Nodes != 2 || len(rep.Nodes) != 2 {
		t.Fatalf("params nodes %d, report nodes %+v: want 2", p.Nodes, rep.Nodes)
	}
	hosts := map[string]bool{}
	sum := 0
	for i, n := range rep.Nodes {
		host, _, err := net.SplitHostPort(n.Addr)
		if err != nil {
			t.Fatalf("node %d address %q: %v", i+1, n.Addr, err)
		}
		hosts[host] = true
		sum += n.Succeeded
		if n.Succeeded != phones/2 || n.ServerCPUMS <= 0 || n.PeakRSSBytes <= 0 {
			t.Errorf("node %d: %+v; want %d enrolments (its phones list it first) and measured CPU and RSS", i+1, n, phones/2)
		}
	}
	if !hosts["127.0.0.1"] || !hosts["127.0.0.2"] {
		t.Errorf("node hosts %v: want 127.0.0.1 and 127.0.0.2", hosts)
	}
	if sum != rep.Succeeded {
		t.Errorf("nodes' enrolments add up to %d, report %d", sum, rep.Succeeded)
	}
	if rep.ServerWarnings != 0 {
		t.Errorf("%d server warnings: %q", rep.ServerWarnings, rep.ServerLog)
	}
	// The nodes keep no CA of their own: the cluster's is in the database.
	for i := range 2 {
		if _, err := os.Stat(filepath.Join(rep.DataDir, "node"+string(rune('1'+i)), "ca")); !os.IsNotExist(err) {
			t.Errorf("node %d has a CA directory (stat: %v); want the cluster's keys in the database", i+1, err)
		}
	}
	db := pgtest.WithParam(t, base, "search_path", p.DBSchema)
	for _, c := range []struct {
		sql  string
		want int
	}{
		{"SELECT count(*) FROM issuances", phones},
		{"SELECT count(DISTINCT device) FROM issuances", phones},
		{"SELECT count(*) FROM attempts", phones},
		{"SELECT count(*) FROM attempts WHERE finished_at IS NULL", 0},
		{"SELECT count(DISTINCT node) FROM attempts", 2},
		{"SELECT count(*) FROM devices WHERE lsc_serial IS NOT NULL", phones},
		// The run's "no admission limits" hold for the fleet: the first
		// node imported them into the database.
		{"SELECT count(*) FROM fleet_parameters WHERE name = 'max_concurrent_operations' AND value::text = '0'", 1},
	} {
		if n := countRows(t, db, c.sql); n != c.want {
			t.Errorf("%s: %d, want %d", c.sql, n, c.want)
		}
	}
}
