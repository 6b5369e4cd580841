package e2e

import (
	"bufio"
	"encoding/json"
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

// TestBinary runs the real binary as an administrator would: serve with the
// data directory from CAPF_DATA, enrol a phone with `capf phone`, then
// SIGTERM, which must drain and exit 0.
func TestBinary(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	env := append(os.Environ(), "CAPF_DATA="+data)
	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	srv.Env = env
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening \(phones\): (\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatalf("capf serve did not start: %s", stderr.String())
	}

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("capf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
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
