package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/admintls"
)

// adminFrom is an HTTPS client of the admin listener that connects from
// the loopback address src, trusts only the admin CA, keeps its cookies,
// does not follow redirects and gives up on a connection or an answer's
// header after 3 s (a server that leaves it in the backlog fails fast).
func adminFrom(t *testing.T, data, src string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(admintls.Dir(data), admintls.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("the admin CA file holds no certificate")
	}
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 3 * time.Second}
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool},
			TLSHandshakeTimeout: 3 * time.Second, ResponseHeaderTimeout: 3 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// adminLogin logs in as user and returns the session's CSRF token (from
// the dashboard's logout form) and how long the login and the dashboard
// took.
func adminLogin(t *testing.T, c *http.Client, base, user, pass string) (csrf string, took time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := c.PostForm(base+"/login", url.Values{"username": {user}, "password": {pass}})
	if err != nil {
		t.Fatalf("login as %s: %v (after %v)", user, err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as %s: %d", user, resp.StatusCode)
	}
	resp, err = c.Get(base + "/")
	if err != nil {
		t.Fatalf("dashboard of %s: %v", user, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took = time.Since(start)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("dashboard of %s: %d, no CSRF token", user, resp.StatusCode)
	}
	return string(m[1]), took
}

// healthzFrom times GET /healthz on a new connection from src.
func healthzFrom(t *testing.T, data, base, src string) time.Duration {
	t.Helper()
	start := time.Now()
	resp, err := adminFrom(t, data, src).Get(base + "/healthz")
	if err != nil {
		t.Fatalf("/healthz from %s: %v (after %v)", src, err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz from %s: %d", src, resp.StatusCode)
	}
	return time.Since(start)
}

// flooder holds connections open to the admin listener and closes them
// all when the test ends.
type flooder struct {
	t     *testing.T
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func (f *flooder) keep(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, c)
}

func (f *flooder) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}

// silent opens n TCP connections from src that never start TLS; a
// connection the server leaves in its backlog still counts as opened.
func (f *flooder) silent(src string, n int) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	for range n {
		c, err := d.Dial("tcp", f.addr)
		if err != nil {
			f.t.Fatalf("dial from %s: %v", src, err)
		}
		f.keep(c)
	}
}

// idle opens n TLS connections from src, 32 at a time, each sending one
// keep-alive request and then nothing; it returns how many got an answer.
func (f *flooder) idle(src string, n int) (answered int) {
	var ok atomic.Int64
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
			raw, err := d.Dial("tcp", f.addr)
			if err != nil {
				return
			}
			f.keep(raw)
			tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true}) // the attacker does not care whom it talks to
			_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.WriteString(tc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok.Add(1)
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// TestAdminListenerFlood runs the real binary and floods its admin
// listener from outside, as anyone who can reach the port can: idle
// keep-alive connections and connections that never start TLS, from one
// address and from 32, while a second stream of silent connections keeps
// coming. The real administrator, from another address, still logs in
// and gets /healthz within 2 s each. Then a viewer opens 64 live status
// streams: at most 4 are served, and the administrator still gets in.
// After the viewer logs out, its open streams end within seconds.
func TestAdminListenerFlood(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	b := startBinary(t, bin, data, true)
	base := "https://" + b.admin
	if out, err := b.run(bin, "device", "add", "SEP00000000AD01"); err != nil {
		t.Fatalf("device add: %v\n%s", err, out)
	}
	viewerPass := "the viewer's long password"
	add := exec.Command(bin, "admin", "add", "victor", "--role", "viewer", "--password-stdin")
	add.Env, add.Stdin = b.env, strings.NewReader(viewerPass+"\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("admin add: %v\n%s", err, out)
	}
	pw, err := os.ReadFile(filepath.Join(data, "admin-initial-password"))
	if err != nil {
		t.Fatal(err)
	}
	adminPass := strings.TrimSpace(string(pw))

	f := &flooder{t: t, addr: b.admin}
	defer f.closeAll()
	start := time.Now()
	answered := f.idle("127.0.0.1", 200)
	f.silent("127.0.0.1", 300)
	for i := range 32 {
		f.silent(fmt.Sprintf("127.0.1.%d", i+1), 16)
	}
	t.Logf("flood: 200 keep-alive connections (%d answered), 300 silent ones from 127.0.0.1 and 512 from 32 other addresses, opened in %v",
		answered, time.Since(start).Round(time.Millisecond))
	// And it goes on: silent connections from 32 addresses, one every
	// 2 ms, while the administrator logs in.
	stop := make(chan struct{})
	var going sync.WaitGroup
	going.Add(1)
	go func() {
		defer going.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.2.%d", 1+i%32))}, Timeout: time.Second}
			if c, err := d.Dial("tcp", b.admin); err == nil {
				f.keep(c)
			}
		}
	}()
	admin := adminFrom(t, data, "127.0.0.2")
	_, took := adminLogin(t, admin, base, "admin", adminPass)
	health := healthzFrom(t, data, base, "127.0.0.2")
	close(stop)
	going.Wait()
	t.Logf("during the flood: the administrator logged in and loaded the dashboard in %v; /healthz on a new connection in %v",
		took.Round(time.Millisecond), health.Round(time.Millisecond))
	if took > 2*time.Second || health > 2*time.Second {
		t.Fatalf("the administrator waited %v to log in, %v for /healthz: want under 2 s", took, health)
	}
	f.closeAll()

	// A viewer's live status streams: 64 at once from one address.
	viewer := adminFrom(t, data, "127.0.0.3")
	csrf, _ := adminLogin(t, viewer, base, "victor", viewerPass)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type stream struct {
		code int
		body io.ReadCloser
	}
	results := make(chan stream, 64)
	for range 64 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/phones/SEP00000000AD01/events", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := viewer.Do(req)
			if err != nil {
				results <- stream{}
				return
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				resp.Body = nil
			}
			results <- stream{code: resp.StatusCode, body: resp.Body}
		}()
	}
	var open []io.ReadCloser
	counts := map[int]int{}
	for range 64 {
		s := <-results
		counts[s.code]++
		if s.body != nil {
			open = append(open, s.body)
		}
	}
	t.Logf("64 live status streams of one viewer session: %d served, %d refused with 429, %d connections refused", counts[200], counts[429], counts[0])
	if len(open) == 0 || len(open) > 4 {
		t.Fatalf("%d streams served, want 1..4", len(open))
	}
	_, took = adminLogin(t, adminFrom(t, data, "127.0.0.2"), base, "admin", adminPass)
	if took > 2*time.Second {
		t.Fatalf("with the viewer's streams open the administrator waited %v to log in", took)
	}
	t.Logf("with the viewer's streams open: the administrator logged in in %v", took.Round(time.Millisecond))

	// Logout ends the open streams.
	ended := make(chan struct{}, len(open))
	for _, body := range open {
		go func() {
			_, _ = io.Copy(io.Discard, body)
			ended <- struct{}{}
		}()
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/logout", nil)
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := viewer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	loggedOut := time.Now()
	for range open {
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("a live status stream went on 10 s after its session's logout")
		}
	}
	t.Logf("after logout the viewer's %d streams ended within %v", len(open), time.Since(loggedOut).Round(time.Millisecond))
}
