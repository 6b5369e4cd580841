package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// dialFrom opens a TCP connection to addr from a chosen loopback address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	return c
}

func TestPerAddressLimit(t *testing.T) {
	s := startServer(t, serverParams{"max_connections_per_address": 3}, "")
	var held []net.Conn
	for i := 0; i < 3; i++ {
		held = append(held, dialFrom(t, "127.0.0.9", s.addr))
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Give the server a moment to count them, then the 4th is closed at once.
	var refused bool
	for try := 0; try < 50 && !refused; try++ {
		c := dialFrom(t, "127.0.0.9", s.addr)
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err := tc.Handshake()
		c.Close()
		// A connection left open runs into the client's own deadline
		// (os.ErrDeadlineExceeded); only a close by the server is a refusal.
		refused = err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
		if !refused {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatal("a 4th connection from one address was served")
	}
	// Another address is served.
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
	if res, err := s.phone(name, "", nil); err != nil || res.EndReason != wire.ReasonSuccess {
		t.Fatalf("phone from another address: %+v %v", res, err)
	}
}

// TestIdleConnectionsDoNotBlock holds 2,000 idle or trickling connections
// open while phones enrol.
func TestIdleConnectionsDoNotBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	s := startServer(t, nil, "")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 2000; i++ {
		src := fmt.Sprintf("127.0.%d.%d", 10+i/100, 1+i%100)
		c := dialFrom(t, src, s.addr)
		conns = append(conns, c)
		if i%4 == 0 {
			// A trickler: the start of a TLS record, then nothing more.
			_, _ = c.Write([]byte{0x16, 0x03})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.phone(name, "", nil)
			if err == nil && res.EndReason != wire.ReasonSuccess {
				err = fmt.Errorf("end reason %v", res.EndReason)
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// metricsURL starts the server with a metrics listener and returns a
// function that reads one metric's value.
func metricValue(t *testing.T, s *server, series string) string {
	t.Helper()
	m := regexp.MustCompile(`metrics: +(http://\S+)`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", s.out)
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func TestConcurrencyLimit(t *testing.T) {
	s := startServer(t, serverParams{"max_concurrent_operations": 2, "retry_delay": "7s"}, "", "--metrics-listen", "127.0.0.1:0")
	slow := make([]string, 2)
	var wg sync.WaitGroup
	for i := range slow {
		slow[i] = newPhoneName()
		s.mustCapf("device", "add", slow[i], "--operation", "install", "--key", "ec256")
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			res, err := s.phone(name, "", func(o *phonesim.Options) { o.KeygenDelay, o.ProgressInterval = 3*time.Second, 500*time.Millisecond })
			if err != nil || res.EndReason != wire.ReasonSuccess {
				t.Errorf("slow phone %s: %+v %v", name, res, err)
			}
		}(slow[i])
	}
	// Wait until both hold their slot, generating keys.
	waitMetric(t, s, "capf_sessions_waiting_for_key", "2")
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
	res, err := s.phone(name, "", func(o *phonesim.Options) { o.Retries = -1 })
	if !errors.Is(err, phonesim.ErrRetryLater) || res.RetryLaterCount != 1 {
		t.Fatalf("third phone: %+v %v, want RETRY_LATER", res, err)
	}
	if got := s.device(name).Status; got != "Operation Pending" {
		t.Errorf("a refused phone changed status to %q", got)
	}
	waitMetric(t, s, `capf_retry_later_total{reason="busy"}`, "1")
	lastContact(t, s, name, "retry-later", "max_concurrent_operations reached", "retry in 7 s")
	waitMetric(t, s, "capf_contacts_recorded_total", "1")
	wg.Wait()
	// Slots are free again.
	res, err = s.phone(name, "", nil)
	if err != nil || res.EndReason != wire.ReasonSuccess {
		t.Fatalf("after the slow phones: %+v %v", res, err)
	}
	waitMetric(t, s, `capf_sessions_total{operation="install",outcome="success"}`, "3")
}

// waitMetric waits until a series has the wanted value: a session is
// counted just after its last message is written, so the phone may see the
// end first.
func waitMetric(t *testing.T, s *server, series, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricValue(t, s, series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %q", series, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaintenanceWindow(t *testing.T) {
	// A window that is closed now: an hour starting six hours from now (UTC).
	start := time.Now().UTC().Add(6 * time.Hour)
	window := fmt.Sprintf("%02d:00-%02d:59", start.Hour(), start.Hour())
	s := startServer(t, serverParams{"maintenance_windows": []string{window}, "maintenance_time_zone": "UTC"}, "")
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
	res, err := s.phone(name, "", func(o *phonesim.Options) { o.Retries = -1 })
	if !errors.Is(err, phonesim.ErrRetryLater) || res.Installed != nil {
		t.Fatalf("outside the window: %+v %v, want RETRY_LATER", res, err)
	}
	if d := s.device(name); d.Status != "Operation Pending" || d.Operation != "install" {
		t.Fatalf("device %+v", d)
	}
	lastContact(t, s, name, "retry-later", "outside the maintenance windows; next opens "+start.Truncate(time.Hour).Format(time.RFC3339))
	// A phone with nothing pending is answered as usual.
	other := newPhoneName()
	s.mustCapf("device", "add", other)
	if res, err := s.phone(other, "", nil); err != nil || res.EndReason != wire.ReasonNoAction {
		t.Fatalf("no pending operation: %+v %v", res, err)
	}
	lastContact(t, s, other, "no-action", "No Pending Operation")
}
