package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// manager listens where $NOTIFY_SOCKET will point, as systemd does, and
// returns the next datagram.
func manager(t *testing.T, name string) func() string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() string {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 4096)
		n, err := c.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name   string
		socket func(t *testing.T) string
	}{
		{name: "path", socket: func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{name: "abstract", socket: func(t *testing.T) string {
			return fmt.Sprintf("@capf-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := tt.socket(t)
			next := manager(t, sock)
			n := New(func(k string) string {
				if k == "NOTIFY_SOCKET" {
					return sock
				}
				return ""
			})
			if err := n.Notify(Ready, "STATUS=serving"); err != nil {
				t.Fatal(err)
			}
			if got := next(); got != "READY=1\nSTATUS=serving" {
				t.Fatalf("got %q", got)
			}
			if err := n.Notify(Stopping); err != nil {
				t.Fatal(err)
			}
			if got := next(); got != "STOPPING=1" {
				t.Fatalf("got %q", got)
			}
			if sock[0] == '@' {
				if _, err := os.Stat(sock); err == nil {
					t.Fatalf("an abstract socket made a file %s", sock)
				}
			}
		})
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	n := New(func(string) string { return "" })
	if n != nil {
		t.Fatalf("New without NOTIFY_SOCKET = %+v, want nil", n)
	}
	if err := n.Notify(Ready); err != nil {
		t.Fatalf("nil Notifier: %v", err)
	}
}

func TestNotifyErrors(t *testing.T) {
	tests := []struct{ name, socket string }{
		{name: "relative-path", socket: "notify.sock"},
		{name: "nobody-listens", socket: filepath.Join(t.TempDir(), "gone")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := New(func(string) string { return tt.socket })
			if err := n.Notify(Ready); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
