package cli

import (
	"bytes"
	"context"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{name: "release", bi: &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Path: "github.com/capf-server/capf", Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			want: "capf v1.4.0\n  revision: 0123abcd\n  time:     2026-12-01T10:00:00Z\n  go:       go1.25.1 linux/amd64\n"},
		{name: "modified-tree", bi: &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}},
			want: "capf (devel)\n  revision: 0123abcd (modified)\n  go:       go1.25.1 linux/amd64\n"},
		{name: "no-vcs", bi: &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Version: "(devel)"}},
			want: "capf (devel)\n  go:       go1.25.1 linux/amd64\n"},
		{name: "no-build-info", bi: nil,
			want: "capf unknown\n  go:       go1.99 linux/amd64\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionText(tt.bi, "go1.99", "linux/amd64"); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestVersionCommand: `capf version` needs no data directory and prints
// the Go version the binary was built with.
func TestVersionCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"--data", t.TempDir() + "/none", "version"}, &out, &errOut); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "capf ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Fatalf("capf version:\n%s", out.String())
	}
}
