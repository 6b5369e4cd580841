package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newVersionCmd) }

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the build's version: module version, source revision and time, Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			bi, ok := debug.ReadBuildInfo()
			if !ok {
				bi = nil
			}
			fmt.Fprint(g.stdout, versionText(bi, runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH))
			return nil
		},
	}
}

// versionText describes a build: the main module's version ("(devel)" for
// a build from a source tree), the VCS revision, its time and whether the
// tree had changes, when the build recorded them, and the Go version and
// platform. bi may be nil (a binary without build information).
func versionText(bi *debug.BuildInfo, goVersion, platform string) string {
	var b strings.Builder
	version := "unknown"
	settings := map[string]string{}
	if bi != nil {
		if v := bi.Main.Version; v != "" {
			version = v
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	fmt.Fprintf(&b, "capf %s\n", version)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += " (modified)"
		}
		fmt.Fprintf(&b, "  revision: %s\n", rev)
	}
	if t := settings["vcs.time"]; t != "" {
		fmt.Fprintf(&b, "  time:     %s\n", t)
	}
	fmt.Fprintf(&b, "  go:       %s %s\n", goVersion, platform)
	return b.String()
}
