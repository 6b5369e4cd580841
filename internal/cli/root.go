package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/fault"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1 // an operation failed (internal error, unavailable)
	ExitUsage    = 2 // bad flags or arguments, invalid input
	ExitNotFound = 3 // the named thing does not exist
	ExitConflict = 4 // the thing exists already
)

// globals holds the flags every subcommand shares.
type globals struct {
	dataDir string
	stdout  io.Writer
	stderr  io.Writer
}

// Run executes the capf command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "capf",
		Short:         "Certificate Authority Proxy Function for Cisco IP phones",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defData := os.Getenv("CAPF_DATA")
	if defData == "" {
		defData = "./capf-data"
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data", defData, "data directory (env CAPF_DATA)")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	for _, add := range subcommands {
		root.AddCommand(add(g))
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "capf: %v\n", err)
	return exitCode(err)
}

// subcommands lists the constructors of the top-level commands; each
// subcommand file adds its own in an init function.
var subcommands []func(*globals) *cobra.Command

// usageError marks a command-line mistake (exit code 2).
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var own interface{ ExitCode() int }
	if errors.As(err, &own) {
		return own.ExitCode()
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	switch fault.KindOf(err) {
	case fault.Invalid:
		return ExitUsage
	case fault.NotFound:
		return ExitNotFound
	case fault.Conflict:
		return ExitConflict
	}
	if isFlagError(err) {
		return ExitUsage
	}
	return ExitFailure
}

// isFlagError recognizes cobra's flag and argument errors, which it returns
// as plain errors.
func isFlagError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "unknown command", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
