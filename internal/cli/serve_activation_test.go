package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/system"
)

// echoServe serves a listener until it is closed, answering each
// connection with "hi".
func echoServe(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			_, _ = io.WriteString(c, "hi")
		}()
	}
}

// refused reports whether a connection to addr is refused.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// answers reports whether addr accepts and answers.
func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(c)
	return string(b) == "hi"
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPhoneGate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var logBuf lockedBuf
	gate := newPhoneGate("127.0.0.1:0", echoServe, slog.New(slog.NewTextHandler(&logBuf, nil)))
	gate.start(ln)
	defer gate.close()
	if !answers(addr) {
		t.Fatal("the gate does not serve its first listener")
	}
	var active atomic.Bool
	active.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		gate.watch(ctx, 10*time.Millisecond, func(context.Context) (bool, error) { return active.Load(), nil })
	}()

	// An open connection outlives the deactivation.
	open, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	active.Store(false)
	eventually(t, "connections refused after deactivation", func() bool { return refused(addr) })
	if gate.listening() {
		t.Fatal("the gate says it listens while deactivated")
	}
	if b, err := io.ReadAll(open); err != nil || string(b) != "hi" {
		t.Fatalf("the open connection read %q, %v; want it served to its end", b, err)
	}
	active.Store(true)
	eventually(t, "the same address answers after activation", func() bool { return answers(addr) })
	for _, want := range []string{"service deactivated", "service activated"} {
		if !strings.Contains(logBuf.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logBuf.String())
		}
	}
	cancel()
	<-watched
}

func TestPhoneGatePortTakenRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var logBuf lockedBuf
	gate := newPhoneGate(addr, echoServe, slog.New(slog.NewTextHandler(&logBuf, nil)))
	gate.start(ln)
	defer gate.close()
	gate.set(t.Context(), false)
	// Someone else takes the port meanwhile: activation fails, is logged
	// once, and succeeds once the port is free again.
	squatter, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gate.set(t.Context(), true)
	gate.set(t.Context(), true)
	if gate.listening() {
		t.Fatal("the gate listens on a taken port")
	}
	if n := strings.Count(logBuf.String(), "does not open"); n != 1 {
		t.Fatalf("the failed reopen was logged %d times, want once:\n%s", n, logBuf.String())
	}
	squatter.Close()
	gate.set(t.Context(), true)
	if !gate.listening() || !answers(addr) {
		t.Fatal("the gate did not reopen once the port was free")
	}
}

func TestServiceCommands(t *testing.T) {
	data := initData(t)
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     string
	}{
		{"status-default", []string{"service", "status"}, ExitOK, "CAPF service: active"},
		{"deactivate", []string{"service", "deactivate"}, ExitOK, "CAPF service: inactive"},
		{"status-inactive", []string{"service", "status"}, ExitOK, "changed:"},
		{"deactivate-again", []string{"service", "deactivate"}, ExitOK, "inactive"},
		{"activate", []string{"service", "activate"}, ExitOK, "CAPF service: active"},
		{"audit", []string{"audit"}, ExitOK, "service.activate"},
		{"unknown-arg", []string{"service", "status", "now"}, ExitUsage, "unknown command"},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
	out, _, code := run(t, data, "service", "status", "--json")
	var a system.Activation
	if err := json.Unmarshal([]byte(out), &a); code != ExitOK || err != nil || !a.Active || !strings.HasPrefix(a.ChangedBy, "cli:") || a.ChangedAt == "" {
		t.Fatalf("status --json: exit %d, %v: %s", code, err, out)
	}
	out, _, _ = run(t, data, "audit", "--json")
	if n := strings.Count(out, `"service.deactivate"`); n != 1 {
		t.Fatalf("%d service.deactivate events, want 1 (deactivating twice changes once):\n%s", n, out)
	}
}

