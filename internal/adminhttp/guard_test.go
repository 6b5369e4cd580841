package adminhttp

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// guardedServer is an HTTPS server behind Guard: GET / answers "ok", GET
// /block holds its request until the test ends.
type guardedServer struct {
	addr  string
	g     *Guarded
	roots *x509.CertPool
}

func startGuarded(t *testing.T, lim Limits) *guardedServer {
	t.Helper()
	cert, roots := testCert(t)
	hold := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /block", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	})
	hs := NewTLSServer(mux, cert)
	hs.TLSConfig.NextProtos = []string{"http/1.1"}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, g := Guard(hs, inner, lim)
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		close(hold)
		hs.Close()
	})
	return &guardedServer{addr: inner.Addr().String(), g: g, roots: roots}
}

func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "admin test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// dialFrom opens a TCP connection from the loopback address from.
func (s *guardedServer) dialFrom(t *testing.T, from string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client is a TLS connection that sends HTTP/1.1 requests by hand, so a
// test knows which connection each one uses.
type client struct {
	tc *tls.Conn
	br *bufio.Reader
}

// tlsFrom opens a TLS connection from the loopback address from; err is
// the handshake's.
func (s *guardedServer) tlsFrom(t *testing.T, from string) (*client, error) {
	t.Helper()
	tc := tls.Client(s.dialFrom(t, from), &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1"})
	_ = tc.SetDeadline(time.Now().Add(3 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return &client{tc: tc, br: bufio.NewReader(tc)}, nil
}

// get sends GET path and reads the answer's status and, unless the path
// holds the request open, its body.
func (c *client) get(path string) (int, error) {
	_ = c.tc.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.tc.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.tc, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	if path != "/block" {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp.StatusCode, nil
}

// mustGet is get that must answer 200.
func (c *client) mustGet(t *testing.T, path string) {
	t.Helper()
	code, err := c.get(path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, code, err)
	}
}

// closedWithin reports whether the server closes c within d: a read
// returns EOF or a reset, not data or the deadline.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// waitIdle waits until n connections are between requests.
func (s *guardedServer) waitIdle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.g.mu.Lock()
		idle := 0
		for c := range s.g.conns {
			if c.state == http.StateIdle {
				idle++
			}
		}
		s.g.mu.Unlock()
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections, want %d", idle, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// long is a first-request deadline no test reaches.
const long = time.Minute

func TestGuardPerAddressCap(t *testing.T) {
	s := startGuarded(t, Limits{MaxConns: 10, MaxPerAddress: 2, FirstRequest: long})
	for range 2 {
		c, err := s.tlsFrom(t, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		c.mustGet(t, "/block") // busy: not evictable
	}
	third := s.dialFrom(t, "127.0.0.1")
	if !closedWithin(third, 2*time.Second) {
		t.Fatal("a third connection from an address at its cap was not closed at once")
	}
	other, err := s.tlsFrom(t, "127.0.0.2")
	if err != nil {
		t.Fatalf("another address was refused: %v", err)
	}
	other.mustGet(t, "/")
	if st := s.g.Stats(); st.Refused != 1 || st.PerAddrAt != 1 || st.Open != 3 {
		t.Errorf("stats %+v, want 1 refused at the per-address cap, 3 open", st)
	}
}

func TestGuardTotalCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startGuarded(t, Limits{MaxConns: 3, MaxPerAddress: 10, FirstRequest: long, Registerer: reg})
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		c, err := s.tlsFrom(t, from)
		if err != nil {
			t.Fatal(err)
		}
		c.mustGet(t, "/block")
	}
	start := time.Now()
	fourth := s.dialFrom(t, "127.0.0.4")
	if !closedWithin(fourth, 2*time.Second) {
		t.Fatal("a connection over the total cap with nothing evictable was not closed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v, want at once", d)
	}
	if st := s.g.Stats(); st.Refused != 1 || st.Evicted != 0 || st.Open != 3 {
		t.Errorf("stats %+v, want 1 refused, none evicted, 3 open", st)
	}
	got := gathered(t, reg)
	for series, want := range map[string]float64{
		"capf_admin_connections_open":                                         3,
		`capf_admin_connections_closed_total{reason="refused"}`:               1,
		`capf_admin_connections_closed_total{reason="evicted"}`:               0,
		`capf_admin_connections_closed_total{reason="first-request-timeout"}`: 0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

// gathered returns reg's metrics by series name, with one label at most.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + `="` + l.GetValue() + `"}`
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestGuardEvictsOldestIdle(t *testing.T) {
	tests := []struct {
		name      string
		lim       Limits
		newFrom   string
		wantPerAt uint64
	}{
		{"total-cap", Limits{MaxConns: 3, MaxPerAddress: 10, FirstRequest: long}, "127.0.0.2", 0},
		{"per-address-cap", Limits{MaxConns: 10, MaxPerAddress: 3, FirstRequest: long}, "127.0.0.1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startGuarded(t, tt.lim)
			var idle []*client
			for i := range 3 {
				c, err := s.tlsFrom(t, "127.0.0.1")
				if err != nil {
					t.Fatal(err)
				}
				c.mustGet(t, "/")
				s.waitIdle(t, i+1) // so the order of idleness is the order here
				idle = append(idle, c)
			}
			// The oldest idle connection makes room for a new one.
			c, err := s.tlsFrom(t, tt.newFrom)
			if err != nil {
				t.Fatalf("the new connection was refused: %v", err)
			}
			c.mustGet(t, "/")
			if !closedWithin(idle[0].tc, 2*time.Second) {
				t.Error("the oldest idle connection is still open")
			}
			// The others still serve.
			idle[1].mustGet(t, "/")
			idle[2].mustGet(t, "/")
			if st := s.g.Stats(); st.Evicted != 1 || st.Refused != 0 || st.PerAddrAt != tt.wantPerAt {
				t.Errorf("stats %+v, want 1 evicted", st)
			}
		})
	}
}

// TestGuardPerAddressEvictsOwn: an address at its cap makes room among
// its own connections, never by evicting another address's, even an older
// one.
func TestGuardPerAddressEvictsOwn(t *testing.T) {
	s := startGuarded(t, Limits{MaxConns: 10, MaxPerAddress: 2, FirstRequest: long})
	var idle []*client
	for i, from := range []string{"127.0.0.9", "127.0.0.1", "127.0.0.1"} {
		c, err := s.tlsFrom(t, from)
		if err != nil {
			t.Fatal(err)
		}
		c.mustGet(t, "/")
		s.waitIdle(t, i+1)
		idle = append(idle, c)
	}
	c, err := s.tlsFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c.mustGet(t, "/")
	if !closedWithin(idle[1].tc, 2*time.Second) {
		t.Error("the address's oldest idle connection is still open")
	}
	idle[0].mustGet(t, "/") // the other address's, older, still serves
	idle[2].mustGet(t, "/")
}

// TestGuardNeverEvictsBusy: a connection serving a request (a live status
// stream) keeps its place; only idle ones are evicted.
func TestGuardNeverEvictsBusy(t *testing.T) {
	s := startGuarded(t, Limits{MaxConns: 2, MaxPerAddress: 10, FirstRequest: long})
	busy, err := s.tlsFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	busy.mustGet(t, "/block")
	idle, err := s.tlsFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	idle.mustGet(t, "/")
	s.waitIdle(t, 1)
	c, err := s.tlsFrom(t, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	c.mustGet(t, "/")
	if !closedWithin(idle.tc, 2*time.Second) {
		t.Error("the idle connection was not evicted")
	}
	if closedWithin(busy.tc, 200*time.Millisecond) {
		t.Error("the busy connection was evicted")
	}
}

func TestGuardFirstRequestDeadline(t *testing.T) {
	const deadline = 200 * time.Millisecond
	s := startGuarded(t, Limits{MaxConns: 10, MaxPerAddress: 10, FirstRequest: deadline})
	start := time.Now()
	silent := s.dialFrom(t, "127.0.0.1") // never starts TLS
	noRequest, err := s.tlsFrom(t, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	served, err := s.tlsFrom(t, "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	served.mustGet(t, "/")
	if !closedWithin(silent, 3*time.Second) {
		t.Fatal("a connection that never started TLS was not closed")
	}
	if !closedWithin(noRequest.tc, 3*time.Second) {
		t.Fatal("a connection that sent no request was not closed")
	}
	if d := time.Since(start); d < deadline || d > 2*time.Second {
		t.Errorf("closed after %v, want about %v", d, deadline)
	}
	// One that sent a request is past its first-request deadline.
	time.Sleep(deadline)
	served.mustGet(t, "/")
	if st := s.g.Stats(); st.TimedOut != 2 || st.Open != 1 {
		t.Errorf("stats %+v, want 2 timed out, 1 open", st)
	}
}

// TestGuardFloodOfSilentConnections: connections that never start TLS
// from many addresses fill the cap; a new client still gets in at once by
// evicting the oldest of them.
func TestGuardFloodOfSilentConnections(t *testing.T) {
	s := startGuarded(t, Limits{MaxConns: 20, MaxPerAddress: 4, FirstRequest: long})
	for i := range 40 { // 10 addresses, twice their cap
		s.dialFrom(t, "127.0.1."+itoa(1+i%10))
	}
	c, err := s.tlsFrom(t, "127.0.0.2")
	if err != nil {
		t.Fatalf("refused during the flood: %v", err)
	}
	c.mustGet(t, "/")
	if st := s.g.Stats(); st.Open > 20 {
		t.Errorf("stats %+v: more open than the cap", st)
	}
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

// TestGuardHTTP2: an HTTP/2 connection (what browsers use) is tracked
// too: idle between requests, and not closed by the first-request
// deadline once it has served one.
func TestGuardHTTP2(t *testing.T) {
	cert, roots := testCert(t)
	hs := NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }), cert)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, g := Guard(hs, inner, Limits{MaxConns: 4, MaxPerAddress: 4, FirstRequest: 200 * time.Millisecond})
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	defer hs.Close()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	get := func() string {
		t.Helper()
		resp, err := c.Get("https://" + inner.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if proto := get(); proto != "HTTP/2.0" {
		t.Fatalf("served over %s, want HTTP/2.0", proto)
	}
	s := &guardedServer{g: g}
	s.waitIdle(t, 1)
	time.Sleep(400 * time.Millisecond) // past the first-request deadline
	get()
	if st := g.Stats(); st.Open != 1 || st.TimedOut != 0 {
		t.Errorf("stats %+v, want the one HTTP/2 connection open, none timed out", st)
	}
}

func TestHostOf(t *testing.T) {
	tests := []struct {
		name string
		addr net.Addr
		want string
	}{
		{"ipv4", &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 443}, "192.0.2.7"},
		{"ipv4-mapped", &net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 443}, "192.0.2.7"},
		{"ipv6-is-its-64", &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), Port: 443}, "2001:db8:1:2::/64"},
		{"ipv6-same-64", &net.TCPAddr{IP: net.ParseIP("2001:db8:1:2::1"), Port: 443}, "2001:db8:1:2::/64"},
		{"not-tcp", &net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, "/run/x.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hostOf(tt.addr); got != tt.want {
				t.Errorf("hostOf(%v) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}
