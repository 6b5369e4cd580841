package bench

import (
	"slices"
	"testing"
)

// TestCapfList: phone i lists its node (i mod n) first, then the others in
// order, so the phones start evenly over the nodes and each can reach all.
func TestCapfList(t *testing.T) {
	b := &bench{nodes: []*server{{addr: "A"}, {addr: "B"}, {addr: "C"}}}
	tests := []struct {
		phone int
		want  []string
	}{
		{0, []string{"A", "B", "C"}},
		{1, []string{"B", "C", "A"}},
		{2, []string{"C", "A", "B"}},
		{3, []string{"A", "B", "C"}},
		{11, []string{"C", "A", "B"}},
	}
	for _, tc := range tests {
		if got := b.capfList(tc.phone); !slices.Equal(got, tc.want) {
			t.Errorf("capfList(%d) = %v, want %v", tc.phone, got, tc.want)
		}
	}
	if got := nodeListen(1); got != "127.0.0.2:0" {
		t.Errorf("nodeListen(1) = %q, want 127.0.0.2:0", got)
	}
}

// TestNodeParams: the first node's capf.json carries the fleet parameters
// it imports into the cluster's database; the others' only node settings.
func TestNodeParams(t *testing.T) {
	params := map[string]any{"capf_key": "ec256", "max_concurrent_operations": 0, "key_generation_max_time": "30m0s"}
	if got := nodeParams(params, 0); len(got) != 3 {
		t.Errorf("node 1: %v, want all of %v", got, params)
	}
	got := nodeParams(params, 1)
	if _, ok := got["max_concurrent_operations"]; ok || got["capf_key"] != "ec256" {
		t.Errorf("node 2: %v, want capf_key alone (a node setting)", got)
	}
	if len(params) != 3 {
		t.Errorf("nodeParams changed its argument: %v", params)
	}
}

func TestNodeProfile(t *testing.T) {
	tests := []struct {
		profile string
		i, n    int
		want    string
	}{
		{"", 0, 1, ""},
		{"", 1, 2, ""},
		{"cpu.pprof", 0, 1, "cpu.pprof"},
		{"cpu.pprof", 0, 2, "cpu.pprof.node1"},
		{"cpu.pprof", 1, 2, "cpu.pprof.node2"},
	}
	for _, tc := range tests {
		if got := nodeProfile(tc.profile, tc.i, tc.n); got != tc.want {
			t.Errorf("nodeProfile(%q, %d, %d) = %q, want %q", tc.profile, tc.i, tc.n, got, tc.want)
		}
	}
}
