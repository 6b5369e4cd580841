package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/wire"
)

// This file runs several `capf serve` processes (the real binary, so a
// SIGKILL is a real one) on one PostgreSQL database, as issue #15's
// "several nodes, one fleet" asks, and drives simulated phones at them
// that walk their capfList as phones do.

// clusterPhones is how many phones the fleet tests enrol; clusterWorkers
// how many of them run at once, so that the shared 2-core machine copes.
const (
	clusterPhones  = 300
	clusterWorkers = 16
)

// clusterNode is one `capf serve` process of a cluster.
type clusterNode struct {
	data string
	id   string // its node id, as recorded in the attempts it claims
	srv  *binServer
}

// cluster is a set of nodes serving one PostgreSQL database with one CAPF
// certificate authority.
type cluster struct {
	t     *testing.T
	bin   string
	dsn   string
	nodes []*clusterNode
	trust []*x509.Certificate
	st    *postgres.Store // the test's own look at the database
}

// clusterParams are the service parameters of every node: a phone told
// RETRY_LATER because its device is busy comes back after a second, not a
// minute.
var clusterParams = map[string]any{"message_timeout": "10s", "retry_delay": "1s"}

// startCluster starts n nodes on a fresh PostgreSQL schema (the test
// cluster of scripts/pg-test-cluster.sh; the test skips without one, and
// fails in CI) and waits until each listens.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	dsn := pgtest.DSN(t)
	c := &cluster{t: t, bin: capfBinary(t), dsn: dsn}
	env := []string{"CAPF_DB=" + dsn}
	datas := make([]string, n)
	for i := range datas {
		datas[i] = filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1))
	}
	// The cluster's keys are made once, in the database, sealed under a
	// KEK file every node reads: the nodes join by pointing at the same
	// database and KEK, and present one CAPF certificate.
	kekFile := filepath.Join(t.TempDir(), "kek")
	if out, err := c.capf(env, "cluster", "init", "--kek-file", kekFile, "--new-kek"); err != nil {
		t.Fatalf("capf cluster init: %v\n%s", err, out)
	}
	env = append(env, "CAPF_KEK_FILE="+kekFile)
	for i, data := range datas {
		writeNodeParams(t, data, clusterParams)
		srv := startBinaryEnv(t, c.bin, data, false, env...)
		id, err := os.ReadFile(filepath.Join(data, "node-id"))
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		c.nodes = append(c.nodes, &clusterNode{data: data, id: strings.TrimSpace(string(id)), srv: srv})
	}
	for i, nd := range c.nodes[1:] {
		if nd.id == c.nodes[0].id {
			t.Fatalf("nodes 1 and %d share the node id %s", i+2, nd.id)
		}
	}
	for i, nd := range c.nodes {
		if _, err := os.Stat(filepath.Join(nd.data, "ca")); err == nil {
			t.Fatalf("node %d keeps a CA directory of its own; the cluster's CA is in the database", i+1)
		}
	}
	out, err := c.capf(env, "--data", datas[0], "ca", "export")
	if err != nil {
		t.Fatalf("capf ca export: %v\n%s", err, out)
	}
	c.trust = parseCertificates(t, []byte(out))
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.st = st
	return c
}

// writeNodeParams writes the service parameters of a node to its data
// directory's capf.json, the keys given over the defaults.
func writeNodeParams(t *testing.T, data string, params map[string]any) {
	t.Helper()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "capf.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// parseCertificates reads the first PEM certificate of b, as `capf ca
// export` prints it.
func parseCertificates(t *testing.T, b []byte) []*x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM block in %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return []*x509.Certificate{c}
}

