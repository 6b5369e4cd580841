package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store"
)

// TestClusterForget: `capf cluster forget` removes a dead node from the
// registry (and from cluster status), fails its open attempt and audits
// it; a live node is refused naming when its registration expires, an
// unknown id and an empty one are refused; nothing changes on a refusal.
func TestClusterForget(t *testing.T) {
	data := initData(t)
	st, err := store.Open(t.Context(), store.Options{DataDir: data, Mode: store.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	alive := cluster.Node{ID: "node-alive", Version: "v9.9.9", Started: now.Add(-time.Hour), LastSeen: now, Expires: now.Add(time.Hour)}
	dead := cluster.Node{ID: "node-dead", Version: "v9.9.8", Started: now.Add(-2 * time.Hour), LastSeen: now.Add(-time.Minute), Expires: now.Add(-30 * time.Second)}
	for _, n := range []cluster.Node{alive, dead} {
		if err := st.RegisterNode(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateDevice(t.Context(), device.Device{Name: "SEP00000000F00D", SecurityProfile: device.Encrypted, AuthMode: device.AuthNull,
		Operation: device.OpInstall, Key: device.RSA2048}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartAttempt(t.Context(), device.Attempt{Device: "SEP00000000F00D", Operation: device.OpInstall, StartedAt: now.Add(-time.Minute), Node: dead.ID}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, c := range []struct {
		name, id string
		code     int
		says     string
	}{
		{"fail/alive", alive.ID, ExitConflict, "expires at " + alive.Expires.UTC().Format(time.RFC3339)},
		{"fail/unknown", "node-nope", ExitNotFound, "no node with this id"},
		{"fail/empty", "", ExitUsage, "1 to 256 characters"},
		{"fail/too-long", strings.Repeat("n", cluster.MaxNodeID+1), ExitUsage, "1 to 256 characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, code := run(t, data, "cluster", "forget", c.id)
			if code != c.code || !strings.Contains(errOut, c.says) {
				t.Errorf("cluster forget %q: exit %d, want %d saying %q:\n%s", c.id, code, c.code, c.says, errOut)
			}
		})
	}
	if out, _, _ := run(t, data, "cluster", "status"); !strings.Contains(out, "node-dead") || !strings.Contains(out, "node-alive") {
		t.Fatalf("cluster status after refusals lacks a node:\n%s", out)
	}

	out, errOut, code := run(t, data, "cluster", "forget", dead.ID)
	if code != ExitOK || !strings.Contains(out, "forgot node node-dead (1 open attempts failed)") {
		t.Fatalf("cluster forget node-dead: exit %d:\n%s%s", code, out, errOut)
	}
	if out, _, _ := run(t, data, "cluster", "status"); strings.Contains(out, "node-dead") || !strings.Contains(out, "node-alive") {
		t.Errorf("cluster status after forget:\n%s", out)
	}
	st, err = store.Open(t.Context(), store.Options{DataDir: data, Mode: store.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: "node node-dead"})
	if err != nil || len(evs) != 1 || evs[0].Action != cluster.ActionForget || evs[0].Actor.Kind != device.CLIActor("x").Kind {
		t.Errorf("audit = %+v, %v; want one CLI node.forget", evs, err)
	}
	if others, _ := st.ListAudit(t.Context(), device.AuditQuery{Target: "node node-alive"}); len(others) != 0 {
		t.Errorf("refused forget audited: %+v", others)
	}
	hist, err := st.ListAttempts(t.Context(), "SEP00000000F00D", 0)
	if err != nil || len(hist) != 1 || hist[0].FinishedAt.IsZero() || hist[0].Result != device.FailedStatus(device.OpInstall, device.ReasonServerRestart) {
		t.Errorf("the forgotten node's attempt = %+v, %v; want failed as after a restart", hist, err)
	}
}
