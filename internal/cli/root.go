package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/store"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1 // an operation failed (internal error, unavailable)
	ExitUsage    = 2 // bad flags or arguments, invalid input
	ExitNotFound = 3 // the named thing does not exist
	ExitConflict = 4 // the thing exists already
)

// exitCodes maps each error kind to the exit code it gives: the one place
// the CLI classifies errors. A kind missing here exits ExitFailure.
var exitCodes = map[fault.Kind]int{
	fault.Internal:     ExitFailure,
	fault.Invalid:      ExitUsage,
	fault.NotFound:     ExitNotFound,
	fault.Conflict:     ExitConflict,
	fault.Unauthorized: ExitFailure,
	fault.Unavailable:  ExitFailure,
	fault.Forbidden:    ExitFailure,
	fault.Throttled:    ExitFailure,
}

// globals holds the flags every subcommand shares.
type globals struct {
	dataDir string
	db      string // --db: a postgres:// URL, or "" for the data directory's SQLite database
	dbFrom  string // where db was named: --db, CAPF_DB or capf.json (db.go)
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	remote  remoteFlags // --server, --token, --server-ca (remote.go)
	// kekFile is --kek-file: the cluster's key-encryption key, which puts
	// the node's keys in the PostgreSQL database (clusterkeys.go).
	kekFile string
	// cluster holds the keys loaded from the database, once loaded.
	cluster *clusterKeys
	// p11 opens the CA keys kept in a PKCS #11 token (--pkcs11-module,
	// --pin-file); tokenKeys are those opened, closed by closeTokenKeys.
	p11       keyref.Options
	tokenKeys *tokenKeys
}

// Run executes the capf command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunWithInput(ctx, args, os.Stdin, stdout, stderr)
}

// RunWithInput is Run with stdin as the commands' standard input (read by
// --password-stdin).
func RunWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, tokenKeys: &tokenKeys{}}
	// A command other than serve may open a token CA's key too (ca issuer
	// create signs with the active CA's): its token session ends with the
	// command, not with the process, which for a test is every test's.
	defer g.tokenKeys.closeAll()
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
	root.PersistentFlags().StringVar(&g.db, "db", "",
		"database: a postgres:// URL (default: env "+store.EnvDB+", else the \"database\" setting of the data directory's capf.json, else the data directory's SQLite database capf.db)")
	root.PersistentFlags().StringVar(&g.kekFile, "kek-file", os.Getenv(kek.EnvFile),
		"key-encryption key file (64 hex digits, mode 0600) of a cluster whose keys are in the PostgreSQL --db (env "+kek.EnvFile+")")
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetArgs(args)
	for _, add := range subcommands {
		root.AddCommand(add(g))
	}
	g.registerRemoteFlags(root)
	remote := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := remote(cmd, args); err != nil {
			return err
		}
		return g.chooseDB(cmd)
	}
	markRunErrors(root)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	printError(stderr, err)
	return exitCode(err)
}

// EnvErrorChain names the environment variable that, set to 1, makes the
// CLI log the chain of context around a refused command's rule on stderr
// (the server logs it for a remote command).
const EnvErrorChain = "CAPF_ERROR_CHAIN"

// printError is the CLI's one error message: a refusal of a known kind
// (invalid, not found, conflict, …) says its rule once (fault.Message),
// without the context the layers wrapped around it, which is logged only
// with CAPF_ERROR_CHAIN=1; any other error (a usage mistake, an internal
// failure) says its whole text, the CLI having no other log to keep it.
func printError(stderr io.Writer, err error) {
	var own interface{ ExitCode() int }
	if fault.KindOf(err) == fault.Internal || errors.As(err, &own) {
		fmt.Fprintf(stderr, "capf: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "capf: %s\n", fault.Message(err))
	if fault.Chained(err) && os.Getenv(EnvErrorChain) == "1" {
		slog.New(slog.NewTextHandler(stderr, nil)).Info("capf: command refused", "err", err.Error())
	}
}

// subcommands lists the constructors of the top-level commands; each
// subcommand file adds its own in an init function.
var subcommands []func(*globals) *cobra.Command

// usagef returns an Invalid error: a command-line mistake (exit code 2).
func usagef(format string, args ...any) error {
	return fault.Invalidf(format, args...)
}

// runError marks an error returned by a command's own RunE. Every other
// error Execute returns comes from cobra parsing the command line (unknown
// command or flag, bad flag value, wrong number of arguments), which is a
// usage error whatever its text.
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// markRunErrors wraps the RunE of cmd and its descendants so that their
// errors are told apart from cobra's, and gives every command group (a
// command with subcommands and nothing to run) a RunE that refuses an
// unknown subcommand instead of printing help and exiting 0.
func markRunErrors(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		markRunErrors(c)
	}
	if cmd.HasParent() && cmd.Run == nil && cmd.RunE == nil && cmd.HasSubCommands() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q (see %s --help)", args[0], c.CommandPath(), c.CommandPath())
			}
			return c.Help()
		}
	}
	if cmd.RunE == nil {
		return
	}
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := run(c, args); err != nil {
			return runError{err}
		}
		return nil
	}
}

// exitCode maps an error from Execute to the process exit code.
func exitCode(err error) int {
	var own interface{ ExitCode() int }
	if errors.As(err, &own) {
		return own.ExitCode()
	}
	if !errors.As(err, new(runError)) {
		return ExitUsage
	}
	if code, ok := exitCodes[fault.KindOf(err)]; ok {
		return code
	}
	return ExitFailure
}
