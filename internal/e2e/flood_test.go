package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// TestConnectionFlood runs the real binary under the descriptor limit
// systemd's LimitNOFILE=1024 gives it (soft and hard, set in the child
// only) and floods it with 1,500 idle TCP connections that never start TLS,
// from 30 loopback addresses (50 each, under the per-address limit of 200):
// the server derives a cap of 858 from the limit, admits each newcomer by
// evicting the oldest connection still in its handshake, and shortens the
// handshake deadline under pressure, so a phone enrols within 10 s while
// /healthz answers and the metrics count the evictions. Before eviction the
// phone was refused until the 30 s handshake timeout freed slots.
func TestConnectionFlood(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2048 {
		t.Skipf("the test holds 1,500 connections and needs 2,048 descriptors; its limit is %d (%v)", lim.Cur, err)
	}
	bin := capfBinary(t)
	data := t.TempDir()
	env := append(os.Environ(), "CAPF_DATA="+data)
	srv := exec.Command("bash", "-c", `ulimit -n 1024 && exec "$0" "$@"`,
		bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--admin-listen", "")
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
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	type banner struct{ addr, metrics, conns, limit string }
	bc := make(chan banner, 1)
	go func() {
		var b banner
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if m := regexp.MustCompile(`max connections: +(\d+) \(derived; descriptor limit (\d+)\)`).FindStringSubmatch(line); m != nil {
				b.conns, b.limit = m[1], m[2]
			}
			if m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(line); m != nil {
				b.addr = m[1]
			}
			if m := regexp.MustCompile(`metrics: +http://(\S+)/metrics`).FindStringSubmatch(line); m != nil {
				b.metrics = m[1]
				bc <- b
			}
		}
	}()
	var b banner
	select {
	case b = <-bc:
	case <-time.After(30 * time.Second):
		t.Fatalf("capf serve did not start: %s", stderr.String())
	}
	// 1024 - 64 - 10% = 858.
	if b.limit != "1024" || b.conns != "858" {
		t.Fatalf("banner: cap %q from limit %q, want 858 from 1024", b.conns, b.limit)
	}
	maxConns, _ := strconv.Atoi(b.conns)
	get := func(path string) (int, string) {
		t.Helper()
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + b.metrics + path)
		if err != nil {
			t.Fatalf("GET %s during the flood: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	metric := func(series string) int {
		t.Helper()
		_, body := get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		return 0
	}
	name := newPhoneName()
	out, err := exec.Command(bin, "--data", data, "device", "add", name, "--operation", "install", "--key", "ec256").CombinedOutput()
	if err != nil {
		t.Fatalf("device add: %v\n%s", err, out)
	}
	pemBytes, err := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	// The flood: 1,500 idle connections from 30 addresses, each watched
	// until the server closes it (or 40 s pass: longer than the 30 s
	// handshake timeout, so a connection left open shows).
	const flood, addrs = 1500, 30
	type closed struct {
		held time.Duration // from dial to the server's close
		ok   bool          // closed by the server (EOF or reset)
	}
	closes := make(chan closed, flood)
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := 0; i < flood; i++ {
		c := dialFrom(t, fmt.Sprintf("127.0.1.%d", 1+i%addrs), b.addr)
		held = append(held, c)
		go func(dialled time.Time) {
			_ = c.SetReadDeadline(dialled.Add(40 * time.Second))
			_, err := c.Read(make([]byte, 1))
			closes <- closed{held: time.Since(dialled), ok: errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)}
		}(time.Now())
	}
	floodDone := time.Now()
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during the flood: %d %s", code, body)
	}
	evictedFlood := metric(`capf_connections_evicted_total{reason="total-limit"}`)
	if active := metric("capf_connections_active"); active < maxConns*9/10 {
		t.Logf("only %d connections open after the flood (cap %d): the machine was slow", active, maxConns)
	}

	// A phone enrols within 10 s while the flood holds the cap.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := phonesim.Run(ctx, phonesim.Options{Server: b.addr, Trust: []*x509.Certificate{ca}, DeviceName: name,
		StateDir: t.TempDir(), RetryInterval: 50 * time.Millisecond, MessageTimeout: 10 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess {
		t.Fatalf("phone during the flood (%v after it began): %+v %v", time.Since(floodDone), res, err)
	}
	enrolled := time.Since(floodDone)
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz after: %d", code)
	}
	evicted := metric(`capf_connections_evicted_total{reason="total-limit"}`)
	if evicted < flood-maxConns {
		// Every connection beyond the cap evicted one, unless the short
		// deadline had freed slots before it came.
		t.Logf("evicted %d of %d beyond the cap", evicted, flood-maxConns)
	}
	if evicted < 1 || evicted < evictedFlood {
		t.Fatalf("capf_connections_evicted_total = %d (after the flood %d), want the evictions counted", evicted, evictedFlood)
	}
	if n := metric(`capf_connections_rejected_total{reason="total-limit"}`); n != 0 {
		t.Errorf("%d connections refused: idle ones could have been evicted", n)
	}

	// Under pressure every idle connection is closed by the server within
	// the 5 s pressure deadline (plus scheduling), well before 30 s.
	var byServer int
	var longest time.Duration
	for i := 0; i < flood; i++ {
		c := <-closes // each reader ends within 40 s
		if c.ok {
			byServer++
		}
		longest = max(longest, c.held)
	}
	if byServer != flood || longest > 15*time.Second {
		t.Errorf("%d of %d idle connections closed by the server, the last after %v; want all, within 15 s", byServer, flood, longest)
	}
	t.Logf("cap %d; %d idle connections from %d addresses: %d evicted (%d when the flood was in), all closed by the server within %v; phone enrolled %v after the flood was in",
		maxConns, flood, addrs, evicted, evictedFlood, longest.Round(10*time.Millisecond), enrolled.Round(10*time.Millisecond))
	if n := strings.Count(stderr.String(), "max_connections reached"); n > 3 {
		t.Errorf("%d log lines for %d evictions: not rate limited", n, evicted)
	}
}

