package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store"
)

// serverLog is the spawned server's standard error, in its data directory.
const serverLog = "server.log"

// startTimeout bounds the wait for a started server's listening line.
const startTimeout = time.Minute

// stopTimeout bounds the wait for a spawned server to exit after SIGTERM
// before it is killed. The server drains for up to 30 s by default.
const stopTimeout = 45 * time.Second

// listenRE finds the phone address in the server's start-up banner.
var listenRE = regexp.MustCompile(`listening \(phones\): (\S+)`)

// server is the server under test.
type server struct {
	mode    string
	addr    string
	dataDir string
	pid     int    // of a spawned server; 0 otherwise
	logPath string // a spawned server's standard error

	cpuStart, cpuEnd time.Duration // a spawned server's CPU time; -1 when unreadable
	succeeded        int           // timed phones that ended their session here with success
	stop             func() error
}

// serverParams returns the capf.json a started server gets: the CAPF key,
// a key generation time long enough for the waiting phones, no admission
// limits (when this build knows them), then o.ServerParams over these.
func serverParams(o Options) map[string]any {
	keyTime := max(30*time.Minute, o.WaitingDelay+5*time.Minute)
	if o.Waiting == 0 {
		keyTime = 30 * time.Minute
	}
	p := map[string]any{
		"capf_key":                o.CAPFKey,
		"key_generation_max_time": min(keyTime, 24*time.Hour).String(),
	}
	known := knownParams()
	for _, k := range []string{"max_concurrent_operations", "max_connections_per_address"} {
		if known[k] {
			p[k] = 0
		}
	}
	maps.Copy(p, o.ServerParams)
	return p
}

// knownParams returns the capf.json keys this build's server accepts (the
// loader refuses unknown keys).
func knownParams() map[string]bool {
	b, err := json.Marshal(config.Defaults())
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	known := make(map[string]bool, len(m))
	for k := range m {
		known[k] = true
	}
	return known
}

// writeParams writes params to dir/capf.json.
func writeParams(dir string, params map[string]any) error {
	b, err := json.MarshalIndent(params, "", "  ")
	if err != nil {
		return fmt.Errorf("service parameters: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, config.FileName), append(b, '\n'), 0o600)
}

// provision adds (or updates) the devices of the run in the database db
// (a postgres:// URL, or "" for the SQLite database of dataDir):
// null-string authentication, the operation and key of the run.
func provision(ctx context.Context, dataDir, db string, o Options) error {
	st, err := store.Open(ctx, store.Options{DB: db, DataDir: dataDir, Mode: store.Create})
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	defer st.Close()
	svc := device.NewService(device.ServiceOptions{Store: st})
	n := o.Phones + o.Waiting
	rows := make([]device.ImportRow, n)
	for i := range n {
		rows[i] = device.ImportRow{
			Line: i + 1,
			Device: device.Device{
				Name:      deviceName(o.NamePrefix, o.Offset+uint64(i)),
				AuthMode:  device.AuthNull,
				Operation: device.Operation(o.Operation),
				Key:       device.KeySpec(o.PhoneKey),
			},
			Given: device.Given{AuthMode: true, Operation: true, Key: true},
		}
	}
	if _, err := svc.Import(ctx, device.Actor{Kind: device.ActorSystem, Name: "bench"}, rows); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	return st.Close()
}

// spawn starts exe serve on dir and the database db (a postgres:// URL, or
// "" for the SQLite database of dir) as a child process listening for
// phones on listen, with the cluster's KEK file when kekFile is set, its
// standard error going to dir/server.log, and waits for its listening
// line. With profile set, the server writes its CPU profile there.
func spawn(ctx context.Context, exe, dir, db, listen, kekFile, profile string) (*server, error) {
	// --db always, so that a CAPF_DB of this environment never points the
	// child elsewhere than the run's database.
	args := []string{"serve", "--data", dir, "--db", db, "--listen", listen, "--admin-listen", ""}
	if kekFile != "" {
		args = append(args, "--kek-file", kekFile)
	}
	if profile != "" {
		args = append(args, "--cpu-profile", profile)
	}
	return spawnCmd(ctx, exe, dir, args)
}

// spawnCmd starts exe with args as a child process, its standard error
// going to dir/server.log, and waits for the phone address it prints on
// its standard output ("listening (phones): ADDR").
func spawnCmd(ctx context.Context, exe, dir string, args []string) (*server, error) {
	logPath := filepath.Join(dir, serverLog)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(exe, args...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	s := &server{mode: ModeSpawned, dataDir: dir, pid: cmd.Process.Pid, logPath: logPath}
	s.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			exited <- err
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
		}
		err := <-exited
		exited <- err
		if err != nil {
			return fmt.Errorf("server exit: %w", err)
		}
		return nil
	}
	fail := func(err error) (*server, error) {
		_ = s.stop()
		tail, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%w\n%s", err, lastLines(tail, 20))
	}
	select {
	case s.addr = <-addrc:
		return s, nil
	case err := <-exited:
		exited <- err
		return fail(fmt.Errorf("server exited before listening: %v", err))
	case <-time.After(startTimeout):
		return fail(fmt.Errorf("server did not start listening within %s", startTimeout))
	case <-ctx.Done():
		return fail(context.Cause(ctx))
	}
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// warnings counts the WARN and ERROR lines of the spawned server's log and
// returns the first max of them, shortened.
func (s *server) warnings(limit int) (int, []string) {
	if s.logPath == "" {
		return 0, nil
	}
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return 0, nil
	}
	n := 0
	var first []string
	for line := range bytes.Lines(b) {
		if !bytes.Contains(line, []byte("level=WARN")) && !bytes.Contains(line, []byte("level=ERROR")) {
			continue
		}
		n++
		if len(first) < limit {
			l := strings.TrimSpace(string(line))
			if len(l) > 400 {
				l = l[:400] + "…"
			}
			first = append(first, l)
		}
	}
	return n, first
}
