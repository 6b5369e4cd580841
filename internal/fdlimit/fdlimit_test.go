package fdlimit

import (
	"runtime"
	"testing"
)

func TestDefaultMaxConns(t *testing.T) {
	tests := []struct {
		name  string
		limit uint64
		want  int
	}{
		{name: "unknown", limit: 0, want: Unknown},
		{name: "debian-default-1024", limit: 1024, want: 1024 - 64 - 102},
		{name: "issue-machine-20000", limit: 20000, want: 20000 - 64 - 2000},
		{name: "small-256", limit: 256, want: 256 - 64 - 25},
		{name: "tiny-80-quarter-floor", limit: 80, want: 20},
		{name: "one", limit: 1, want: 1},
		{name: "huge-capped", limit: 1 << 40, want: MaxDerived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DefaultMaxConns(tt.limit)
			if got != tt.want {
				t.Errorf("DefaultMaxConns(%d) = %d, want %d", tt.limit, got, tt.want)
			}
			if tt.limit > 0 && uint64(got) > tt.limit {
				t.Errorf("cap %d above the limit %d", got, tt.limit)
			}
		})
	}
}

// TestRaise checks Raise leaves soft = hard. Lowering the limit of the
// shared test process is not done here; the e2e tests run the binary with
// a lowered limit.
func TestRaise(t *testing.T) {
	soft, hard, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if soft == 0 || soft != hard {
		t.Errorf("soft %d, hard %d after Raise", soft, hard)
	}
}
