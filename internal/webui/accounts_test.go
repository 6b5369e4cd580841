package webui_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// accountsEnv is a UI whose Accounts and API Tokens pages run over a
// real account service and SQLite store holding alice (admin, the test
// admin principal's account) and victor (viewer).
type accountsEnv struct {
	*env
	svc   *account.Service
	store *sqlite.Store
}

func newAccountsEnv(t *testing.T) *accountsEnv {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"), sqlite.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := account.NewService(account.Options{Store: st, Now: func() time.Time { return testNow },
		Password: account.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	for _, a := range []struct {
		name string
		role account.Role
	}{{"alice", account.RoleAdmin}, {"victor", account.RoleViewer}} {
		if _, err := svc.AddAccount(context.Background(), device.CLIActor("test"), a.name, a.role, "a long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, func(o *webui.Options) { o.AccountAdmin = svc })
	return &accountsEnv{env: e, svc: svc, store: st}
}

// audits returns the account and token audit events on target.
func (e *accountsEnv) audits(target string) []device.AuditEvent {
	e.t.Helper()
	evs, err := e.store.ListAudit(context.Background(), device.AuditQuery{Target: target})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *accountsEnv) account(name string) (account.Account, bool) {
	e.t.Helper()
	as, err := e.svc.Accounts(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range as {
		if a.Name == name {
			return a, true
		}
	}
	return account.Account{}, false
}

func TestAccountsPage(t *testing.T) {
	e := newAccountsEnv(t)
	w := e.get("/system/accounts", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="account-alice"`, `id="account-victor"`, "(you)", "never", "Times in UTC", `action="/system/accounts/victor/role"`,
		`href="/system/accounts" aria-current="page"`)

	// Add with a given password: audited, no secret on the page.
	w = e.post("/system/accounts", "admin", url.Values{"name": {"carol"}, "role": {"viewer"}, "password": {"carol's long password"}})
	wantRedirect(t, w, "/system/accounts?done=added")
	if a, ok := e.account("carol"); !ok || a.Role != account.RoleViewer {
		t.Fatalf("carol = %+v, %v", a, ok)
	}
	if evs := e.audits("carol"); len(evs) != 1 || evs[0].Action != account.AuditAccountCreate || evs[0].Actor.String() != "web:alice" {
		t.Errorf("audit of the add: %+v", evs)
	}

	// Add with a generated password: shown once, not cached.
	w = e.post("/system/accounts", "admin", url.Values{"name": {"dave"}, "role": {"admin"}})
	wantStatus(t, w, http.StatusOK)
	pw := regexp.MustCompile(`id="secret">([A-Za-z0-9]{20})<`).FindStringSubmatch(w.Body.String())
	if pw == nil {
		t.Fatalf("no generated password shown:\n%s", w.Body.String())
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	if _, err := e.svc.Login(context.Background(), "dave", pw[1], "192.0.2.9"); err != nil {
		t.Errorf("the shown password does not log in: %v", err)
	}
	wantNoBody(t, e.get("/system/accounts", "admin"), pw[1])

	// A bad form names the field and changes nothing.
	w = e.post("/system/accounts", "admin", url.Values{"name": {"erin"}, "role": {"viewer"}, "password": {"short"}})
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "at least 12 characters", `value="erin"`)
	if _, ok := e.account("erin"); ok {
		t.Error("erin added with a short password")
	}

	// Role, password, removal.
	wantRedirect(t, e.post("/system/accounts/carol/role", "admin", url.Values{"role": {"admin"}}), "/system/accounts?done=role")
	if a, _ := e.account("carol"); a.Role != account.RoleAdmin {
		t.Errorf("carol's role %s", a.Role)
	}
	w = e.post("/system/accounts/carol/password", "admin", url.Values{})
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "New password of carol", `id="secret"`)
	wantRedirect(t, e.post("/system/accounts/carol/password", "admin", url.Values{"password": {"another long password"}}), "/system/accounts?done=password")
	if _, err := e.svc.Login(context.Background(), "carol", "another long password", "192.0.2.9"); err != nil {
		t.Errorf("the given password does not log in: %v", err)
	}
	w = e.post("/system/accounts/carol/delete", "admin", nil)
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "Remove account carol?", `name="confirm" value="yes"`)
	if _, ok := e.account("carol"); !ok {
		t.Fatal("removed without confirmation")
	}
	wantRedirect(t, e.post("/system/accounts/carol/delete", "admin", url.Values{"confirm": {"yes"}}), "/system/accounts?done=removed")
	if _, ok := e.account("carol"); ok {
		t.Error("carol not removed")
	}
	var actions []string
	for _, ev := range e.audits("carol") {
		if ev.Actor.String() != "web:alice" || ev.Actor.Remote != "192.0.2.1" {
			t.Errorf("event %s by %v", ev.Action, ev.Actor)
		}
		actions = append(actions, ev.Action)
		if strings.Contains(ev.Detail, "another long password") {
			t.Error("the audit holds the password")
		}
	}
	want := []string{account.AuditAccountCreate, account.AuditAccountRole, account.AuditAccountPassword, account.AuditAccountPassword, account.AuditAccountDelete}
	if !sameSet(actions, want) {
		t.Errorf("audit actions %v, want %v", actions, want)
	}
}

// sameSet reports whether a and b hold the same strings as many times,
// in any order (the audit list is newest first).
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	n := map[string]int{}
	for _, s := range a {
		n[s]++
	}
	for _, s := range b {
		n[s]--
	}
	for _, c := range n {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestLastAdminRefused: the account service refuses to demote or remove
// the last admin; the page says why, and nothing changes or is audited.
func TestLastAdminRefused(t *testing.T) {
	e := newAccountsEnv(t)
	before := len(e.audits("alice"))
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/system/accounts/alice/role", url.Values{"role": {"viewer"}}},
		{"/system/accounts/alice/delete", url.Values{"confirm": {"yes"}}},
		{"/system/accounts/alice/disable", url.Values{}},
	} {
		w := e.post(tt.path, "admin", tt.form)
		wantStatus(t, w, http.StatusConflict)
		wantBody(t, w, "is the last", `id="form-error"`)
	}
	if a, ok := e.account("alice"); !ok || a.Role != account.RoleAdmin || a.Disabled() {
		t.Errorf("alice = %+v, %v", a, ok)
	}
	if n := len(e.audits("alice")); n != before {
		t.Errorf("%d audit events, want %d", n, before)
	}
}

func TestTokensPage(t *testing.T) {
	e := newAccountsEnv(t)
	if _, _, err := e.svc.CreateToken(context.Background(), device.CLIActor("root"), "", "backup-job", account.RoleAdmin, 0); err != nil {
		t.Fatal(err)
	}
	w := e.get("/system/tokens", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="token-backup-job"`, "service token", "by cli:root", "never", "Times in UTC", "your account, alice")

	w = e.post("/system/tokens", "admin", url.Values{"name": {"monitor"}, "role": {"viewer"}, "expires": {"30d"}})
	wantStatus(t, w, http.StatusCreated)
	m := regexp.MustCompile(`id="secret">(capf_[A-Za-z0-9_-]+)<`).FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no secret shown:\n%s", w.Body.String())
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
	}
	tok, err := e.svc.Authenticate(context.Background(), m[1])
	if err != nil || tok.Owner != "alice" || tok.Role != account.RoleViewer || !tok.ExpiresAt.Equal(testNow.Add(30*24*time.Hour)) {
		t.Fatalf("token %+v, %v", tok, err)
	}
	w = e.get("/system/tokens", "admin")
	wantBody(t, w, `id="token-monitor"`, "2026-12-25 12:00:00 UTC")
	wantNoBody(t, w, m[1])
	if evs := e.audits("monitor"); len(evs) != 1 || evs[0].Action != account.AuditTokenCreate || strings.Contains(evs[0].Detail, m[1]) {
		t.Errorf("audit of the token: %+v", evs)
	}

	// Bad input names its field.
	w = e.post("/system/tokens", "admin", url.Values{"name": {"x"}, "role": {"viewer"}, "expires": {"forever"}})
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "lifetime", `value="forever"`)

	// Revoke asks first, then revokes and audits.
	wantBody(t, e.post("/system/tokens/monitor/revoke", "admin", nil), "Revoke API token monitor?")
	wantRedirect(t, e.post("/system/tokens/monitor/revoke", "admin", url.Values{"confirm": {"yes"}}), "/system/tokens?done=revoked")
	if _, err := e.svc.Authenticate(context.Background(), m[1]); err == nil {
		t.Error("revoked token still authenticates")
	}
	if evs := e.audits("monitor"); len(evs) != 2 || evs[0].Action != account.AuditTokenRevoke {
		t.Errorf("audit of the revocation: %+v", evs)
	}
}

// TestTokenCappedAtOwnerRole: the service refuses an admin token to an
// account that is a viewer (here, alice after a demotion, whose session
// still says admin).
func TestTokenCappedAtOwnerRole(t *testing.T) {
	e := newAccountsEnv(t)
	ctx := context.Background()
	if _, err := e.svc.SetRole(ctx, device.CLIActor("t"), "victor", account.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetRole(ctx, device.CLIActor("t"), "alice", account.RoleViewer); err != nil {
		t.Fatal(err)
	}
	w := e.post("/system/tokens", "admin", url.Values{"name": {"ci"}, "role": {"admin"}, "expires": {"1d"}})
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, "above the viewer role of its owner alice")
	if ts, _ := e.svc.Tokens(ctx); len(ts) != 0 {
		t.Errorf("tokens %+v", ts)
	}
}

// TestAccountPagesRefusedToViewers: a viewer can neither read nor change
// accounts or tokens; nothing changes and the nav does not offer them.
func TestAccountPagesRefusedToViewers(t *testing.T) {
	e := newAccountsEnv(t)
	for _, p := range []string{"/system/accounts", "/system/tokens"} {
		w := e.get(p, "viewer")
		wantStatus(t, w, http.StatusForbidden)
		wantBody(t, w, "victor has the viewer role")
	}
	wantNoBody(t, e.get("/", "viewer"), `href="/system/accounts"`, `href="/system/tokens"`)
	posts := map[string]url.Values{
		"/system/accounts":                {"name": {"mallory"}, "role": {"admin"}, "password": {"mallory's password"}},
		"/system/accounts/victor/role":    {"role": {"admin"}},
		"/system/accounts/alice/password": {"password": {"mallory's password"}},
		"/system/accounts/alice/delete":   {"confirm": {"yes"}},
		"/system/accounts/alice/disable":  {},
		"/system/tokens":                  {"name": {"m"}, "role": {"viewer"}, "expires": {"1d"}},
		"/system/tokens/x/revoke":         {"confirm": {"yes"}},
	}
	for path, f := range posts {
		w := e.post(path, "viewer", f)
		wantStatus(t, w, http.StatusForbidden)
		wantBody(t, w, "victor has the viewer role")
	}
	as, _ := e.svc.Accounts(context.Background())
	ts, _ := e.svc.Tokens(context.Background())
	if len(as) != 2 || len(ts) != 0 {
		t.Errorf("a viewer changed accounts or tokens: %+v %+v", as, ts)
	}
	if a, _ := e.account("victor"); a.Role != account.RoleViewer {
		t.Error("victor promoted himself")
	}
	if _, err := e.svc.Login(context.Background(), "alice", "a long enough password", "192.0.2.9"); err != nil {
		t.Errorf("alice's password changed: %v", err)
	}
}

// TestAccountFormsNeedCSRFToken: an admin's form without the session's
// anti-forgery token changes nothing.
func TestAccountFormsNeedCSRFToken(t *testing.T) {
	e := newAccountsEnv(t)
	posts := map[string]url.Values{
		"/system/accounts":                {"name": {"mallory"}, "role": {"admin"}, "password": {"mallory's password"}},
		"/system/accounts/victor/role":    {"role": {"admin"}},
		"/system/accounts/victor/delete":  {"confirm": {"yes"}},
		"/system/accounts/victor/disable": {},
		"/system/tokens":                  {"name": {"m"}, "role": {"admin"}, "expires": {"1d"}},
	}
	for path, f := range posts {
		f.Set(webauth.CSRFField, "forged")
		w := e.post(path, "admin", f)
		wantStatus(t, w, http.StatusForbidden)
		wantBody(t, w, "anti-forgery token")
	}
	as, _ := e.svc.Accounts(context.Background())
	ts, _ := e.svc.Tokens(context.Background())
	if len(as) != 2 || len(ts) != 0 {
		t.Errorf("a forged form changed accounts or tokens: %+v %+v", as, ts)
	}
	if a, _ := e.account("victor"); a.Role != account.RoleViewer || a.Disabled() {
		t.Error("victor promoted or disabled by a forged form")
	}
}

// TestAccountPagesWithoutService: without an account service the pages
// say so rather than fail.
func TestAccountPagesWithoutService(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.get("/system/accounts", "admin"), http.StatusServiceUnavailable)
	wantStatus(t, e.get("/system/tokens", "admin"), http.StatusServiceUnavailable)
}

