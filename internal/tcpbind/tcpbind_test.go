package tcpbind

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestBindThenListen: a bound socket holds its port (a second bind and a
// net.Listen fail) while a client's connect is refused; after Listen the
// client connects and is accepted.
func TestBindThenListen(t *testing.T) {
	tests := []struct{ name, addr, dial string }{
		{name: "ipv4", addr: "127.0.0.1:0", dial: "127.0.0.1"},
		{name: "wildcard", addr: ":0", dial: "127.0.0.1"},
		{name: "hostname", addr: "localhost:0", dial: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, port := bindFreePort(t, tt.addr, tt.dial)
			host, _, _ := net.SplitHostPort(tt.addr)
			addr := net.JoinHostPort(host, port)
			target := net.JoinHostPort(tt.dial, port)
			defer s.Close()
			if _, err := net.DialTimeout("tcp", target, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial before Listen: %v, want connection refused", err)
			}
			if _, err := Bind(context.Background(), addr); !errors.Is(err, syscall.EADDRINUSE) {
				t.Fatalf("second Bind: %v, want address in use", err)
			}
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				t.Fatal("net.Listen on a bound port succeeded")
			}
			ln, err := s.Listen()
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := s.Close(); err != nil {
				t.Fatalf("Close after Listen: %v", err)
			}
			c, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				t.Fatalf("dial after Listen: %v", err)
			}
			defer c.Close()
			a, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			if _, err := s.Listen(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Listen: %v", err)
			}
		})
	}
}

// bindFreePort binds addr's host on a port that was free a moment ago
// (found by a listener on dial's address, closed at once), trying another
// when something else took it in between (on the wildcard, any address of
// the machine counts: another test's connection can hold the port).
func bindFreePort(t *testing.T, addr, dial string) (*Socket, string) {
	t.Helper()
	host, _, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		probe, err := net.Listen("tcp", dial+":0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(probe.Addr().String())
		probe.Close()
		s, err := Bind(context.Background(), net.JoinHostPort(host, port))
		if errors.Is(err, syscall.EADDRINUSE) && try < 10 {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return s, port
	}
}

// TestCloseFreesPort: a socket closed without listening gives its port
// back.
func TestCloseFreesPort(t *testing.T) {
	s, err := Bind(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s2, err := Bind(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not freed by Close: %v", err)
	}
	ln.Close()
}

// TestRebindOverTimeWait: a restart binds and listens on the port while a
// connection the previous run closed first is in TIME_WAIT.
func TestRebindOverTimeWait(t *testing.T) {
	s, err := Bind(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	a.Close() // the server closes first: its side goes to TIME_WAIT
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Read(make([]byte, 1))
	c.Close()
	ln.Close()
	s2, err := Bind(context.Background(), addr)
	if err != nil {
		t.Fatalf("bind over TIME_WAIT: %v", err)
	}
	ln2, err := s2.Listen()
	if err != nil {
		t.Fatalf("listen over TIME_WAIT: %v", err)
	}
	ln2.Close()
}
