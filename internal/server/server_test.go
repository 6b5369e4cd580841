package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/wire"
)

// noDevices is a session store that knows no device: every session ends
// after AUTH_RESPONSE with END_SESSION(unknown device), which is all these
// tests of the connection handling need.
type noDevices struct{}

func (noDevices) GetDevice(context.Context, string) (device.Device, error) {
	return device.Device{}, fault.NotFoundf("no such device")
}
func (noDevices) StartAttempt(context.Context, device.Attempt) (device.Claim, error) {
	return device.Claim{}, errors.New("unexpected StartAttempt")
}
func (noDevices) CountOpenAttempts(context.Context) (int, error) {
	return 0, errors.New("unexpected CountOpenAttempts")
}
func (noDevices) CountAuthGuess(context.Context, string, int, int, time.Time) (bool, error) {
	return false, errors.New("unexpected CountAuthGuess")
}
func (noDevices) RecordAuthFailure(context.Context, device.AuthFailure) (bool, error) {
	return false, errors.New("unexpected RecordAuthFailure")
}
func (noDevices) RecordIssuance(context.Context, device.Issuance) error {
	return errors.New("unexpected RecordIssuance")
}
func (noDevices) FinishAttempt(context.Context, device.Outcome) error { return nil }
func (noDevices) SaveFetchedCertificate(context.Context, device.FetchedCertificate) error {
	return errors.New("unexpected SaveFetchedCertificate")
}

// counter is an Observer that counts rejections by reason.
type counter struct {
	mu       sync.Mutex
	rejected map[string]int
	evicted  map[string]int
	open     int
}

func (c *counter) ConnOpened() { c.mu.Lock(); c.open++; c.mu.Unlock() }
func (c *counter) ConnClosed() { c.mu.Lock(); c.open--; c.mu.Unlock() }
func (c *counter) ConnRejected(r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rejected == nil {
		c.rejected = map[string]int{}
	}
	c.rejected[r]++
}
func (c *counter) ConnEvicted(r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.evicted == nil {
		c.evicted = map[string]int{}
	}
	c.evicted[r]++
}
func (c *counter) evictions(r string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.evicted[r] }
func (c *counter) get(r string) int       { c.mu.Lock(); defer c.mu.Unlock(); return c.rejected[r] }
func (c *counter) active() int            { c.mu.Lock(); defer c.mu.Unlock(); return c.open }

// lockedBuffer collects the server's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *lockedBuffer) Len() int       { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Len() }

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CAPF-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type testServer struct {
	addr string
	obs  *counter
	log  *lockedBuffer
}