// TestOwnPasswordResetLogsOut: the administrator's own new password ends
// their session, so the page sends them to log in; an unknown account is
// a 404 on the Accounts page.
func TestOwnPasswordResetLogsOut(t *testing.T) {
	e := newAccountsEnv(t)
	wantRedirect(t, e.post("/system/accounts/alice/password", "admin", url.Values{"password": {"alice's new password"}}), "/login")
	if _, err := e.svc.Login(context.Background(), "alice", "alice's new password", "192.0.2.9"); err != nil {
		t.Errorf("new password: %v", err)
	}
	w := e.post("/system/accounts/nobody/role", "admin", url.Values{"role": {"admin"}})
	wantStatus(t, w, http.StatusNotFound)
	wantBody(t, w, `id="form-error"`, `id="account-alice"`)
}

// TestDisableAccountPage: an administrator disables victor from the
// Accounts page (his session ends, the page says so and offers Enable),
// then enables him again; disabling oneself logs one out.
func TestDisableAccountPage(t *testing.T) {
	e := newAccountsEnv(t)
	ctx := context.Background()
	sess, err := e.svc.Login(ctx, "victor", "a long enough password", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateToken(ctx, device.CLIActor("test"), "victor", "victor-ci", account.RoleViewer, 0); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, e.post("/system/accounts/victor/disable", "admin", url.Values{}), "/system/accounts?done=disabled")
	wantBody(t, e.get("/system/tokens", "admin"), "viewer (acts with no role: its owner is disabled)")
	if a, _ := e.account("victor"); !a.Disabled() {
		t.Fatalf("victor = %+v, want disabled", a)
	}
	if _, err := e.svc.Session(ctx, sess.ID); err == nil {
		t.Error("victor's session survived his account's disabling")
	}
	w := e.get("/system/accounts?done=disabled", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "Account disabled", `id="disabled-victor"`, `action="/system/accounts/victor/enable"`, `action="/system/accounts/alice/disable"`)
	wantRedirect(t, e.post("/system/accounts/victor/enable", "admin", url.Values{}), "/system/accounts?done=enabled")
	if a, _ := e.account("victor"); a.Disabled() {
		t.Fatalf("victor = %+v, want enabled", a)
	}
	if _, err := e.svc.Login(ctx, "victor", "a long enough password", "192.0.2.9"); err != nil {
		t.Errorf("victor after enabling: %v", err)
	}
	n := map[string]int{}
	for _, ev := range e.audits("victor") {
		n[ev.Action]++
	}
	if n[account.AuditAccountDisable] != 1 || n[account.AuditAccountEnable] != 1 {
		t.Errorf("audit of victor: %v", n)
	}
	w = e.post("/system/accounts/nobody/disable", "admin", url.Values{})
	wantStatus(t, w, http.StatusNotFound)

	// With victor an admin too, alice may disable herself, and is logged out.
	if _, err := e.svc.SetRole(ctx, device.CLIActor("test"), "victor", account.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, e.post("/system/accounts/alice/disable", "admin", url.Values{}), "/login")
}
