package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/webauth"
)

// TestTokenOfRemovedAdmin runs the attack against `capf serve`: an
// administrator logs in, makes herself an API token, and is demoted, then
// removed, with the CLI while the server runs. Her token loses its writes
// with the demotion and stops working with the removal; a service token
// made with the CLI keeps working. The admin listener is reached over TLS
// trusting only the admin CA, which is name-constrained.
func TestTokenOfRemovedAdmin(t *testing.T) {
	s := startServer(t, nil, "")
	base := adminURL(t, s)
	caPEM, err := os.ReadFile(filepath.Join(s.data, "admin-tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		t.Fatal("admin CA: no PEM block")
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !ca.PermittedDNSDomainsCritical || len(ca.PermittedIPRanges) == 0 {
		t.Fatalf("admin CA: %v, constraints critical %v, IP ranges %v", err, ca.PermittedDNSDomainsCritical, ca.PermittedIPRanges)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	pw := strings.TrimSpace(s.mustCapf("admin", "add", "alice", "--role", "admin"))
	resp, err := c.PostForm(base+"/login", url.Values{"username": {"alice"}, "password": {pw}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == webauth.CookieName {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatalf("alice's login: %d, no session cookie", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.AddCookie(cookie)
	_, page := tokenTestDo(t, c, req)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no anti-forgery token in the page:\n%s", page)
	}
	body, _ := json.Marshal(map[string]string{"name": "alice-laptop", "role": "admin", "expires": "0"})
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webauth.CSRFHeader, m[1])
	req.AddCookie(cookie)
	code, out := tokenTestDo(t, c, req)
	var tok struct{ Token string }
	if json.Unmarshal([]byte(out), &tok); code != http.StatusCreated || tok.Token == "" {
		t.Fatalf("alice creates a token: %d %s", code, out)
	}
	service := strings.TrimSpace(s.mustCapf("admin", "token", "create", "monitoring", "--role", "admin", "--expires", "0"))
	if list := s.mustCapf("admin", "token", "list"); !regexp.MustCompile(`alice-laptop\s+admin\s+alice\s`).MatchString(list) ||
		!regexp.MustCompile(`monitoring\s+admin\s+service\s`).MatchString(list) {
		t.Errorf("token list does not show the owners:\n%s", list)
	}

	// write: revoke a token that does not exist (404 for an admin, 403 for
	// a viewer, 401 for nobody), which changes nothing.
	probe := func(secret string) [2]int {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, base+"/api/v1/devices", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		read, _ := tokenTestDo(t, c, r)
		w, _ := http.NewRequest(http.MethodDelete, base+"/api/v1/tokens/no-such-token", nil)
		w.Header.Set("Authorization", "Bearer "+secret)
		write, _ := tokenTestDo(t, c, w)
		return [2]int{read, write}
	}
	steps := []struct {
		name      string
		cmd       []string
		wantAlice [2]int
	}{
		{"admin", nil, [2]int{200, 404}},
		{"demoted", []string{"admin", "role", "alice", "viewer"}, [2]int{200, 403}},
		{"removed", []string{"admin", "rm", "alice"}, [2]int{401, 401}},
	}
	for _, st := range steps {
		if st.cmd != nil {
			s.mustCapf(st.cmd...)
		}
		if got := probe(tok.Token); got != st.wantAlice {
			t.Errorf("%s: alice's token: read, write = %v, want %v", st.name, got, st.wantAlice)
		}
		if got := probe(service); got != [2]int{200, 404} {
			t.Errorf("%s: the service token: read, write = %v, want [200 404]", st.name, got)
		}
	}
}

// tokenTestDo performs req with c and returns the status and body.
func tokenTestDo(t *testing.T, c *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
