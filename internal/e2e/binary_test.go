package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string // removed by TestMain
	binPath   string
	buildErr  error
)

// capfBinary builds cmd/capf once per test run.
func capfBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "capf-bin")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "capf")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/capf-server/capf/cmd/capf").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build capf: %v", buildErr)
	}
	return binPath
}

// binServer is the real binary's `capf serve` running as a child process
// over a data directory given by CAPF_DATA.
type binServer struct {
	cmd    *exec.Cmd
	env    []string // the environment of the server and of its capf commands
	stderr *syncBuffer
	addr   string // the phone listener's address, as it reported
	admin  string // the admin listener's host:port; "" when started without it
}

// startBinary runs bin's serve over data on ports it picks itself, with
// or without the admin listener, and waits until it reports where it
// listens.
func startBinary(t *testing.T, bin, data string, withAdmin bool) *binServer {
	t.Helper()
	return startBinaryEnv(t, bin, data, withAdmin)
}

// startBinaryEnv is startBinary with more environment variables (e.g.
// CAPF_DB) for the server and its capf commands.
func startBinaryEnv(t *testing.T, bin, data string, withAdmin bool, env ...string) *binServer {
	t.Helper()
	b := &binServer{env: append(append(os.Environ(), "CAPF_DATA="+data), env...), stderr: &syncBuffer{}}
	adminAddr := ""
	if withAdmin {
		adminAddr = "127.0.0.1:0"
	}
	b.cmd = exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--admin-listen", adminAddr)
	b.cmd.Env = b.env
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.cmd.Process.Kill(); _ = b.cmd.Wait() })
	type addrs struct{ phones, admin string }
	addrc := make(chan addrs, 1)
	go func() {
		phonesRE := regexp.MustCompile(`listening \(phones\): (\S+)`)
		adminRE := regexp.MustCompile(`admin: +https://(\S+)/`)
		var a addrs
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := phonesRE.FindStringSubmatch(sc.Text()); m != nil {
				a.phones = m[1]
			}
			if m := adminRE.FindStringSubmatch(sc.Text()); m != nil {
				a.admin = m[1]
			}
			if a.phones != "" && (a.admin != "" || !withAdmin) {
				addrc <- a
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addrc:
		b.addr, b.admin = a.phones, a.admin
	case <-time.After(30 * time.Second):
		t.Fatalf("capf serve did not start: %s", b.stderr.String())
	}
	return b
}

// run runs a capf command of the binary against the server's data
// directory and returns its combined output.
func (b *binServer) run(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = b.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestBinary runs the real binary as an administrator would: serve with the
// data directory from CAPF_DATA, enrol a phone with `capf phone`, then
// SIGTERM, which must drain and exit 0.
func TestBinary(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	b := startBinary(t, bin, data, true)
	srv, stderr, addr := b.cmd, b.stderr, b.addr

	run := func(args ...string) string {
		t.Helper()
		out, err := b.run(bin, args...)
		if err != nil {
			t.Fatalf("capf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	name := newPhoneName()
	run("device", "add", name, "--auth-mode", "string", "--auth-string", "80442", "--operation", "install", "--key", "rsa2048")
	out := run("phone", "--server", addr, "--ca", filepath.Join(data, "ca", "capf.pem"), name, "--auth-string", "80442", "--json")
	var res struct {
		EndReason *uint8 `json:"end_reason"`
		Installed *struct {
			Serial string `json:"serial"`
		} `json:"installed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.EndReason == nil || *res.EndReason != 1 || res.Installed == nil {
		t.Fatalf("capf phone: %s (%v)", out, err)
	}
	if show := run("device", "show", name); !strings.Contains(show, "Upgrade Success") || !strings.Contains(show, "By Authentication String") {
		t.Fatalf("device show:\n%s", show)
	}
	if ca := run("ca", "show"); !regexp.MustCompile(`Hash name:\s+[0-9a-f]{8}\.0`).MatchString(ca) {
		t.Fatalf("ca show:\n%s", ca)
	}
	// The phone kept its LSC in its flash under the data directory.
	if _, err := os.Stat(filepath.Join(data, "phones", name, "lsc.pem")); err != nil {
		t.Errorf("phone state: %v", err)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("capf serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("capf serve did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "msg=stopped") {
		t.Errorf("no clean stop logged:\n%s", stderr.String())
	}
}