// startTest serves on 127.0.0.1:0 with o (TLS, Deps, Observer and Logger
// filled in) and shuts the server down at cleanup.
func startTest(t *testing.T, o Options) *testServer {
	t.Helper()
	tlsCfg, err := TLSConfig(ProfileModern, testCert(t))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{obs: &counter{}, log: &lockedBuffer{}}
	o.TLS = tlsCfg
	o.Observer = ts.obs
	o.Logger = slog.New(slog.NewTextHandler(ts.log, nil))
	o.Deps = &session.Deps{Store: noDevices{}, Locks: session.NewDeviceLocks(), Now: time.Now,
		Config: session.Config{MessageTimeout: 30 * time.Second, RetryDelay: time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	srv := New(o)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	return c
}

// session opens a TLS connection from src and reads AUTH_REQUEST.
func openSession(t *testing.T, src, addr string) (*tls.Conn, *wire.Message) {
	t.Helper()
	tc := tls.Client(dialFrom(t, src, addr), &tls.Config{InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	f, err := wire.ReadFrame(tc, nil, DefaultMaxPayload)
	if err != nil {
		tc.Close()
		t.Fatalf("AUTH_REQUEST: %v", err)
	}
	m, err := wire.Decode(f)
	if err != nil || m.Command != wire.CmdAuthRequest {
		t.Fatalf("first message %v %v", m, err)
	}
	return tc, m
}

// closedAtOnce reports whether the server closed c without serving it: a
// read returns EOF or a reset well before the deadline. A read that runs
// into its own deadline (os.ErrDeadlineExceeded) means the connection was
// left open, which is not a refusal.
func closedAtOnce(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	switch {
	case err == nil:
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		if d := time.Since(start); d > time.Second {
			t.Errorf("closed only after %v", d)
		}
		return true
	}
	t.Fatalf("read: %v", err)
	return false
}

// waitActive waits until the observer counts n open connections.
func waitActive(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ts.obs.active() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", ts.obs.active(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name      string
		perAddr   int
		total     int
		held      []string // source addresses of the connections held open
		sessions  bool     // the held connections are past their TLS handshake
		probeFrom string
		refused   bool
		reason    string
	}{
		{name: "per-address/over", perAddr: 2, held: []string{"127.0.0.2", "127.0.0.2"}, probeFrom: "127.0.0.2", refused: true, reason: "per-address-limit"},
		{name: "per-address/other-address-served", perAddr: 2, held: []string{"127.0.0.2", "127.0.0.2"}, probeFrom: "127.0.0.3"},
		{name: "total/over-from-new-address", total: 3, held: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, sessions: true, probeFrom: "127.0.0.5", refused: true, reason: "total-limit"},
		// Held connections in their handshake are evicted instead: see
		// TestEvictOldestHandshaking.
		{name: "total/under", total: 4, held: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}, probeFrom: "127.0.0.5"},
		{name: "no-limits", held: []string{"127.0.0.2", "127.0.0.2", "127.0.0.2"}, probeFrom: "127.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startTest(t, Options{MaxConnsPerAddress: tt.perAddr, MaxConns: tt.total})
			for _, src := range tt.held {
				var c net.Conn
				if tt.sessions {
					c, _ = openSession(t, src, ts.addr)
				} else {
					c = dialFrom(t, src, ts.addr)
				}
				t.Cleanup(func() { c.Close() })
			}
			waitActive(t, ts, len(tt.held))
			probe := dialFrom(t, tt.probeFrom, ts.addr)
			defer probe.Close()
			if tt.refused {
				if !closedAtOnce(t, probe) {
					t.Fatal("connection over the limit was left open")
				}
				if got := ts.obs.get(tt.reason); got != 1 {
					t.Errorf("rejected{%s} = %d, want 1", tt.reason, got)
				}
				return
			}
			// Served: the TLS handshake completes and AUTH_REQUEST arrives.
			tc := tls.Client(probe, &tls.Config{InsecureSkipVerify: true})
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := wire.ReadFrame(tc, nil, DefaultMaxPayload); err != nil {
				t.Fatalf("connection under the limit not served: %v", err)
			}
		})
	}
}

// stillOpen reports whether the server keeps c open: a short read runs
// into the client's own deadline.
func stillOpen(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// TestEvictOldestHandshaking: at the total cap a new connection evicts the
// oldest connection still in its TLS handshake, never a session past it,
// and is served; with only sessions left, the new one is refused.
func TestEvictOldestHandshaking(t *testing.T) {
	ts := startTest(t, Options{MaxConns: 4})
	sess, _ := openSession(t, "127.0.0.2", ts.addr) // the oldest, but past TLS
	defer sess.Close()
	var idle []net.Conn
	for i := 0; i < 3; i++ {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 3+i), ts.addr)
		defer c.Close()
		idle = append(idle, c)
		waitActive(t, ts, 2+i)
	}
	for i := 0; i < 3; i++ {
		// Each newcomer completes its handshake and gets AUTH_REQUEST,
		// evicting the oldest idle one.
		tc, _ := openSession(t, "127.0.0.9", ts.addr)
		defer tc.Close()
		if !closedAtOnce(t, idle[i]) {
			t.Fatalf("newcomer %d: the oldest idle connection was not evicted", i+1)
		}
		for _, c := range idle[i+1:] {
			if !stillOpen(t, c) {
				t.Fatalf("newcomer %d: a younger idle connection was closed", i+1)
			}
		}
		if got := ts.obs.evictions("total-limit"); got != i+1 {
			t.Fatalf("evicted = %d, want %d", got, i+1)
		}
	}
	if !stillOpen(t, sess) {
		t.Fatal("the session past its handshake was evicted")
	}
	// Four sessions past TLS now: nothing to evict, the next is refused.
	probe := dialFrom(t, "127.0.0.10", ts.addr)
	defer probe.Close()
	if !closedAtOnce(t, probe) {
		t.Fatal("a connection over a cap of sessions was left open")
	}
	if got, ev := ts.obs.get("total-limit"), ts.obs.evictions("total-limit"); got != 1 || ev != 3 {
		t.Fatalf("rejected = %d, evicted = %d, want 1 and 3", got, ev)
	}
}

