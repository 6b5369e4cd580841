package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/bench"
	"github.com/capf-server/capf/internal/store"
)

func init() { subcommands = append(subcommands, newBenchCmd, newBenchBareServerCmd) }

// benchFlags are the flags of capf bench.
type benchFlags struct {
	o         bench.Options
	params    []string
	json      bool
	inProcess bool
	bare      bool
	quiet     bool
}

func newBenchCmd(g *globals) *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Drive many simulated phones at a CAPF server and measure it",
		Long: `Drive many simulated phones at a CAPF server and report sessions attempted,
succeeded and failed (with the first errors), enrollments per second and latency
percentiles, and, for a server it started itself, the server's CPU time per
enrollment and peak memory.

By default it starts this program's "serve" as a child process on a temporary data
directory (removed afterwards) with the CAPF key of --capf-key and no admission
limits, provisions the devices (SEP…, null-string authentication, the operation of
--operation, the key of --phone-key) and measures the child's CPU time from /proc.
--in-process runs the server inside this process instead (no CPU or memory
figures). With --db postgres://… (or $CAPF_DB) the server it starts runs on that
PostgreSQL database, in a schema created for the run and dropped afterwards
(kept with --keep); the devices are provisioned there. --bare measures the
reference instead: a bare TLS-plus-signing loop in this process (capf's TLS
configuration and CA; each phone sends a public key and gets its certificate);
--bare-capf measures the reference the same simulated phones drive: a bare CAPF
server started as a child process and measured as capf's would be (capf's TLS
configuration, the messages of an install session, capf's CA; no database,
session state, checks or logging). --nodes N (with --db) runs
"cluster init" there under a KEK file of the temporary directory and starts N serve
nodes on 127.0.0.1, 127.0.0.2, …; phone i lists node i mod N first, the others next
(its capfList), and the report gives each node's share. --server targets a running server (or several nodes, comma-separated: each phone
walks them as its capfList and the report gives each node's share): give its CAPF certificate with --ca
and its data directory with --data to provision the devices (or --no-provision
when they exist).

Phone key pairs are generated before the timed phase from a pool of --key-pool, so
the figures measure the server. --waiting N holds N more phones in key generation
(sending REQUEST_IN_PROGRESS) during the timed phase, as slow phones do.

The JSON report gives durations in milliseconds (keys ending in _ms).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, g, &f)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.o.Phones, "phones", 1000, "phones in the timed phase, one session each")
	fl.IntVar(&f.o.Concurrency, "concurrency", bench.DefaultConcurrency, "phones in session at once")
	fl.StringVar(&f.o.PhoneKey, "phone-key", bench.DefaultPhoneKey, "key the phones generate: rsa1024, rsa2048, …, ec256, ec384, ec521")
	fl.StringVar(&f.o.CAPFKey, "capf-key", bench.DefaultCAPFKey, "CAPF key of a server it starts: rsa2048 or ec256")
	fl.StringVar(&f.o.Operation, "operation", bench.DefaultOperation, "operation of the devices: install or none")
	fl.StringVar(&f.o.Server, "server", "", "address HOST:PORT of a running server, or of up to five nodes, comma-separated: every phone's capfList, phone i starting at node i mod N (default: start one)")
	fl.StringVar(&f.o.CAFile, "ca", "", "with --server: PEM file of its CAPF certificate (default <data>/ca/capf.pem)")
	fl.BoolVar(&f.o.NoProvision, "no-provision", false, "with --server: do not provision the devices, they exist")
	fl.StringVar(&f.o.NamePrefix, "name-prefix", bench.DefaultNamePrefix, "device name prefix; the rest is a hex number")
	fl.Uint64Var(&f.o.Offset, "offset", 0, "number of the first device")
	fl.IntVar(&f.o.Waiting, "waiting", 0, "phones to hold in key generation during the timed phase")
	fl.DurationVar(&f.o.WaitingDelay, "waiting-delay", bench.DefaultWaitingDelay, "how long the waiting phones take to generate their key")
	fl.DurationVar(&f.o.WaitingProgress, "waiting-progress", bench.DefaultWaitingProgress, "interval of the waiting phones' REQUEST_IN_PROGRESS")
	fl.IntVar(&f.o.KeyPool, "key-pool", bench.DefaultKeyPool, "phone key pairs generated beforehand and reused")
	fl.IntVar(&f.o.SourceAddrs, "source-addrs", 64, "spread the phones over this many loopback source addresses (loopback servers only)")
	fl.DurationVar(&f.o.Timeout, "timeout", bench.DefaultTimeout, "bound on the hold and timed phases")
	fl.DurationVar(&f.o.MessageTimeout, "message-timeout", bench.DefaultMessageTimeout, "each phone's timeout per server message")
	fl.BoolVar(&f.o.TLS13, "tls13", false, "let phones negotiate TLS 1.3 (by default they stop at TLS 1.2, as phone firmware does)")
	fl.StringArrayVar(&f.params, "param", nil, "KEY=JSON service parameter for a server it starts, e.g. max_concurrent_operations=256 (repeatable)")
	fl.IntVar(&f.o.Nodes, "nodes", 1, "serve nodes to start on the PostgreSQL --db, one cluster (at most 5)")
	fl.StringVar(&f.o.CPUProfile, "cpu-profile", "", "have the server it starts write its CPU profile to this new file (FILE.nodeN with --nodes); read it with go tool pprof")
	fl.BoolVar(&f.o.KeepDataDir, "keep", false, "keep the temporary data directory of a server it starts (database, server.log)")
	fl.BoolVar(&f.bare, "bare", false, "measure the reference instead of a CAPF server: a bare TLS-plus-signing loop in this process (capf's TLS configuration and CA, no protocol or database)")
	fl.BoolVar(&f.o.BareCAPF, "bare-capf", false, "measure the reference instead of capf, driven by the same simulated phones: a bare CAPF server as a child process (capf's TLS configuration, messages and CA; no database, session state, checks or logging)")
	fl.BoolVar(&f.inProcess, "in-process", false, "run the server in this process (no CPU or memory figures)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress lines on standard error")
	return cmd
}

func runBench(cmd *cobra.Command, g *globals, f *benchFlags) error {
	o := f.o
	// bench resolves no database from a data directory (chooseDB skips
	// it): --db, else $CAPF_DB, else SQLite.
	if cmd.Flags().Changed("db") {
		o.DB = g.db
	} else {
		o.DB = os.Getenv(store.EnvDB)
	}
	if err := store.Check(o.DB); err != nil {
		return err
	}
	if o.Server != "" {
		if f.inProcess {
			return usagef("bench: --server and --in-process exclude each other")
		}
		if cmd.Flags().Changed("data") || os.Getenv("CAPF_DATA") != "" {
			o.DataDir = g.dataDir
		}
		if o.DataDir == "" && o.DB == "" && !o.NoProvision {
			return usagef("bench: with --server, give its data directory (--data) or database (--db) to provision the devices, or --no-provision")
		}
		if o.DataDir == "" && o.CAFile == "" {
			return usagef("bench: with --server, give its CAPF certificate (--ca)")
		}
	} else if o.CAFile != "" || o.NoProvision {
		return usagef("bench: --ca and --no-provision go with --server")
	}
	if len(f.params) > 0 {
		o.ServerParams = map[string]any{}
		for _, p := range f.params {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return usagef("bench: --param %q: want KEY=VALUE", p)
			}
			var val any
			if err := json.Unmarshal([]byte(v), &val); err != nil {
				val = v // a bare string such as 90s
			}
			o.ServerParams[k] = val
		}
	}
	if f.inProcess {
		o.StartServer = startInProcess
	}
	logf := func(format string, args ...any) {
		if !f.quiet {
			fmt.Fprintf(g.stderr, "bench: "+format+"\n", args...)
		}
	}
	run := bench.Run
	if o.BareCAPF && (f.bare || f.inProcess) {
		return usagef("bench: --bare-capf spawns its own server: no --bare or --in-process")
	}
	if f.bare {
		if f.inProcess || len(f.params) > 0 {
			return usagef("bench: --bare runs its own loop: no --in-process or --param")
		}
		run = bench.RunBare
	}
	rep, err := run(cmd.Context(), o, logf)
	if rep == nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(rep); werr != nil {
			return werr
		}
	} else if werr := rep.WriteText(g.stdout); werr != nil {
		return werr
	}
	return err
}

// startInProcess runs `capf serve` on dataDir inside this process, for
// bench --in-process, and returns its phone address.
func startInProcess(ctx context.Context, dataDir, db string) (string, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		code := Run(ctx, []string{"--data", dataDir, "--db", db, "serve", "--listen", "127.0.0.1:0", "--admin-listen", ""}, pw, &stderr)
		pw.Close()
		done <- code
	}()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "listening (phones): "); ok {
				addrc <- strings.Fields(rest)[0]
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	stop := func() { cancel(); <-done }
	select {
	case addr := <-addrc:
		return addr, stop, nil
	case code := <-done:
		cancel()
		return "", nil, fmt.Errorf("capf serve exited with status %d: %s", code, strings.TrimSpace(stderr.String()))
	case <-time.After(time.Minute):
		stop()
		return "", nil, fmt.Errorf("capf serve did not start listening within a minute: %s", strings.TrimSpace(stderr.String()))
	}
}

// lockedBuffer is a strings.Builder safe for concurrent writes; it keeps
// the first 64 KiB only, as the server logs a line per session.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := 64<<10 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newBenchBareServerCmd is the hidden command that bench --bare-capf
// spawns: the bare CAPF server (bench.ServeBareCAPF), until interrupted.
func newBenchBareServerCmd(g *globals) *cobra.Command {
	var o bench.BareServerOptions
	var profile string
	cmd := &cobra.Command{
		Use:    bench.BareServerCommand,
		Short:  "The reference server of capf bench --bare-capf (for measurement only: it authenticates no one)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Dir == "" {
				return usagef("%s: --dir is required", bench.BareServerCommand)
			}
			if profile != "" {
				stop, err := startCPUProfile(profile)
				if err != nil {
					return err
				}
				defer func() {
					if err := stop(); err != nil {
						fmt.Fprintln(g.stderr, "capf "+bench.BareServerCommand+":", err)
					}
				}()
			}
			return bench.ServeBareCAPF(cmd.Context(), o, g.stdout)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Dir, "dir", "", "directory for the CAPF certificate ("+bench.BareCAFile+")")
	fl.StringVar(&o.Listen, "listen", "127.0.0.1:0", "phone address")
	fl.StringVar(&o.CAPFKey, "capf-key", bench.DefaultCAPFKey, "CAPF key: rsa2048 or ec256")
	fl.StringVar(&o.PhoneKey, "phone-key", bench.DefaultPhoneKey, "key to ask the phones for")
	fl.StringVar(&profile, "cpu-profile", "", "write the CPU profile of this run to a new FILE")
	return cmd
}
