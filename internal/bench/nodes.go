package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/config"
)

// NodeReport is one node of a run that started several: its phone
// address, the timed phones that ended their session there with success,
// its rate, its CPU time in the timed phase (milliseconds) and per
// enrolment it completed, and its peak RSS.
type NodeReport struct {
	Addr               string  `json:"addr"`
	Succeeded          int     `json:"succeeded"`
	PerSecond          float64 `json:"per_second"`
	ServerCPUMS        float64 `json:"server_cpu_ms"`
	CPUPerEnrollmentMS float64 `json:"cpu_per_enrollment_ms"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
}

// clusterCmdTimeout bounds cluster init and ca export.
const clusterCmdTimeout = 2 * time.Minute

// nodeListen returns the phone listen address of node i (0-based):
// 127.0.0.(i+1), on a port the system chooses.
func nodeListen(i int) string { return fmt.Sprintf("127.0.0.%d:0", i+1) }

// nodeDir returns the data directory of node i (0-based) of a
// several-node run under dir.
func nodeDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("node%d", i+1)) }

// runCapf runs exe with args and returns its error with the end of its
// output.
func runCapf(ctx context.Context, exe string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("capf %s: %w\n%s", args[0]+" "+args[1], err, lastLines([]byte(stderr.String()), 10))
	}
	return out, nil
}

// initCluster stores a new cluster's keys (CAPF key capfKey, SAST
// signers, admin CA) in the database db with "capf cluster init", sealed
// under a new KEK file in dir, and writes the cluster's CAPF certificate
// ("capf ca export") to a file in dir. It returns the two files.
func initCluster(ctx context.Context, exe, dir, db, capfKey string) (kekFile, caFile string, err error) {
	kekFile = filepath.Join(dir, "kek")
	if _, err := runCapf(ctx, exe, "cluster", "init", "--db", db, "--kek-file", kekFile, "--new-kek", "--capf-key", capfKey); err != nil {
		return "", "", err
	}
	pem, err := runCapf(ctx, exe, "ca", "export", "--data", dir, "--db", db, "--kek-file", kekFile)
	if err != nil {
		return "", "", err
	}
	caFile = filepath.Join(dir, "capf.pem")
	if err := os.WriteFile(caFile, pem, 0o600); err != nil {
		return "", "", err
	}
	return kekFile, caFile, nil
}

// spawnNodes starts one "exe serve" node on each data directory of dirs
// (which holds its capf.json), on the database db, the first on
// 127.0.0.1, the next on 127.0.0.2, …, with the cluster's KEK file when
// kekFile is set, each writing its CPU profile when profile is set (see
// nodeProfile), and returns them; on an error it stops the ones it
// started.
func spawnNodes(ctx context.Context, exe string, dirs []string, db, kekFile, profile string) ([]*server, error) {
	var nodes []*server
	for i, nd := range dirs {
		s, err := spawn(ctx, exe, nd, db, nodeListen(i), kekFile, nodeProfile(profile, i, len(dirs)))
		if err != nil {
			for _, s := range nodes {
				_ = s.stop()
			}
			if len(dirs) > 1 {
				err = fmt.Errorf("node %d: %w", i+1, err)
			}
			return nil, err
		}
		nodes = append(nodes, s)
	}
	return nodes, nil
}

// nodeProfile returns the CPU profile file of node i (0-based) of n:
// profile itself for one node, profile.nodeN for several; "" for none.
func nodeProfile(profile string, i, n int) string {
	if profile == "" || n == 1 {
		return profile
	}
	return fmt.Sprintf("%s.node%d", profile, i+1)
}

// nodeParams returns the capf.json of node i (0-based): all of params for
// the first, which starts first and imports the fleet parameters into the
// cluster's database (once, for every node); the node settings alone for
// the others, which would warn that their file's fleet parameters are
// ignored.
func nodeParams(params map[string]any, i int) map[string]any {
	if i == 0 {
		return params
	}
	p := maps.Clone(params)
	maps.DeleteFunc(p, func(k string, _ any) bool { return config.IsFleet(k) })
	return p
}

// capfList returns the capfList of phone i: its node (i mod the number of
// nodes) first, then the others in order.
func (b *bench) capfList(i int) []string {
	nodes := b.several()
	n := len(nodes)
	list := make([]string, n)
	for j := range list {
		list[j] = nodes[(i+j)%n].addr
	}
	return list
}

// several returns the nodes the phones' capfLists name: the spawned ones
// when the run started several, the external ones when Options.Server
// lists several; nil for one server.
func (b *bench) several() []*server {
	switch {
	case len(b.nodes) > 1:
		return b.nodes
	case len(b.external) > 1:
		return b.external
	}
	return nil
}

// externalShares reports each external node's share of the timed phones:
// enrolments and rate (their CPU and memory are not this run's to
// measure).
func (b *bench) externalShares() {
	r := b.rep
	for _, n := range b.external {
		nr := NodeReport{Addr: n.addr, Succeeded: n.succeeded}
		if r.Duration > 0 {
			nr.PerSecond = float64(n.succeeded) / r.Duration.Seconds()
		}
		r.Nodes = append(r.Nodes, nr)
	}
}