// TestHandshakeDeadlineUnderPressure: once more than PressurePercent of the
// cap is open, connections still in their handshake get the short deadline
// counted from their accept (older ones are closed at once), sessions past
// TLS keep theirs, and below the threshold the long deadline holds.
func TestHandshakeDeadlineUnderPressure(t *testing.T) {
	const short = 300 * time.Millisecond
	ts := startTest(t, Options{MaxConns: 10, PressureHandshakeTimeout: short})
	sess, _ := openSession(t, "127.0.0.2", ts.addr)
	defer sess.Close()
	var idle []net.Conn
	for i := 0; i < 7; i++ { // 8 of 10 open: at, not above, 80 %
		c := dialFrom(t, "127.0.0.3", ts.addr)
		defer c.Close()
		idle = append(idle, c)
	}
	waitActive(t, ts, 8)
	time.Sleep(2 * short) // older than the short deadline, well within the long one
	for i, c := range idle {
		if !stillOpen(t, c) {
			t.Fatalf("idle connection %d closed below the pressure threshold", i)
		}
	}
	late := dialFrom(t, "127.0.0.4", ts.addr) // the 9th: above 80 %
	defer late.Close()
	for i, c := range idle {
		if !closedAtOnce(t, c) {
			t.Fatalf("idle connection %d kept its long deadline under pressure", i)
		}
	}
	// The newcomer has the short deadline from its own accept.
	start := time.Now()
	_ = late.SetReadDeadline(start.Add(5 * time.Second))
	if _, err := late.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("newcomer under pressure: %v", err)
	}
	if d := time.Since(start); d > 3*short {
		t.Errorf("newcomer closed after %v, want about %v", d, short)
	}
	if !stillOpen(t, sess) {
		t.Fatal("the session past its handshake was closed")
	}
	if n := ts.obs.evictions("total-limit"); n != 0 {
		t.Errorf("evicted = %d below the cap", n)
	}
}

// TestPerAddressSlotsFreed opens and closes many more connections from one
// address than the limit allows at once: every one is served, so closed
// connections give their slot back.
func TestPerAddressSlotsFreed(t *testing.T) {
	ts := startTest(t, Options{MaxConnsPerAddress: 2, MaxConns: 3})
	for i := 0; i < 10; i++ {
		tc, _ := openSession(t, "127.0.0.7", ts.addr)
		tc.Close()
		waitActive(t, ts, 0)
	}
	if n := ts.obs.get("per-address-limit") + ts.obs.get("total-limit"); n != 0 {
		t.Fatalf("%d connections refused after earlier ones closed", n)
	}
}

func TestGarbageAnsweredAtOnce(t *testing.T) {
	header := make([]byte, 8)
	header[0], header[1] = wire.ProtocolID, byte(wire.CmdAuthResponse)
	header[6], header[7] = 0xEA, 0x60 // 60,000-byte payload announced
	tests := []struct {
		name string
		data []byte
	}{
		{name: "http-request", data: []byte("GET / HTTP/1.0\r\n\r\n")},
		{name: "oversized-length", data: header},
		{name: "element-past-end", data: []byte{wire.ProtocolID, 0x02, 0, 0, 0, 1, 0, 5, 13, 0, 9, 0, 0}},
	}
	ts := startTest(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, _ := openSession(t, "127.0.0.1", ts.addr)
			defer tc.Close()
			if _, err := tc.Write(tt.data); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = tc.SetReadDeadline(start.Add(3 * time.Second))
			f, err := wire.ReadFrame(tc, nil, DefaultMaxPayload)
			if err != nil {
				t.Fatalf("no answer to garbage (message_timeout is 30 s): %v", err)
			}
			m, err := wire.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if r, _ := m.Uint8(wire.TagReason); m.Command != wire.CmdEndSession || wire.Reason(r) != wire.ReasonRefused {
				t.Fatalf("answer %s reason %d, want END_SESSION(%d)", m.Command, r, wire.ReasonRefused)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("answered after %v", d)
			}
		})
	}
}