// TestHostileDeviceNameLog: 50 connections, each an AUTH_RESPONSE with a
// 16 KiB device name of quote characters (which a text log escapes,
// doubling them), add less than 400 bytes of log each.
func TestHostileDeviceNameLog(t *testing.T) {
	s := startServer(t, nil, "")
	name := strings.Repeat(`"`, 16<<10-32)
	const conns = 50
	before := len(s.errOut.String())
	for i := 0; i < conns; i++ {
		c, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		f, err := wire.ReadFrame(c, nil, 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		req, err := wire.Decode(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := wire.New(wire.CmdAuthResponse, req.SessionID).AddUint8(wire.TagVersion, 3).
			AddString(wire.TagDeviceName, name).AddUint8(wire.TagAuthType, uint8(wire.AuthNoPassword)).
			AddString(wire.TagPassword, "").Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		f, err = wire.ReadFrame(c, nil, 1<<16)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if m, _ := wire.Decode(f); m == nil || m.Command != wire.CmdEndSession {
			t.Fatalf("answer %v", m)
		}
		c.Close()
	}
	// A session's line is written as its connection closes; sessions for
	// unknown devices are logged at most once per 10 s (and all counted).
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.errOut.String()[before:], "capf session") < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	grown := s.errOut.String()[before:]
	if n := strings.Count(grown, "capf session"); n < 1 || n > 2 {
		t.Fatalf("%d session lines for %d unknown-device connections, want 1 (rate-limited)", n, conns)
	}
	for _, line := range strings.Split(strings.TrimSpace(grown), "\n") {
		if len(line) >= 400 {
			t.Errorf("a %d-byte log line for a hostile connection:\n%s", len(line), line)
		}
	}
	per := len(grown) / conns
	t.Logf("%d log bytes per hostile connection", per)
	if per >= 400 {
		t.Errorf("%d log bytes per connection, want < 400:\n%s", per, grown[:min(len(grown), 2000)])
	}
}
