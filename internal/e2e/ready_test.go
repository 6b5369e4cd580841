package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitConnect dials addr every millisecond until it connects (30 s at
// most), as a process manager or a script waiting for the port does.
func waitConnect(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted: %v", addr, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReadyWhenListening starts the real binary on a fresh data directory
// and waits for each port as a script would: the moment the phone port
// connects, `capf ca export` finds the CAPF certificate, and the moment
// the admin port connects, the first administrator's account and initial
// password exist. Before, both ports accepted while the first start was
// still creating them.
func TestReadyWhenListening(t *testing.T) {
	bin := capfBinary(t)
	for _, port := range []string{"phones", "admin"} {
		t.Run(port, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data") // created by serve
			env := append(os.Environ(), "CAPF_DATA="+data)
			phones, admin := freePort(t), freePort(t)
			srv := exec.Command(bin, "serve", "--listen", phones, "--admin-listen", admin)
			srv.Env = env
			var out syncBuffer
			srv.Stdout, srv.Stderr = &out, &out
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = srv.Process.Signal(syscall.SIGTERM)
				_ = srv.Wait()
				if t.Failed() {
					t.Logf("serve:\n%s", out.String())
				}
			})
			capf := func(args ...string) (string, error) {
				cmd := exec.Command(bin, args...)
				cmd.Env = env
				b, err := cmd.CombinedOutput()
				return string(b), err
			}
			switch port {
			case "phones":
				waitConnect(t, phones)
				// At once (a capf command takes a while to start), then as
				// an administrator would.
				if _, err := os.Stat(filepath.Join(data, "ca", "capf.pem")); err != nil {
					t.Fatalf("CAPF certificate as the phone port accepts: %v", err)
				}
				pem, err := capf("ca", "export")
				if err != nil || !strings.Contains(pem, "BEGIN CERTIFICATE") {
					t.Fatalf("capf ca export as the phone port accepts: %v\n%s", err, pem)
				}
			case "admin":
				waitConnect(t, admin)
				if _, err := os.Stat(filepath.Join(data, "admin-initial-password")); err != nil {
					t.Fatalf("initial password as the admin port accepts: %v", err)
				}
				list, err := capf("admin", "list")
				if err != nil || !strings.Contains(list, "admin") {
					t.Fatalf("capf admin list as the admin port accepts: %v\n%s", err, list)
				}
			}
		})
	}
}

// TestSystemdNotify runs the real binary as a Type=notify unit would, the
// test acting as systemd on a unix datagram socket: READY=1 arrives when
// both the phone and the admin port accept, STOPPING=1 when SIGTERM starts
// the drain, and serve then exits 0.
func TestSystemdNotify(t *testing.T) {
	bin := capfBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	next := func() string {
		t.Helper()
		_ = mgr.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 4096)
		n, err := mgr.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}
	phones, admin := freePort(t), freePort(t)
	srv := exec.Command(bin, "serve", "--listen", phones, "--admin-listen", admin)
	srv.Env = append(os.Environ(), "CAPF_DATA="+filepath.Join(dir, "data"), "NOTIFY_SOCKET="+sock)
	var out syncBuffer
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("serve:\n%s", out.String())
		}
	})
	msg := next()
	if !strings.Contains("\n"+msg+"\n", "\nREADY=1\n") {
		t.Fatalf("first notification %q, want READY=1", msg)
	}
	for _, addr := range []string{phones, admin} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("READY=1 sent while %s does not accept: %v", addr, err)
		}
		c.Close()
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if msg := next(); !strings.Contains("\n"+msg+"\n", "\nSTOPPING=1\n") {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", msg)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after SIGTERM")
	}
}