// TestHostileDeviceNameLogBounded sends AUTH_RESPONSE with a 16 KiB device
// name of quote characters (which a text log escapes, doubling them): the
// session's log line stays short and names the device once.
func TestHostileDeviceNameLogBounded(t *testing.T) {
	tests := []struct {
		name   string
		device string
	}{
		{name: "quotes-16KiB", device: strings.Repeat(`"`, 16<<10-64)},
		{name: "newlines", device: strings.Repeat("SEP\nlevel=ERROR msg=forged\n", 500)},
		{name: "softphone-bad-char", device: "CSF" + strings.Repeat("\x1b[2J", 3000)},
		{name: "just-too-long", device: "CSF" + strings.Repeat("A", 48)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startTest(t, Options{}) // a server of its own: unknown-device lines are rate-limited
			before := ts.log.Len()
			tc, req := openSession(t, "127.0.0.1", ts.addr)
			defer tc.Close()
			resp := wire.New(wire.CmdAuthResponse, req.SessionID).AddUint8(wire.TagVersion, 3).
				AddString(wire.TagDeviceName, tt.device).AddString(wire.TagPassword, "")
			b, err := resp.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tc.Write(b); err != nil {
				t.Fatal(err)
			}
			f, err := wire.ReadFrame(tc, nil, DefaultMaxPayload)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := wire.Decode(f); m == nil || m.Command != wire.CmdEndSession {
				t.Fatalf("answer %v", m)
			}
			tc.Close()
			var line string
			deadline := time.Now().Add(5 * time.Second)
			for {
				line = ts.log.String()[before:]
				if strings.Contains(line, "capf session") || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.Contains(line, "capf session") {
				t.Fatalf("no session line logged: %q", line)
			}
			if len(line) > 400 {
				t.Errorf("%d log bytes for one hostile connection:\n%s", len(line), line)
			}
			if strings.Count(line, "\n") != 1 {
				t.Errorf("the phone's text split the log line:\n%s", line)
			}
			if strings.Contains(line, "\x1b") {
				t.Errorf("escape sequence reached the log: %q", line)
			}
			if n := strings.Count(line, fmt.Sprintf("(%d bytes)", len(tt.device))); n != 1 {
				t.Errorf("the device name appears %d times (by its length marker), want once:\n%s", n, line)
			}
		})
	}
}

// flakyListener fails Accept with EMFILE a number of times, recording when
// each call came, then blocks until closed.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
	calls []time.Time
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls = append(l.calls, time.Now())
	fail := len(l.calls) <= l.fails
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func (l *flakyListener) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.calls...)
}

// TestAcceptBackoff: failing accepts (descriptors exhausted) back off
// exponentially instead of spinning, are logged a bounded number of times,
// and the server accepts again afterwards.
func TestAcceptBackoff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner, fails: 6}
	log := &lockedBuffer{}
	tlsCfg, _ := TLSConfig(ProfileModern, testCert(t))
	srv := New(Options{TLS: tlsCfg, Logger: slog.New(slog.NewTextHandler(log, nil)),
		Deps: &session.Deps{Store: noDevices{}, Locks: session.NewDeviceLocks(), Now: time.Now, Config: session.Config{MessageTimeout: 5 * time.Second}}})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), ln) }()
	defer func() {
		_ = srv.Shutdown(context.Background())
		<-errc
	}()
	tc, _ := openSession(t, "127.0.0.1", inner.Addr().String())
	tc.Close()
	calls := ln.times()
	if len(calls) < 7 {
		t.Fatalf("%d accept calls", len(calls))
	}
	// Waits of 5, 10, 20, 40, 80, 160 ms: at least 315 ms in all.
	if d := calls[6].Sub(calls[0]); d < 300*time.Millisecond {
		t.Errorf("six failing accepts retried within %v: no back-off", d)
	}
	for i := 2; i < 7; i++ {
		if prev, cur := calls[i-1].Sub(calls[i-2]), calls[i].Sub(calls[i-1]); cur < prev {
			t.Errorf("wait %d (%v) shorter than wait %d (%v)", i, cur, i-1, prev)
		}
	}
	if n := strings.Count(log.String(), "accept failed"); n != 1 {
		t.Errorf("%d log lines for 6 failed accepts, want 1 (rate limited)", n)
	}
}

