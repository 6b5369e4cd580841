package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/bench"
	"github.com/capf-server/capf/internal/cli"
)

// These tests check that capf bench works and reports what it measured;
// they never assert on speed.

// runBenchBinary runs the built capf bench with args (--json added) and
// returns its report.
func runBenchBinary(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	cmd := exec.Command(capfBinary(t), append([]string{"bench", "--json"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("capf bench %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	t.Logf("capf bench %s: %d/%d ok, %.0f/s, p99 %v, server CPU %v per enrollment, RSS %d MiB",
		strings.Join(args, " "), rep.Succeeded, rep.Attempted, rep.PerSecond, rep.LatencyP99, rep.CPUPerEnrollment, rep.PeakRSSBytes>>20)
	return &rep
}

// runBenchCLI runs capf with args (a bench with --json) in this process
// and returns its report.
func runBenchCLI(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := cli.Run(context.Background(), args, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("capf %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	return &rep
}

// checkBenchCounts requires every phone of the timed phase to have
// enrolled.
func checkBenchCounts(t *testing.T, rep *bench.Report, phones int) {
	t.Helper()
	if rep.Attempted != phones || rep.Succeeded != phones || rep.Failed != 0 || len(rep.FirstErrors) != 0 {
		t.Errorf("attempted %d, succeeded %d, failed %d (%q); want %d enrolled", rep.Attempted, rep.Succeeded, rep.Failed, rep.FirstErrors, phones)
	}
	if rep.PerSecond <= 0 || rep.LatencyP50 <= 0 || rep.LatencyP50 > rep.LatencyP99 || rep.LatencyP99 > rep.LatencyMax {
		t.Errorf("rate %.1f/s, latencies p50 %v p99 %v max %v", rep.PerSecond, rep.LatencyP50, rep.LatencyP99, rep.LatencyMax)
	}
}

func TestBenchSpawned(t *testing.T) {
	// 150 EC enrolments keep the server busy for several clock ticks (its
	// CPU is counted in 10 ms ticks; 60 took ~25 ms).
	rep := runBenchBinary(t, "--phones", "150", "--concurrency", "8", "--phone-key", "ec256", "--capf-key", "ec256")
	checkBenchCounts(t, rep, 150)
	if rep.Params.Mode != bench.ModeSpawned || rep.Params.CAPFKey != "ec256" {
		t.Errorf("params %+v", rep.Params)
	}
	if !rep.ServerMeasured || rep.CPUPerEnrollment <= 0 || rep.PeakRSSBytes <= 0 {
		t.Errorf("server measured %v: CPU per enrollment %v, peak RSS %d; want both > 0", rep.ServerMeasured, rep.CPUPerEnrollment, rep.PeakRSSBytes)
	}
}

func TestBenchWaiting(t *testing.T) {
	rep := runBenchBinary(t, "--phones", "30", "--concurrency", "8", "--capf-key", "ec256",
		"--waiting", "20", "--waiting-delay", "1m", "--tls13")
	checkBenchCounts(t, rep, 30)
	if rep.Params.TLSMax != "1.3" {
		t.Errorf("params %+v: want TLS 1.3 allowed", rep.Params)
	}
	if rep.Waiting != 20 || rep.WaitingReached != 20 || rep.WaitingHeld != 20 || len(rep.WaitingErrors) != 0 {
		t.Errorf("waiting %d, reached %d, held %d (%q); want 20 held", rep.Waiting, rep.WaitingReached, rep.WaitingHeld, rep.WaitingErrors)
	}
}

func TestBenchInProcess(t *testing.T) {
	for _, op := range []string{"install", "none"} {
		t.Run(op, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Run(context.Background(), []string{"bench", "--in-process", "--json", "--quiet",
				"--phones", "12", "--concurrency", "4", "--capf-key", "ec256", "--phone-key", "ec256", "--operation", op,
				"--param", "retry_delay=90s", "--param", `log_level="warn"`}, &stdout, &stderr)
			if code != cli.ExitOK {
				t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			var rep bench.Report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("report: %v\n%s", err, stdout.String())
			}
			checkBenchCounts(t, &rep, 12)
			if sp := rep.Params.ServerParams; sp["retry_delay"] != "90s" || sp["log_level"] != "warn" || sp["capf_key"] != "ec256" {
				t.Errorf("server params %v", sp)
			}
			if rep.Params.Mode != bench.ModeInProcess || rep.ServerMeasured || len(rep.Notes) == 0 {
				t.Errorf("mode %s, measured %v, notes %q: want in-process, not measured, with a note", rep.Params.Mode, rep.ServerMeasured, rep.Notes)
			}
		})
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--phones", "0"},
		{"bench", "--operation", "delete"},
		{"bench", "--server", "127.0.0.1:1"},
		{"bench", "--ca", "x.pem"},
		{"bench", "--server", "127.0.0.1:1", "--in-process", "--no-provision", "--ca", "x.pem"},
	} {
		var stdout, stderr bytes.Buffer
		if code := cli.Run(context.Background(), args, &stdout, &stderr); code != cli.ExitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, cli.ExitUsage, stderr.String())
		}
	}
}

func TestBenchExternal(t *testing.T) {
	s := startServer(t, serverParams{"capf_key": "ec256"}, "")
	rep := runBenchCLI(t, "--data", s.data, "bench", "--server", s.addr, "--json", "--quiet",
		"--phones", "10", "--concurrency", "4", "--name-prefix", "SEPBE")
	checkBenchCounts(t, rep, 10)
	if rep.Params.Mode != bench.ModeExternal || rep.ServerMeasured {
		t.Errorf("mode %s, measured %v", rep.Params.Mode, rep.ServerMeasured)
	}
	if d := s.device("SEPBE0000000009"); d.Status != "Upgrade Success" {
		t.Errorf("device SEPBE0000000009: status %q, want Upgrade Success", d.Status)
	}
	// The devices exist now: a second run without provisioning finds
	// nothing to do (their operation is done), and says so.
	var stdout, stderr bytes.Buffer
	code := cli.Run(context.Background(), []string{"bench", "--server", s.addr, "--ca", s.caFile, "--no-provision",
		"--phones", "3", "--name-prefix", "SEPBE", "--quiet"}, &stdout, &stderr)
	if code != cli.ExitOK || !strings.Contains(stdout.String(), "failed           3") || !strings.Contains(stdout.String(), "END_SESSION no-action (0), want success") {
		t.Errorf("second run: exit %d\n%s", code, stdout.String())
	}
}

// TestBenchExternalCapfList: --server with several addresses gives every
// phone the list as its capfList, each starting at another entry; a
// phone whose first server does not answer moves to the next, as a phone
// walks its capfList, and the report gives each server's share.
func TestBenchExternalCapfList(t *testing.T) {
	s := startServer(t, serverParams{"capf_key": "ec256"}, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing answers there now
	rep := runBenchCLI(t, "--data", s.data, "bench", "--server", dead+","+s.addr, "--json", "--quiet",
		"--phones", "10", "--concurrency", "4", "--name-prefix", "SEPBF")
	checkBenchCounts(t, rep, 10)
	if rep.Params.Server != dead+","+s.addr || rep.Params.Nodes != 2 {
		t.Errorf("params: server %q, nodes %d; want both servers", rep.Params.Server, rep.Params.Nodes)
	}
	if len(rep.Nodes) != 2 || rep.Nodes[0].Addr != dead || rep.Nodes[0].Succeeded != 0 ||
		rep.Nodes[1].Addr != s.addr || rep.Nodes[1].Succeeded != 10 {
		t.Errorf("shares %+v; want none on the dead server, all ten on %s", rep.Nodes, s.addr)
	}

	// Refused before anything is provisioned: a bad entry, a repeat, six.
	for _, list := range []string{s.addr + ",nowhere", s.addr + "," + s.addr, strings.Repeat(s.addr+",", 5) + dead} {
		var stdout, stderr bytes.Buffer
		if code := cli.Run(context.Background(), []string{"--data", s.data, "bench", "--server", list, "--phones", "1", "--name-prefix", "SEPBD"}, &stdout, &stderr); code != cli.ExitUsage {
			t.Errorf("--server %s: exit %d, want %d\n%s", list, code, cli.ExitUsage, stderr.String())
		}
	}
	if _, _, code := s.capf("device", "show", "SEPBD0000000000"); code == cli.ExitOK {
		t.Errorf("a refused run provisioned a device")
	}
}
