package phonesim

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

func TestParseServerList(t *testing.T) {
	cases := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "capf.example.com", want: []string{"capf.example.com:3804"}},
		{in: "10.0.0.1:3805", want: []string{"10.0.0.1:3805"}},
		{in: " a.example , b.example:1 ,c", want: []string{"a.example:3804", "b.example:1", "c:3804"}},
		{in: "::1", want: []string{"[::1]:3804"}},
		{in: "[2001:db8::1]", want: []string{"[2001:db8::1]:3804"}},
		{in: "[2001:db8::1]:65535", want: []string{"[2001:db8::1]:65535"}},
		{in: "10.0.0.1", want: []string{"10.0.0.1:3804"}},
		{in: "capf_1.corp.", want: []string{"capf_1.corp.:3804"}},
		{in: "a,b,c,d,e", want: []string{"a:3804", "b:3804", "c:3804", "d:3804", "e:3804"}},
		{in: "", wantErr: "empty"},
		{in: "  ", wantErr: "empty"},
		{in: "a,b,c,d,e,f", wantErr: "at most 5"},
		{in: "a,,b", wantErr: "entry 2: empty"},
		{in: "a,", wantErr: "entry 2: empty"},
		{in: "a:0", wantErr: "from 1 to 65535"},
		{in: "a:65536", wantErr: "from 1 to 65535"},
		{in: "a:+80", wantErr: "from 1 to 65535"},
		{in: "a:capf", wantErr: "from 1 to 65535"},
		{in: "a:", wantErr: "from 1 to 65535"},
		{in: ":3804", wantErr: "no host"},
		{in: "http://capf:3804", wantErr: "want HOST or HOST:PORT"},
		{in: "capf/x", wantErr: "not a URL"},
		{in: "capf x", wantErr: "not a valid name"},
		{in: "-capf", wantErr: "not a valid name"},
		{in: "a..b", wantErr: "not a valid name"},
		{in: "2001:db8::1:3804:x", wantErr: "want HOST or HOST:PORT"},
		{in: "[10.0.0.1]", wantErr: "not an IPv6 address"},
		{in: "a:3804,A", wantErr: "entry 2: A:3804 is entry 1 already"},
		{in: "b,10.0.0.1,10.0.0.1:3804", wantErr: "entry 3"},
		{in: strings.Repeat("a", 300), wantErr: "longer than 253"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseServerList(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("ParseServerList(%q) = %v, %v; want an error saying %q", c.in, got, err, c.wantErr)
				}
				if len(err.Error()) > 300 {
					t.Errorf("error not bounded: %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("ParseServerList(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

// deadAddr returns a loopback address where nothing listens: connecting
// is refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentAddr returns a loopback address that accepts TCP connections (the
// kernel completes them) but never answers the TLS handshake, as a hung
// server does.
func silentAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// listOptions are the options of a phone whose capfList is addrs, trusting
// the fake servers.
func listOptions(t *testing.T, name string, addrs []string, srvs ...*fakeServer) Options {
	t.Helper()
	o := srvs[0].options(t, name)
	o.Server, o.Servers = "", addrs
	o.Trust = nil
	for _, s := range srvs {
		o.Trust = append(o.Trust, s.tlsCert)
	}
	return o
}

func installScript(c *srvConn, _ int) {
	c.auth()
	c.install("SEP1", ecKeygenRequest(c))
}

// dropScript authenticates the phone, then hangs up: a server that dies in
// the session.
func dropScript(c *srvConn, _ int) {
	c.auth()
}

func TestServerListDeadFirst(t *testing.T) {
	live := newFakeServer(t, installScript)
	cases := []struct {
		name    string
		first   string
		timeout time.Duration
	}{
		{"refused", deadAddr(t), 5 * time.Second},
		{"no-answer", silentAddr(t), time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := live.sessions()
			o := listOptions(t, "SEP1", []string{c.first, live.addr()}, live)
			o.MessageTimeout = c.timeout
			o.RetryInterval = time.Minute // a retry would show as a hang
			res := run(t, o)
			if res.Installed == nil || res.EndReason != wire.ReasonSuccess {
				t.Fatalf("result %+v, want an LSC from the second server", res)
			}
			if res.Server != live.addr() || res.Failovers != 1 || live.sessions()-before != 1 {
				t.Errorf("server %s after %d failovers (live server saw %d sessions), want %s after 1, 1 session",
					res.Server, res.Failovers, live.sessions()-before, live.addr())
			}
		})
	}
}

func TestServerListDropMidSession(t *testing.T) {
	a := newFakeServer(t, dropScript)
	b := newFakeServer(t, installScript)
	o := listOptions(t, "SEP1", []string{a.addr(), b.addr()}, a, b)
	o.RetryInterval = time.Minute
	res := run(t, o)
	if res.Installed == nil || res.Server != b.addr() || res.Sessions != 2 || a.sessions() != 1 || b.sessions() != 1 {
		t.Errorf("result %+v (sessions A %d, B %d), want an LSC from B after one session on each", res, a.sessions(), b.sessions())
	}
}

// TestServerListRetryLaterStays: a server that answers RETRY_LATER is
// asked again after the delay, not the next of the list; the list starts
// over at the top only after every server failed.
func TestServerListRetryLaterStays(t *testing.T) {
	a := newFakeServer(t, dropScript)
	b := newFakeServer(t, func(c *srvConn, n int) {
		c.auth()
		if n == 0 {
			c.send(c.msg(wire.CmdRetryLater).AddUint16(wire.TagRetryDelay, 0))
			c.expectEOF()
			return
		}
		c.install("SEP1", ecKeygenRequest(c))
	})
	cc := newFakeServer(t, installScript)
	o := listOptions(t, "SEP1", []string{a.addr(), b.addr(), cc.addr()}, a, b, cc)
	res := run(t, o)
	if res.Installed == nil || res.Server != b.addr() || res.RetryLaterCount != 1 {
		t.Fatalf("result %+v, want an LSC from B after its RETRY_LATER", res)
	}
	if a.sessions() != 1 || b.sessions() != 2 || cc.sessions() != 0 {
		t.Errorf("sessions A %d, B %d, C %d; want 1, 2, 0", a.sessions(), b.sessions(), cc.sessions())
	}
}

func TestServerListAllFail(t *testing.T) {
	a := newFakeServer(t, dropScript)
	b := newFakeServer(t, dropScript)
	dead := deadAddr(t)
	o := listOptions(t, "SEP1", []string{a.addr(), dead, b.addr()}, a, b)
	o.Retries = 2
	res, err := Run(context.Background(), o)
	if !errors.Is(err, ErrCommunication) || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("Run error %v, want a communication failure after 3 passes", err)
	}
	// Three passes over the list, each from the top: A, dead, B.
	if a.sessions() != 3 || b.sessions() != 3 || res.Sessions != 6 || res.Failovers != 6 {
		t.Errorf("sessions A %d, B %d, phone %d, failovers %d; want 3, 3, 6, 6", a.sessions(), b.sessions(), res.Sessions, res.Failovers)
	}
	if res.Server != b.addr() {
		t.Errorf("last server %s, want %s", res.Server, b.addr())
	}
}

// TestServerListUntrustedEnds: a server the phone does not trust ends the
// run, as with one server; the phone does not shop for a server whose
// certificate it accepts.
func TestServerListUntrustedEnds(t *testing.T) {
	a := newFakeServer(t, installScript)
	b := newFakeServer(t, installScript)
	o := listOptions(t, "SEP1", []string{a.addr(), b.addr()}, b)
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrUntrusted) || b.sessions() != 0 {
		t.Errorf("Run error %v (B saw %d sessions), want ErrUntrusted from A and B untouched", err, b.sessions())
	}
}

func TestServerListOptionsErrors(t *testing.T) {
	trust := []*x509.Certificate{newTestCA(t, "x").cert}
	cases := []struct {
		name string
		set  func(o *Options)
		want string
	}{
		{"both", func(o *Options) { o.Server, o.Servers = "a:1", []string{"b:1"} }, "both Server and Servers"},
		{"too-many", func(o *Options) { o.Servers = []string{"a:1", "b:1", "c:1", "d:1", "e:1", "f:1"} }, "at most 5"},
		{"no-port", func(o *Options) { o.Servers = []string{"a:1", "b"} }, `server 2 "b"`},
		{"none", func(o *Options) {}, "no server"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Trust: trust, DeviceName: "SEP1"}
			c.set(&o)
			if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run error %v, want %q", err, c.want)
			}
		})
	}
}
