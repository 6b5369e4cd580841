package cli

import "testing"

// TestAdminConnCap: the admin listener's cap follows the descriptor
// budget fdlimit leaves, between its bounds.
func TestAdminConnCap(t *testing.T) {
	tests := []struct {
		name  string
		limit uint64
		want  int
	}{
		{"unknown", 0, 256},
		{"small-limit", 256, 64},
		{"debian-default", 1024, 102},
		{"large", 20000, 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := adminConnCap(tt.limit); got != tt.want {
				t.Errorf("adminConnCap(%d) = %d, want %d", tt.limit, got, tt.want)
			}
		})
	}
}