// TestShutdownEndsBackoff: Shutdown does not wait for a back-off to end.
func TestShutdownEndsBackoff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner, fails: 1 << 30}
	srv := New(Options{Deps: &session.Deps{Now: time.Now}})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), ln) }()
	time.Sleep(1500 * time.Millisecond) // the back-off reaches its 1 s ceiling
	start := time.Now()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Serve returned %v after Shutdown", d)
	}
}

func TestBoundPhoneText(t *testing.T) {
	long := strings.Repeat("X", 300)
	tests := []struct {
		name, device, reason   string
		wantDevice, wantReason string
	}{
		{name: "valid-name-whole", device: "CSF" + strings.Repeat("A", 47), reason: "no such device",
			wantDevice: "CSF" + strings.Repeat("A", 47), wantReason: "no such device"},
		{name: "quoted-name-once", device: "SEP\"1", reason: `device name "SEP\"1": bad`,
			wantDevice: `SEP"1`, wantReason: "device name <device name>: bad"},
		{name: "short-name-not-replaced-in-words", device: "A", reason: "A bad thing",
			wantDevice: "A", wantReason: "A bad thing"},
		{name: "long-reason-cut", device: "", reason: long,
			wantDevice: "", wantReason: strings.Repeat("X", 200) + "…(300 bytes)"},
		{name: "reason-control-chars", device: "SEP001122334455", reason: "info\r\nforged",
			wantDevice: "SEP001122334455", wantReason: "info??forged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, r := boundPhoneText(tt.device, tt.reason)
			if d != tt.wantDevice || r != tt.wantReason {
				t.Errorf("got %q, %q; want %q, %q", d, r, tt.wantDevice, tt.wantReason)
			}
		})
	}
}

// TestUnknownDeviceLogRateLimited: a flood of sessions for devices that do
// not exist writes one log line per ratelog.Every, not one per connection.
func TestUnknownDeviceLogRateLimited(t *testing.T) {
	ts := startTest(t, Options{})
	for i := range 20 {
		tc, req := openSession(t, "127.0.0.1", ts.addr)
		b, _ := wire.New(wire.CmdAuthResponse, req.SessionID).AddUint8(wire.TagVersion, 3).
			AddString(wire.TagDeviceName, fmt.Sprintf("SEP0000000000%02X", i)).AddString(wire.TagPassword, "").Encode()
		if _, err := tc.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := wire.ReadFrame(tc, nil, DefaultMaxPayload); err != nil {
			t.Fatal(err)
		}
		tc.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.obs.active() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := strings.Count(ts.log.String(), "capf session"); n != 1 {
		t.Errorf("%d session lines for 20 unknown-device sessions, want 1:\n%s", n, ts.log)
	}
}

// The owner of a listener may close it (the service is deactivated) and
// later serve on a new one: sessions open meanwhile go on, and Shutdown
// still ends everything.
func TestServeAgainAfterListenerClosed(t *testing.T) {
	tlsCfg, err := TLSConfig(ProfileModern, testCert(t))
	if err != nil {
		t.Fatal(err)
	}
	obs := &counter{}
	srv := New(Options{TLS: tlsCfg, Observer: obs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Deps: &session.Deps{Store: noDevices{}, Locks: session.NewDeviceLocks(), Now: time.Now,
			Config: session.Config{MessageTimeout: 30 * time.Second, RetryDelay: time.Second}}})
	serve := func() (string, net.Listener, chan error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(context.Background(), ln) }()
		return ln.Addr().String(), ln, errc
	}
	addr1, ln1, errc1 := serve()
	open, _ := openSession(t, "127.0.0.1", addr1)
	defer open.Close()
	ln1.Close()
	if err := <-errc1; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after its listener was closed = %v, want net.ErrClosed", err)
	}
	if c, err := net.DialTimeout("tcp", addr1, time.Second); err == nil {
		c.Close()
		t.Fatal("the closed listener still accepts")
	}
	if obs.active() != 1 {
		t.Fatalf("%d connections open after the listener closed, want the session still open", obs.active())
	}
	addr2, _, errc2 := serve()
	c2, _ := openSession(t, "127.0.0.1", addr2)
	c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	open.Close()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-errc2; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
}
