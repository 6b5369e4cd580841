package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sessionClient is a script's HTTPS client from the local address src that
// keeps cookies and does not follow redirects.
func sessionClient(t *testing.T, src string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{
		Jar:     jar,
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test's own admin CA; TLS is tested elsewhere
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// csrfOf returns the anti-forgery token of the page at path.
func csrfOf(t *testing.T, c *http.Client, base, path string) string {
	t.Helper()
	resp, err := c.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("GET %s: no CSRF token in the page (status %d)", path, resp.StatusCode)
	}
	return string(m[1])
}

// fetch sends a GET and returns the status, the Location and the body.
func fetch(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// filler is n bytes made as they are read, counted.
type filler struct {
	left int64
	read atomic.Int64
}

func (f *filler) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.left))
	for i := range p[:n] {
		p[i] = 'x'
	}
	f.left -= int64(n)
	f.read.Add(int64(n))
	return n, nil
}

// TestAdminListenerAttacks runs the admin listener's attacks of issue 13
// against the real `capf serve`, as a malicious viewer and a stranger
// would: the Bulk page's count is no oracle for a string, the login's next
// does not leave the site, /metrics needs a login, and a viewer's 200 MB
// upload is refused without being read.
func TestAdminListenerAttacks(t *testing.T) {
	s := startServer(t, nil, "")
	base := adminURL(t, s)
	const phone, secret, wrong = "SEP00000000A001", "73519046", "73519047"
	s.mustCapf("device", "add", phone, "--auth-mode", "string", "--auth-string", secret, "--operation", "install")
	pw := strings.TrimSpace(s.mustCapf("admin", "add", "victor", "--role", "viewer"))

	viewer := sessionClient(t, "127.0.0.1")
	resp, err := viewer.PostForm(base+"/login", url.Values{"username": {"victor"}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the viewer's login: status %d", resp.StatusCode)
	}

	t.Run("count-is-no-oracle", func(t *testing.T) {
		// Before: GET /bulk?where=auth-string:equals:N showed "1 phone" for
		// the right N and "0 phones" for any other: 64 requests for 8 digits.
		for _, path := range []string{"/bulk?where=", "/phones?where=", "/report.csv?where=", "/api/v1/devices?where="} {
			right, _, rb := fetch(t, viewer, base+path+url.QueryEscape("auth-string:equals:"+secret))
			other, _, ob := fetch(t, viewer, base+path+url.QueryEscape("auth-string:equals:"+wrong))
			if right != http.StatusForbidden || other != http.StatusForbidden {
				t.Errorf("%s…: status %d for the right string, %d for a wrong one; want 403 for both", path, right, other)
			}
			if strings.ReplaceAll(rb, secret, "S") != strings.ReplaceAll(ob, wrong, "S") {
				t.Errorf("%s…: the answers differ between the right and a wrong string", path)
			}
			if strings.Contains(rb, secret) {
				t.Errorf("%s…: the answer shows the string", path)
			}
		}
	})

	t.Run("login-next-stays-on-site", func(t *testing.T) {
		for _, next := range []string{"/\t/evil.example/", "//evil.example/", "/\\evil.example/", "https://evil.example/"} {
			// Logged in: the login page sends on to next at once.
			code, loc, _ := fetch(t, viewer, base+"/login?next="+url.QueryEscape(next))
			if code != http.StatusSeeOther || loc != "/" {
				t.Errorf("GET /login?next=%q: %d Location %q, want 303 to /", next, code, loc)
			}
			// The login form's next, from a stranger's login.
			resp, err := loginClient("127.0.0.2").PostForm(base+"/login", url.Values{"username": {"victor"}, "password": {pw}, "next": {next}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
				t.Errorf("POST /login next=%q: %d Location %q, want 303 to /", next, resp.StatusCode, loc)
			}
		}
	})

	t.Run("metrics-needs-a-login", func(t *testing.T) {
		stranger := loginClient("127.0.0.4")
		code, _, body := fetch(t, stranger, base+"/metrics")
		if code != http.StatusUnauthorized || strings.Contains(body, "go_info") {
			t.Errorf("/metrics for a stranger: %d, want 401 without metrics", code)
		}
		code, _, body = fetch(t, viewer, base+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, "capf_") {
			t.Errorf("/metrics for the viewer: %d, want 200 with the metrics", code)
		}
		resp, err := stranger.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("/healthz: %d, headers %v; want 200 with the security headers", resp.StatusCode, resp.Header)
		}
	})

	t.Run("viewer-upload-refused-unread", func(t *testing.T) {
		token := csrfOf(t, viewer, base, "/phones")
		const size = 200 << 20
		var head bytes.Buffer
		mw := multipart.NewWriter(&head)
		_ = mw.WriteField("csrf", token)
		_, _ = mw.CreateFormFile("file", "phones.csv")
		// A raw TLS connection: the upload goes on in its own goroutine while
		// the answer is read, as a browser would go on sending.
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", u.Host, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
		var cookies []string
		for _, c := range viewer.Jar.Cookies(u) {
			cookies = append(cookies, c.Name+"="+c.Value)
		}
		body := &filler{left: size}
		upload := io.MultiReader(&head, body, strings.NewReader("\r\n--"+mw.Boundary()+"--\r\n"))
		start := time.Now()
		written := make(chan struct{})
		go func() {
			defer close(written)
			hdr := "POST /import HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: " + mw.FormDataContentType() +
				"\r\nCookie: " + strings.Join(cookies, "; ") + "\r\nTransfer-Encoding: chunked\r\n\r\n"
			if _, err := io.WriteString(conn, hdr); err != nil {
				return
			}
			cw := httputil.NewChunkedWriter(conn)
			if _, err := io.Copy(cw, upload); err != nil {
				return // the server closed: what it did not read is not sent
			}
			_ = cw.Close()
			_, _ = io.WriteString(conn, "\r\n")
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer to the upload: %v (%d KiB sent)", err, body.read.Load()>>10)
		}
		resp.Body.Close()
		elapsed := time.Since(start)
		conn.Close()
		<-written
		sent := body.read.Load()
		t.Logf("a viewer's %d MB upload: %d after %v, %d KiB of it sent (socket buffers included)", size>>20, resp.StatusCode, elapsed.Round(time.Millisecond), sent>>10)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403", resp.StatusCode)
		}
		// The server reads at most its 64 KiB scan; the rest of what the
		// client managed to send sat in the loopback's socket buffers.
		if sent > 32<<20 {
			t.Errorf("%d MB of the upload were sent before the refusal: the server read it", sent>>20)
		}
	})
}