func TestServiceCommandNeedsData(t *testing.T) {
	_, errOut, code := run(t, filepath.Join(t.TempDir(), "nope"), "service", "status")
	if code != ExitNotFound || !strings.Contains(errOut, "no CAPF data") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

// startServe runs serve in-process with args and returns its stdout and a
// stop function that returns the exit code.
func startServe(t *testing.T, data string, args ...string) (*lockedBuf, func() int) {
	t.Helper()
	out, _, stop := startServeLogs(t, data, args...)
	return out, stop
}

// startServeLogs is startServe that also returns serve's log (stderr).
func startServeLogs(t *testing.T, data string, args ...string) (*lockedBuf, *lockedBuf, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuf
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"--data", data, "serve", "--drain", "1s"}, args...), &out, &errOut)
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "maintenance windows") {
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d:\n%s%s", code, out.String(), errOut.String())
		case <-deadline:
			cancel()
			t.Fatalf("serve did not start:\n%s%s", out.String(), errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	var stopped atomic.Bool
	stop := func() int {
		if !stopped.CompareAndSwap(false, true) {
			return ExitOK
		}
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return &out, &errOut, stop
}

func TestServeFollowsActivation(t *testing.T) {
	data := initData(t)
	out, stop := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", out.String())
	}
	addr := m[1]
	if refused(addr) {
		t.Fatal("the phone port refuses while active")
	}
	if _, errOut, code := run(t, data, "service", "deactivate"); code != ExitOK {
		t.Fatalf("deactivate: %d %s", code, errOut)
	}
	eventually(t, "the phone port refuses after capf service deactivate", func() bool { return refused(addr) })
	if _, errOut, code := run(t, data, "service", "activate"); code != ExitOK {
		t.Fatalf("activate: %d %s", code, errOut)
	}
	eventually(t, "the phone port accepts after capf service activate", func() bool { return !refused(addr) })
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exit %d", code)
	}
}

func TestServeDeactivatedDoesNotBindPhonePort(t *testing.T) {
	data := initData(t)
	if _, errOut, code := run(t, data, "service", "deactivate"); code != ExitOK {
		t.Fatalf("deactivate: %d %s", code, errOut)
	}
	// A port that is free now: serve must leave it so.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	out, stop := startServe(t, data, "--listen", addr, "--admin-listen", "")
	if !strings.Contains(out.String(), "not listening: the service is deactivated") || strings.Contains(out.String(), "listening (phones)") {
		t.Fatalf("the startup output does not say the phone port is closed:\n%s", out.String())
	}
	if !refused(addr) {
		t.Fatal("a deactivated serve bound the phone port")
	}
	if _, errOut, code := run(t, data, "service", "activate"); code != ExitOK {
		t.Fatalf("activate: %d %s", code, errOut)
	}
	eventually(t, "the phone port accepts after activation", func() bool { return !refused(addr) })
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exit %d", code)
	}
}

func TestServeAdminListener(t *testing.T) {
	data := initData(t)
	out, _ := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	m := regexp.MustCompile(`admin: +https://(\S+)/`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no admin address in:\n%s", out.String())
	}
	_, port, _ := net.SplitHostPort(m[1])
	caPEM, err := os.ReadFile(filepath.Join(admintls.Dir(data), admintls.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, host := range []string{"localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: host})
			if err != nil {
				t.Fatalf("TLS to the admin listener trusting ca.pem: %v", err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			b, _ := io.ReadAll(c)
			if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.HasSuffix(string(b), "ok\n") {
				t.Fatalf("GET /healthz: %q", b)
			}
		})
	}
}

func TestServeAdminFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert-without-key", []string{"--admin-cert", "x.pem"}, "--admin-cert and --admin-key go together"},
		{"cert-missing", []string{"--admin-cert", "/nonexistent/x.pem", "--admin-key", "/nonexistent/x.key"}, "admin certificate /nonexistent/x.pem"},
		{"same-port-as-phones", []string{"--listen", "127.0.0.1:3999", "--admin-listen", "127.0.0.1:3999"}, `admin_listen "127.0.0.1:3999": the CAPF protocol listens there`},
		{"same-port-as-metrics", []string{"--metrics-listen", ":9999", "--admin-listen", "127.0.0.1:9999"}, "the metrics listener is there"},
		{"bad-address", []string{"--admin-listen", "8443"}, `admin_listen "8443": want host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "capf-data")
			_, errOut, code := run(t, data, append([]string{"serve", "--listen", "127.0.0.1:0"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, want %d with %q: %s", code, ExitUsage, tt.want, errOut)
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused serve created the data directory: %v", err)
			}
		})
	}
}
