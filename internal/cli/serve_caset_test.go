package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/webauth"
)

// TestAdminListenerChangesTheCASet drives the admin listener as serve
// composes it (real middleware, CSRF, account service, SQLite store and
// the CLI's key maker): an administrator regenerates through the API (the
// key lands under DATA/ca/ID) and activates from the web UI; the API's
// CAPF certificate is then the new one and capf ca status agrees; a
// viewer and a request without its anti-forgery token change nothing.
func TestAdminListenerChangesTheCASet(t *testing.T) {
	data := initData(t)
	st, err := sqlite.Open(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	ctx := t.Context()
	srv, login := adminListener(t, g, st)
	alice, victor := login("alice", account.RoleAdmin), login("victor", account.RoleViewer)
	apiPost := func(s account.Session, csrf bool, path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if csrf {
			req.Header.Set("X-CSRF-Token", s.CSRF)
		}
		req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: s.ID})
		return send(t, req)
	}
	status := func() map[string]caset.State {
		t.Helper()
		out, errOut, code := run(t, data, "ca", "status", "--json")
		var rows []caset.Row
		if code != ExitOK || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("ca status: exit %d %s%s", code, out, errOut)
		}
		m := map[string]caset.State{}
		for _, r := range rows {
			m[r.ID] = r.State
		}
		return m
	}
	first := ""
	for id := range status() {
		first = id
	}

	if code, out := apiPost(alice, false, "/ca-set", map[string]string{"key_algorithm": "ec256"}); code != http.StatusForbidden {
		t.Fatalf("regenerate without the anti-forgery token: %d %s", code, out)
	}
	if code, out := apiPost(victor, true, "/ca-set", map[string]string{"key_algorithm": "ec256"}); code != http.StatusForbidden {
		t.Fatalf("regenerate as a viewer: %d %s", code, out)
	}
	if st := status(); len(st) != 1 {
		t.Fatalf("refused requests changed the set: %v", st)
	}
	code, out := apiPost(alice, true, "/ca-set", map[string]string{"key_algorithm": "ec256"})
	if code != http.StatusOK {
		t.Fatalf("regenerate: %d %s", code, out)
	}
	second := ""
	for id, s := range status() {
		if s == caset.Staged {
			second = id
		}
	}
	if fi, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), second, "capf.key")); second == "" || err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the staged CA %q: key file %v", second, err)
	}

	form := url.Values{"id": {second}, webauth.CSRFField: {alice.CSRF}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/security/certificate/activate", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
	if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, `id="ca-`+second+`"`) { // the redirect is followed to the page
		t.Fatalf("activate from the UI: %d %.400s", code, out)
	}
	if st := status(); st[second] != caset.Active || st[first] != caset.Retiring {
		t.Fatalf("after activate: %v", st)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/api/v1/capf-certificate/file?format=der", nil)
	req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: victor.ID})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	der := new(bytes.Buffer)
	_, _ = der.ReadFrom(resp.Body)
	resp.Body.Close()
	cfg, err := g.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	adm := g.serveCAAdmin(st, cfg)
	active, err := adm.Certificate(ctx, "")
	if err != nil || !bytes.Equal(der.Bytes(), active.Raw) || mustKeyID(active) != second {
		t.Fatalf("the API's CAPF certificate is not the newly active CA (%v)", err)
	}
	// A browser session acts as web:NAME, through the API too.
	all, err := st.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, ev := range all {
		if ev.Action != "ca.export" {
			evs = append(evs, ev.Action+" "+ev.Target+" "+ev.Actor.String())
		}
	}
	if len(evs) < 2 || evs[0] != "ca.activate "+second+" web:alice" || evs[1] != "ca.regenerate "+second+" web:alice" {
		t.Errorf("audit %q, want the regeneration and the activation by web:alice", evs)
	}
}

// adminListener serves the admin listener as serve composes it over st
// (real middleware and CSRF, an account service with a cheap Argon2id, the
// CLI's CA administration for g, after adopting the CAPF certificate as
// serve does at start) until the test ends. login adds an account of a
// role and logs it in.
func adminListener(t *testing.T, g *globals, st store.Store) (srv *httptest.Server, login func(name string, role account.Role) account.Session) {
	t.Helper()
	ctx := t.Context()
	if err := g.adoptLegacy(ctx, st); err != nil {
		t.Fatal(err)
	}
	cfg, err := g.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	accounts := account.NewService(account.Options{Store: st, Password: account.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	devices := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec("rsa2048")})
	srv = httptest.NewServer(adminServices{devices: devices, accounts: accounts, caSet: g.serveCAAdmin(st, cfg)}.handler(adminhttp.Options{Gatherer: prometheus.NewRegistry()}))
	t.Cleanup(srv.Close)
	const pw = "a long enough password"
	return srv, func(name string, role account.Role) account.Session {
		t.Helper()
		if _, err := accounts.AddAccount(ctx, device.CLIActor("root"), name, role, pw); err != nil {
			t.Fatal(err)
		}
		s, err := accounts.Login(ctx, name, pw, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}
