package e2e

import (
	"bufio"
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

// refusedAtOnce reports whether the server closed c without serving it: a
// read returns EOF or a reset well before the deadline. A read that runs
// into the client's own deadline (os.ErrDeadlineExceeded) means the
// connection was left open, which is no refusal.
func refusedAtOnce(t *testing.T, c net.Conn) bool {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(3 * time.Second))
	_, err := c.Read(make([]byte, 1))
	switch {
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return false
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		if d := time.Since(start); d > time.Second {
			t.Errorf("refused only after %v (the handshake timeout is 30 s)", d)
		}
		return true
	}
	t.Fatalf("read: %v", err)
	return false
}

// TestConnectionFlood runs the real binary with its descriptor limit
// lowered (soft 64, hard 256, set in the child only) and floods it from
// several loopback addresses: the server raises its soft limit, derives its
// cap from it, refuses connections beyond the cap at once while /healthz
// keeps answering, and a phone enrols once slots free.
func TestConnectionFlood(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	env := append(os.Environ(), "CAPF_DATA="+data)
	srv := exec.Command("bash", "-c", `ulimit -Sn 64 && ulimit -Hn 256 && exec "$0" "$@"`,
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
	// 256 - 64 - 10% = 167: the soft limit of 64 was raised to the hard one.
	if b.limit != "256" || b.conns != "167" {
		t.Fatalf("banner: cap %q from limit %q, want 167 from 256", b.conns, b.limit)
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
	metric := func(series string) string {
		t.Helper()
		_, body := get("/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, series+" "); ok {
				return v
			}
		}
		return ""
	}
	waitFor := func(series, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for got := metric(series); got != want; got = metric(series) {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %q, want %q", series, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The flood: idle connections from 4 addresses (under the per-address
	// limit of 200 each) fill the cap.
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := 0; i < maxConns; i++ {
		held = append(held, dialFrom(t, fmt.Sprintf("127.0.4.%d", 1+i%4), b.addr))
	}
	waitFor("capf_connections_active", b.conns)
	const extra = 40
	for i := 0; i < extra; i++ {
		c := dialFrom(t, fmt.Sprintf("127.0.5.%d", 1+i%8), b.addr)
		refused := refusedAtOnce(t, c)
		c.Close()
		if !refused {
			t.Fatalf("connection %d beyond the cap of %d was left open", i+1, maxConns)
		}
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz during the flood: %d %s", code, body)
	}
	waitFor(`capf_connections_rejected_total{reason="total-limit"}`, strconv.Itoa(extra))

	// A phone gets in once slots free (held connections close or reach the
	// handshake timeout); the flood still holds the rest.
	name := newPhoneName()
	out, err := exec.Command(bin, "--data", data, "device", "add", name, "--operation", "install", "--key", "ec256").CombinedOutput()
	if err != nil {
		t.Fatalf("device add: %v\n%s", err, out)
	}
	for _, c := range held[:2] {
		c.Close()
	}
	held = held[2:]
	waitFor("capf_connections_active", strconv.Itoa(maxConns-2))
	pemBytes, err := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	res, err := phonesim.Run(ctx, phonesim.Options{Server: b.addr, Trust: []*x509.Certificate{ca}, DeviceName: name,
		StateDir: t.TempDir(), RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess {
		t.Fatalf("phone during the flood: %+v %v", res, err)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz after: %d", code)
	}
	if n := strings.Count(stderr.String(), "max_connections reached"); n > 2 {
		t.Errorf("%d log lines for %d refusals: not rate limited", n, extra)
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