// capf runs a command of the binary with env added to the environment.
func (c *cluster) capf(env []string, args ...string) (string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// addDevices imports n new devices to install (EC P-256, null string) and
// returns their names.
func (c *cluster) addDevices(n int) []string {
	c.t.Helper()
	names := make([]string, n)
	var csv strings.Builder
	csv.WriteString("Device Name,Certificate Operation,Key\n")
	for i := range names {
		names[i] = newPhoneName()
		fmt.Fprintf(&csv, "%s,install,ec256\n", names[i])
	}
	file := filepath.Join(c.t.TempDir(), "phones.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if out, err := c.capf([]string{"CAPF_DB=" + c.dsn}, "--data", c.nodes[0].data, "device", "import", file); err != nil {
		c.t.Fatalf("device import: %v\n%s", err, out)
	}
	return names
}

// capfList returns the server list of the i-th phone: the nodes' addresses
// rotated by i, so that the phones start evenly over the nodes and each
// lists every node.
func (c *cluster) capfList(i int) []string {
	list := make([]string, len(c.nodes))
	for j := range list {
		list[j] = c.nodes[(i+j)%len(c.nodes)].srv.addr
	}
	return list
}

// phoneRun is what one simulated phone achieved.
type phoneRun struct {
	name string
	res  *phonesim.Result
	err  error
}

// phoneJob is one phone to run: its name, capfList and key generation time.
type phoneJob struct {
	name    string
	servers []string
	keygen  time.Duration
}

// runPhones runs the jobs on clusterWorkers workers, in order, and
// returns the results by device name. Phones log through log (nil:
// discard).
func (c *cluster) runPhones(ctx context.Context, jobs []phoneJob, log *slog.Logger) map[string]phoneRun {
	queue := make(chan phoneJob)
	out := make(chan phoneRun, len(jobs))
	var wg sync.WaitGroup
	for range clusterWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				res, err := phonesim.Run(ctx, phonesim.Options{
					Servers: j.servers, Trust: c.trust, DeviceName: j.name,
					KeygenDelay: j.keygen, ProgressInterval: 500 * time.Millisecond,
					Retries: 40, RetryInterval: 300 * time.Millisecond, MessageTimeout: 10 * time.Second,
					Logger: log,
				})
				out <- phoneRun{j.name, res, err}
			}
		}()
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	close(out)
	runs := make(map[string]phoneRun, len(jobs))
	for r := range out {
		runs[r.name] = r
	}
	return runs
}

// installed is the status of a device whose install completed.
var installed = device.SuccessStatus(device.OpInstall)

// serialHex is how the store writes a serial number.
func serialHex(c *x509.Certificate) string { return fmt.Sprintf("%X", c.SerialNumber.Bytes()) }

// fleetRecord is what the database holds about a set of devices.
type fleetRecord struct {
	issued   map[string][]device.Issuance // by device
	attempts map[string][]device.Attempt  // by device, newest first
	devices  map[string]device.Device
}

func (c *cluster) record(names []string) fleetRecord {
	c.t.Helper()
	ctx := c.t.Context()
	r := fleetRecord{issued: map[string][]device.Issuance{}, attempts: map[string][]device.Attempt{}, devices: map[string]device.Device{}}
	all, err := c.st.ListIssuances(ctx, "")
	if err != nil {
		c.t.Fatal(err)
	}
	for _, is := range all {
		r.issued[is.Device] = append(r.issued[is.Device], is)
	}
	for _, n := range names {
		if r.attempts[n], err = c.st.ListAttempts(ctx, n, 0); err != nil {
			c.t.Fatal(err)
		}
		if r.devices[n], err = c.st.GetDevice(ctx, n); err != nil {
			c.t.Fatal(err)
		}
	}
	return r
}

// checkNoOpenAttempt fails the test for every attempt still open.
func (c *cluster) checkNoOpenAttempt(r fleetRecord) {
	c.t.Helper()
	for n, as := range r.attempts {
		for _, a := range as {
			if a.FinishedAt.IsZero() {
				c.t.Errorf("%s: attempt %d (node %s) still open", n, a.ID, a.Node)
			}
		}
	}
}

