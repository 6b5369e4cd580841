package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// leaseTermE2E is the lease and registration term of the nodes of
// TestLeasesMoveWhenNodeKilled (CAPF_LEASE_TERM), short so the test is.
const leaseTermE2E = 3 * time.Second

// nodeIDOf returns the node id a serve process keeps in its data
// directory.
func nodeIDOf(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// holders returns who holds each lease at now.
func holders(t *testing.T, st *postgres.Store, now time.Time) map[string]string {
	t.Helper()
	ls, err := st.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range ls {
		if l.HeldAt(now) {
			out[l.Name] = l.Holder
		}
	}
	return out
}

// TestLeasesMoveWhenNodeKilled runs two `capf serve` processes on one
// PostgreSQL database with a 3 s lease term. The first holds the sweeper
// and trust-file leases; a phone's session is open on it when it is
// SIGKILLed. The second node takes both leases within a term and a third
// of the kill, and, once the dead node's registration has expired, fails
// the attempt it left open. `capf cluster status` shows the dead node.
func TestLeasesMoveWhenNodeKilled(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := capfBinary(t)
	env := []string{"CAPF_DB=" + dsn, "CAPF_LEASE_TERM=" + leaseTermE2E.String()}
	newData := func() string { return initNode(t, bin, env, map[string]any{"trust_file_dir": "tftp"}) }
	dataA, dataB := newData(), newData()
	a := startBinaryEnv(t, bin, dataA, false, env...)
	nodeA := nodeIDOf(t, dataA)
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitUntil(t, 10*time.Second, "node A to hold its four leases", func() bool {
		h := holders(t, st, time.Now())
		return h["sweeper"] == nodeA && h["trust-file"] == nodeA && h["crl-publisher"] == nodeA && h["lsc-renewal"] == nodeA
	})
	b := startBinaryEnv(t, bin, dataB, false, env...)
	nodeB := nodeIDOf(t, dataB)

	// A phone generating its key for a long time: its attempt is open on
	// node A.
	name := newPhoneName()
	if out, err := a.run(bin, "device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); err != nil {
		t.Fatalf("device add: %v\n%s", err, out)
	}
	capfCert := readCert(t, filepath.Join(dataA, "ca", "capf.pem"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = phonesim.Run(ctx, phonesim.Options{Server: a.addr, Trust: []*x509.Certificate{capfCert}, DeviceName: name,
			KeygenDelay: time.Minute, ProgressInterval: 500 * time.Millisecond, Retries: -1, MessageTimeout: 10 * time.Second})
	}()
	waitUntil(t, 30*time.Second, "the phone's attempt to open on node A", func() bool {
		as, err := st.ListAttempts(context.Background(), name, 1)
		return err == nil && len(as) == 1 && as[0].FinishedAt.IsZero() && as[0].Node == nodeA
	})
	if h := holders(t, st, time.Now()); h["sweeper"] != nodeA {
		t.Fatalf("leases before the kill: %v, want node A (%s) to hold the sweeper", h, nodeA)
	}

	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = a.cmd.Process.Wait()
	killed := time.Now()
	cancel()

	// Within a term (A's last renewal's lease) and a third (B's next
	// try), plus slack for a loaded machine.
	limit := leaseTermE2E + leaseTermE2E/3
	waitUntil(t, limit+5*time.Second, "node B to take the four leases", func() bool {
		h := holders(t, st, time.Now())
		return h["sweeper"] == nodeB && h["trust-file"] == nodeB && h["crl-publisher"] == nodeB && h["lsc-renewal"] == nodeB
	})
	moved := time.Since(killed)
	t.Logf("leases moved %v after the kill (term %v)", moved.Round(10*time.Millisecond), leaseTermE2E)
	if moved > limit+2*time.Second {
		t.Errorf("leases moved %v after the kill, want within about %v", moved, limit)
	}

	// The dead node's attempt is failed by the sweeper on B once A's
	// registration has expired, and not before.
	var failed device.Attempt
	waitUntil(t, 3*leaseTermE2E+5*time.Second, "the dead node's attempt to be failed", func() bool {
		as, err := st.ListAttempts(context.Background(), name, 1)
		if err != nil || len(as) != 1 || as[0].FinishedAt.IsZero() {
			return false
		}
		failed = as[0]
		return true
	})
	t.Logf("dead node's attempt failed %v after the kill", time.Since(killed).Round(10*time.Millisecond))
	if want := device.FailedStatus(device.OpInstall, device.ReasonServerRestart); failed.Result != want {
		t.Errorf("dead node's attempt: result %q, want %q", failed.Result, want)
	}
	nodes, err := st.ListNodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == nodeA && failed.FinishedAt.Before(n.Expires) {
			t.Errorf("the attempt was failed at %v, before node A's registration expired at %v", failed.FinishedAt, n.Expires)
		}
	}
	if d, err := st.GetDevice(t.Context(), name); err != nil || d.Status != failed.Result || d.Operation != device.OpInstall {
		t.Errorf("device after the sweep: %+v %v; want %q with the operation still armed", d, err, failed.Result)
	}

	// capf cluster status, through node B's environment.
	out, err := b.run(bin, "cluster", "status", "--json")
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	var status struct {
		Nodes []struct {
			ID     string   `json:"id"`
			Alive  bool     `json:"alive"`
			Leases []string `json:"leases"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("cluster status --json: %v\n%s", err, out)
	}
	state := map[string]string{}
	for _, n := range status.Nodes {
		state[n.ID] = strings.Join(append([]string{map[bool]string{true: "alive", false: "dead"}[n.Alive]}, n.Leases...), " ")
	}
	if state[nodeA] != "dead" || state[nodeB] != "alive crl-publisher lsc-renewal sweeper trust-file" {
		t.Errorf("cluster status: %v; want %s dead, %s alive holding every lease\n%s", state, nodeA, nodeB, out)
	}
	if out, err := b.run(bin, "cluster", "status"); err != nil || !strings.Contains(out, nodeA) || !strings.Contains(out, "dead") {
		t.Errorf("cluster status: %v\n%s", err, out)
	}
}

// initNode makes a node's data directory with capf init (env names the
// database) and sets params in its capf.json; a "trust_file_dir" param is
// created as a directory.
func initNode(t *testing.T, bin string, env []string, params map[string]any) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, "--data", data, "init")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("capf init: %v\n%s", err, out)
	}
	if dir, ok := params["trust_file_dir"].(string); ok {
		if err := os.Mkdir(filepath.Join(data, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(data, "capf.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range params {
		cfg[k] = v
	}
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestFleetLimitAcrossNodes: with max_concurrent_operations 1, a phone
// generating its key on node A keeps a phone on node B waiting
// (RETRY_LATER, nothing recorded); once A's session ends, B serves it.
func TestFleetLimitAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := capfBinary(t)
	env := []string{"CAPF_DB=" + dsn}
	limit := map[string]any{"max_concurrent_operations": 1}
	dataA, dataB := initNode(t, bin, env, limit), initNode(t, bin, env, limit)
	a := startBinaryEnv(t, bin, dataA, false, env...)
	b := startBinaryEnv(t, bin, dataB, false, env...)
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	first, second := newPhoneName(), newPhoneName()
	for _, n := range []string{first, second} {
		if out, err := a.run(bin, "device", "add", n, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); err != nil {
			t.Fatalf("device add: %v\n%s", err, out)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = phonesim.Run(ctx, phonesim.Options{Server: a.addr, Trust: []*x509.Certificate{readCert(t, filepath.Join(dataA, "ca", "capf.pem"))},
			DeviceName: first, KeygenDelay: time.Minute, ProgressInterval: 500 * time.Millisecond, Retries: -1, MessageTimeout: 10 * time.Second})
	}()
	waitUntil(t, 30*time.Second, "the first phone's attempt to open on node A", func() bool {
		n, err := st.CountOpenAttempts(context.Background())
		return err == nil && n == 1
	})
	phoneB := phonesim.Options{Server: b.addr, Trust: []*x509.Certificate{readCert(t, filepath.Join(dataB, "ca", "capf.pem"))},
		DeviceName: second, Retries: -1, MessageTimeout: 10 * time.Second}
	res, err := phonesim.Run(t.Context(), phoneB)
	if !errors.Is(err, phonesim.ErrRetryLater) {
		t.Fatalf("second phone on node B while the fleet is at its limit: %+v, %v; want RETRY_LATER", res, err)
	}
	if as, err := st.ListAttempts(t.Context(), second, 0); err != nil || len(as) != 0 {
		t.Errorf("attempts of the refused phone: %+v %v, want none", as, err)
	}
	// The first phone goes away: its session fails, and B serves the
	// second.
	cancel()
	waitUntil(t, 30*time.Second, "the first phone's attempt to close", func() bool {
		n, err := st.CountOpenAttempts(context.Background())
		return err == nil && n == 0
	})
	res, err = phonesim.Run(t.Context(), phoneB)
	if err != nil || res.Installed == nil {
		t.Fatalf("second phone on node B once the fleet had room: %+v, %v", res, err)
	}
}

// waitUntil polls cond every 50 ms until it holds, or fails t after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readCert reads the first certificate of a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
