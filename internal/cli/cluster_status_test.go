package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/store"
)

// TestClusterStatus: `capf cluster status` lists the registered nodes with
// their state, version, sessions and the leases each holds, and the
// leases; --json gives the same as data.
func TestClusterStatus(t *testing.T) {
	data := initData(t)
	if out, _, code := run(t, data, "cluster", "status"); code != ExitOK || !strings.Contains(out, "no node registered") {
		t.Fatalf("cluster status of a new database: exit %d:\n%s", code, out)
	}
	st, err := store.Open(t.Context(), store.Options{DataDir: data, Mode: store.ReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, n := range []cluster.Node{
		{ID: "node-alive", Addresses: []string{"phones 127.0.0.1:3804", "admin https://127.0.0.1:8443"}, Version: "v9.9.9",
			Started: now.Add(-time.Hour), LastSeen: now.Add(-5 * time.Second), Expires: now.Add(25 * time.Second), Sessions: 4},
		{ID: "node-dead", Version: "v9.9.8", Started: now.Add(-2 * time.Hour), LastSeen: now.Add(-time.Minute), Expires: now.Add(-30 * time.Second)},
	} {
		if err := st.RegisterNode(t.Context(), n); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []struct {
		name, holder string
		at           time.Time
	}{{"sweeper", "node-alive", now}, {"trust-file", "node-dead", now.Add(-time.Minute)}} {
		if _, ok, err := st.AcquireLease(t.Context(), l.name, l.holder, l.at, 30*time.Second); err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", l.name, ok, err)
		}
	}
	st.Close()

	out, errOut, code := run(t, data, "cluster", "status")
	if code != ExitOK {
		t.Fatalf("cluster status: exit %d: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^NODE +STATE +VERSION +STARTED +LAST SEEN +SESSIONS +LEASES +ADDRESSES$`,
		`(?m)^node-alive +alive +v9\.9\.9 +\S+ +5s ago +4 +sweeper +phones 127\.0\.0\.1:3804; admin https://127\.0\.0\.1:8443$`,
		`(?m)^node-dead +dead +v9\.9\.8 +\S+ +1m0s ago +0 +- +-$`,
		`(?m)^sweeper +node-alive +1 +\S+$`,
		`(?m)^trust-file +\(free\) +1 +\S+$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("cluster status does not match %s:\n%s", re, out)
		}
	}

	out, errOut, code = run(t, data, "cluster", "status", "--json")
	if code != ExitOK {
		t.Fatalf("cluster status --json: exit %d: %s", code, errOut)
	}
	var got clusterStatusJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("cluster status --json: %v\n%s", err, out)
	}
	if len(got.Nodes) != 2 || got.Nodes[0].ID != "node-alive" || !got.Nodes[0].Alive || got.Nodes[0].Sessions != 4 ||
		len(got.Nodes[0].Leases) != 1 || got.Nodes[0].Leases[0] != "sweeper" || len(got.Nodes[0].Addresses) != 2 ||
		got.Nodes[1].Alive || len(got.Nodes[1].Leases) != 0 {
		t.Errorf("nodes = %+v", got.Nodes)
	}
	if len(got.Leases) != 2 || !got.Leases[0].Held || got.Leases[0].Holder != "node-alive" || got.Leases[1].Held {
		t.Errorf("leases = %+v", got.Leases)
	}
}

func TestLeaseTerm(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	for _, c := range []struct {
		flag    time.Duration
		env     string
		want    time.Duration
		wantErr string
	}{
		{0, "", 30 * time.Second, ""},
		{0, "3s", 3 * time.Second, ""},
		{5 * time.Second, "3s", 5 * time.Second, ""},
		{0, "soon", 0, "not a duration"},
		{0, "100ms", 0, "want between"},
		{time.Hour, "", 0, "want between"},
	} {
		got, err := leaseTerm(c.flag, env(c.env))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("leaseTerm(%v, %q) = %v, %v; want error %q", c.flag, c.env, got, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("leaseTerm(%v, %q) = %v, %v; want %v", c.flag, c.env, got, err, c.want)
		}
	}
}