// TestClusterEnrolment: three nodes on one PostgreSQL database, 300
// phones, each listing the three nodes in a different order, enrol at
// once: every phone gets exactly one certificate, the database records
// exactly one issuance per phone, the certificate the phone holds, and no
// open attempt; and every node served phones.
func TestClusterEnrolment(t *testing.T) {
	c := startCluster(t, 3)
	names := c.addDevices(clusterPhones)
	jobs := make([]phoneJob, len(names))
	for i, n := range names {
		jobs[i] = phoneJob{name: n, servers: c.capfList(i), keygen: time.Duration(rand.IntN(200)) * time.Millisecond}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	runs := c.runPhones(ctx, jobs, nil)
	t.Logf("%d phones enrolled over %d nodes in %v", len(runs), len(c.nodes), time.Since(start).Round(time.Millisecond))

	served := map[string]int{}
	for _, n := range names {
		r := runs[n]
		if r.err != nil || r.res.EndReason != wire.ReasonSuccess || r.res.Installed == nil || len(r.res.Received) != 1 {
			t.Errorf("%s: %+v, %v; want one certificate installed", n, r.res, r.err)
			continue
		}
		served[r.res.Server]++
	}
	for i, nd := range c.nodes {
		if served[nd.srv.addr] == 0 {
			t.Errorf("node %d (%s) served no phone: %v", i+1, nd.srv.addr, served)
		}
	}
	rec := c.record(names)
	total := 0
	for _, n := range names {
		is := rec.issued[n]
		total += len(is)
		if len(is) != 1 {
			t.Errorf("%s: %d issuances on record, want 1", n, len(is))
			continue
		}
		if r := runs[n]; r.res.Installed != nil && is[0].Serial != serialHex(r.res.Installed) {
			t.Errorf("%s: the phone holds %s, the record says %s", n, serialHex(r.res.Installed), is[0].Serial)
		}
		if d := rec.devices[n]; d.Status != installed || d.LSC == nil || d.LSC.Serial != is[0].Serial {
			t.Errorf("%s: status %q, LSC %+v; want %q with %s", n, d.Status, d.LSC, installed, is[0].Serial)
		}
	}
	if total != len(names) {
		t.Errorf("%d issuances on record for %d phones", total, len(names))
	}
	c.checkNoOpenAttempt(rec)
}

// retryLaterCounter counts the phones' "server asked to retry later" log
// lines: it tells the test when a phone was refused by one node because
// another holds its device.
type retryLaterCounter struct{ n atomic.Int64 }

func (h *retryLaterCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryLaterCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "server asked to retry later" {
		h.n.Add(1)
	}
	return nil
}
func (h *retryLaterCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *retryLaterCounter) WithGroup(string) slog.Handler      { return h }

// waitOpenOnNode polls the database until node holds at least n open
// attempts.
func (c *cluster) waitOpenOnNode(node string, n int) {
	c.t.Helper()
	ctx := c.t.Context()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var open int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM attempts WHERE finished_at IS NULL AND node = $1`, node).Scan(&open); err != nil {
			c.t.Fatal(err)
		}
		if open >= n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s holds %d open attempts after 60 s, want %d", node, open, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// releaseDeadNode fails the attempts a dead node left open, so that the
// phones whose device it held, told RETRY_LATER by the other nodes since,
// can complete. It stands in for the node lease of issue #15: when a
// node's lease expires, a surviving node does exactly this (the store's
// FailStaleAttempts for that node). Once leases land, this becomes a wait
// for the dead node's attempts to be failed.
func (c *cluster) releaseDeadNode(node string) int {
	c.t.Helper()
	n, err := c.st.FailStaleAttempts(c.t.Context(), device.StaleQuery{Node: node}, device.ReasonServerRestart)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// TestClusterNodeKilled: the fleet test with the first node SIGKILLed
// while phones are in session on it. The phones cut off move to the next
// server of their list (the others find the dead node refusing
// connections and move on too); a surviving node tells a phone whose
// device the dead node still holds to retry later, never issuing a second
// certificate while the dead node's claim stands; once the dead node's
// attempts are failed every phone completes. Every certificate a phone
// received is on record, the device records the one the phone holds, a
// phone got a second certificate only when its first session died with
// the node, and no attempt is left open.
func TestClusterNodeKilled(t *testing.T) {
	c := startCluster(t, 3)
	dead := c.nodes[0]
	names := c.addDevices(clusterPhones)
	// The first phones take 2 s to generate their keys, so that those
	// starting on the first node are surely in session when it dies.
	const slow = 2 * clusterWorkers
	jobs := make([]phoneJob, len(names))
	for i, n := range names {
		keygen := time.Duration(rand.IntN(200)) * time.Millisecond
		if i < slow {
			keygen = 2 * time.Second
		}
		jobs[i] = phoneJob{name: n, servers: c.capfList(i), keygen: keygen}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	retries := &retryLaterCounter{}
	done := make(chan map[string]phoneRun, 1)
	go func() { done <- c.runPhones(ctx, jobs, slog.New(retries)) }()

	// Kill the first node once several sessions hold their devices on it.
	const inFlight = 5
	c.waitOpenOnNode(dead.id, inFlight)
	if err := dead.srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = dead.srv.cmd.Wait()
	killed := time.Now()
	// The phones cut off reach another node, which refuses them while the
	// dead node's claims stand.
	for retries.n.Load() == 0 {
		if time.Since(killed) > 30*time.Second {
			t.Fatal("no phone was told RETRY_LATER after the node died: the phones cut off did not reach another node of their list, or it ignored the dead node's claims")
		}
		time.Sleep(20 * time.Millisecond)
	}
	released := c.releaseDeadNode(dead.id)
	runs := <-done
	t.Logf("node killed with %d sessions open on it; %d RETRY_LATER; all phones done %v after the kill",
		released, retries.n.Load(), time.Since(killed).Round(time.Millisecond))

	rec := c.record(names)
	// attemptNode gives the node of every attempt, by id.
	attemptNode := map[int64]device.Attempt{}
	for _, as := range rec.attempts {
		for _, a := range as {
			attemptNode[a.ID] = a
		}
	}
	recorded := map[string]string{} // serial → device
	for _, iss := range rec.issued {
		for _, is := range iss {
			recorded[is.Serial] = is.Device
		}
	}
	movedOn, cut := 0, 0
	for _, n := range names {
		r := runs[n]
		// A phone whose session committed on the dead node but never saw
		// END_SESSION is told nothing is pending by the next: complete too,
		// if it holds the certificate on record (below).
		if r.err != nil || (r.res.EndReason != wire.ReasonSuccess && r.res.EndReason != wire.ReasonNoAction) || r.res.Installed == nil {
			t.Errorf("%s did not complete: %+v %v", n, r.res, r.err)
			continue
		}
		if r.res.Failovers > 0 {
			movedOn++
		}
		if r.res.Server == dead.srv.addr && r.res.Failovers > 0 {
			t.Errorf("%s ended on the dead node after moving on", n)
		}
		for _, cert := range r.res.Received {
			if s := serialHex(cert); recorded[s] != n {
				t.Errorf("%s received certificate %s, which is not on record (recorded for %q)", n, s, recorded[s])
			}
		}
		if d := rec.devices[n]; d.LSC == nil || d.LSC.Serial != serialHex(r.res.Installed) || d.Status != installed {
			t.Errorf("%s: the phone holds %s, the device records %+v with status %q", n, serialHex(r.res.Installed), d.LSC, d.Status)
		}
		// One certificate per phone, but for a session that died with the
		// node after its certificate was issued: that attempt is the dead
		// node's, failed, and the one certificate after it is a survivor's.
		iss := rec.issued[n]
		if len(iss) != len(r.res.Received) {
			t.Errorf("%s: received %d certificates, %d on record", n, len(r.res.Received), len(iss))
		}
		live := 0
		for _, is := range iss {
			a, ok := attemptNode[is.AttemptID]
			switch {
			case !ok:
				t.Errorf("%s: issuance %s names attempt %d, which is not on record", n, is.Serial, is.AttemptID)
			case a.Node == dead.id && a.Result != installed:
				// cut off by the kill
			default:
				live++
			}
		}
		if live != 1 {
			t.Errorf("%s: %d certificates issued (attempts %+v), want one, plus at most one the dead node issued before it died", n, len(iss), rec.attempts[n])
		}
		// A phone the kill cut off completed on another node of its list.
		for _, a := range rec.attempts[n] {
			if a.Node == dead.id && a.Result != installed {
				cut++
				if r.res.Failovers == 0 || r.res.Server == dead.srv.addr {
					t.Errorf("%s: cut off by the kill, yet ended on %s after %d moves to the next server", n, r.res.Server, r.res.Failovers)
				}
			}
		}
	}
	// At least the sessions open at the kill were cut off (the test failed
	// them, unless a node lease did first).
	if cut < inFlight {
		t.Errorf("%d devices show an attempt cut off on the dead node, want at least the %d open when it died", cut, inFlight)
	}
	if movedOn < inFlight {
		t.Errorf("%d phones moved to the next server of their list, want at least the %d in session on the dead node", movedOn, inFlight)
	}
	c.checkNoOpenAttempt(rec)
}

// TestClusterRaceForOnePhone: the same device reaches two nodes at the
// same moment (two simulated phones of one name, each listing one node):
// one session wins and installs, the other is told RETRY_LATER and
// answers nothing; one certificate is on record. Repeated, since which
// node wins is a race.
func TestClusterRaceForOnePhone(t *testing.T) {
	c := startCluster(t, 2)
	names := c.addDevices(5)
	for _, name := range names {
		start := make(chan struct{})
		type result struct {
			res *phonesim.Result
			err error
		}
		results := make([]result, 2)
		var wg sync.WaitGroup
		for i, nd := range c.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res, err := phonesim.Run(t.Context(), phonesim.Options{
					Server: nd.srv.addr, Trust: c.trust, DeviceName: name,
					// The winner holds the device while it generates its key.
					KeygenDelay: 2 * time.Second, ProgressInterval: 500 * time.Millisecond,
					Retries: -1, MessageTimeout: 10 * time.Second,
				})
				results[i] = result{res, err}
			}()
		}
		close(start)
		wg.Wait()
		var won, refused int
		for i, r := range results {
			switch {
			case r.err == nil && r.res.EndReason == wire.ReasonSuccess && r.res.Installed != nil && len(r.res.Received) == 1:
				won++
			case errors.Is(r.err, phonesim.ErrRetryLater) && r.res.RetryLaterCount == 1 && len(r.res.Operations) == 0 && len(r.res.Received) == 0:
				refused++
			default:
				t.Errorf("%s on node %d: %+v, %v; want an install or RETRY_LATER", name, i+1, r.res, r.err)
			}
		}
		if won != 1 || refused != 1 {
			t.Errorf("%s: %d sessions won, %d told RETRY_LATER; want 1 and 1", name, won, refused)
		}
		rec := c.record([]string{name})
		if len(rec.issued[name]) != 1 || len(rec.attempts[name]) != 1 {
			t.Errorf("%s: %d issuances, %d attempts on record; want 1 and 1", name, len(rec.issued[name]), len(rec.attempts[name]))
		}
		c.checkNoOpenAttempt(rec)
	}
}
