package webui_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// The principals the tests act as, by the X-Test-As header the test
// middleware reads (standing in for webauth.Middleware).
var principals = map[string]account.Principal{
	"admin":  {Kind: device.ActorWeb, Name: "alice", Role: account.RoleAdmin, Remote: "192.0.2.1", SessionID: "sess-admin", CSRF: "csrf-admin", Owner: "alice"},
	"viewer": {Kind: device.ActorWeb, Name: "victor", Role: account.RoleViewer, Remote: "192.0.2.2", SessionID: "sess-viewer", CSRF: "csrf-viewer", Owner: "victor"},
}

// fakeAccounts is an account service with one account, alice/secret,
// that throttles after three wrong passwords.
type fakeAccounts struct {
	mu       sync.Mutex
	failures int
	logouts  []string
}

func (f *fakeAccounts) Login(_ context.Context, username, password, remote string) (account.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures >= 3 {
		return account.Session{}, fault.New(fault.Throttled, "too many failed logins; try again in 42 seconds")
	}
	if username != "alice" || password != "secret" {
		f.failures++
		return account.Session{}, fault.New(fault.Unauthorized, "wrong username or password")
	}
	return account.Session{ID: "new-session", Account: "alice", Role: account.RoleAdmin, CSRF: "c", ExpiresAt: testNow.Add(time.Hour)}, nil
}

func (f *fakeAccounts) Logout(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logouts = append(f.logouts, id)
	return nil
}

// fakeSystem keeps parameters and the activation in memory, validating
// like the system service: a negative integer is refused.
type fakeSystem struct {
	mu      sync.Mutex
	params  []system.Parameter
	active  bool
	updates []map[string]any
	actor   device.Actor
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{active: true, params: []system.Parameter{
		{Name: "certificate_validity_days", Value: float64(1825), Default: float64(1825), Type: system.TypeInteger, Help: "Days an LSC is valid."},
		{Name: "listen", Value: ":3804", Default: ":3804", Type: system.TypeString, Help: "Phone listener address.", Restart: true},
		{Name: "require_sudi", Value: false, Default: false, Type: system.TypeBoolean, Help: "Refuse phones without SUDI."},
		{Name: "session_timeout", Value: "2m", Default: "2m", Type: system.TypeDuration, Help: "Longest session."},
		{Name: "trusted_issuers", Value: []any{"a", "b"}, Default: []any{}, Type: system.TypeList, Help: "Issuers."},
	}}
}

func (f *fakeSystem) Parameters(context.Context) ([]system.Parameter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]system.Parameter(nil), f.params...), nil
}

func (f *fakeSystem) UpdateParameters(_ context.Context, actor device.Actor, set map[string]any) ([]system.Parameter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := set["certificate_validity_days"].(int64); ok && v > 3650 {
		return nil, fault.InvalidField("certificate_validity_days", "certificate_validity_days %d is above the maximum 3650", v)
	}
	f.updates = append(f.updates, set)
	f.actor = actor
	for i := range f.params {
		if v, ok := set[f.params[i].Name]; ok {
			f.params[i].Value = v
		}
	}
	return f.params, nil
}

func (f *fakeSystem) Activation(context.Context) (system.Activation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return system.Activation{Active: f.active}, nil
}

func (f *fakeSystem) SetActive(_ context.Context, actor device.Actor, active bool) (system.Activation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active, f.actor = active, actor
	return system.Activation{Active: active, ChangedBy: actor.String()}, nil
}

// fakeCampaigns records what was scheduled and serves one campaign's
// progress.
type fakeCampaigns struct {
	mu        sync.Mutex
	scheduled []device.Criteria
	changes   []device.Change
	progress  device.CampaignProgress
	unknown   device.UnknownNames // the dashboard's phones that asked but are not configured
}

func (f *fakeCampaigns) Schedule(_ context.Context, _ device.Actor, c device.Criteria, ch device.Change) (device.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduled = append(f.scheduled, c)
	f.changes = append(f.changes, ch)
	return device.Campaign{ID: 7, Operation: *ch.Operation}, nil
}

func (f *fakeCampaigns) Campaigns(context.Context, int) ([]device.Campaign, error) {
	return []device.Campaign{f.progress.Campaign}, nil
}

func (f *fakeCampaigns) Campaign(_ context.Context, id int64) (device.CampaignProgress, error) {
	if id != f.progress.ID {
		return device.CampaignProgress{}, fault.NotFoundf("no campaign %d", id)
	}
	return f.progress, nil
}

func (f *fakeCampaigns) Dashboard(context.Context) (device.Dashboard, error) {
	return device.Dashboard{Devices: 3, ByStatus: []device.Count{{Value: "None", Count: 2}, {Value: "Upgrade Failed: Invalid LSC", Count: 1}},
		ByLSC: []device.Count{{Value: "none", Count: 3}}, ExpiringSoon: 0, ExpiringWeek: 5, RenewalsWaiting: 6,
		RecentFailures: []device.Attempt{{Device: "SEP000000000003", Result: "Upgrade Failed: Invalid LSC", Reason: "chain did not verify", FinishedAt: testNow}},
		Unknown:        f.unknown}, nil
}

// env is a UI over a real device service on a SQLite store.
type env struct {
	t         *testing.T
	h         http.Handler
	devices   *device.Service
	store     *sqlite.Store
	accounts  *fakeAccounts
	system    *fakeSystem
	campaigns *fakeCampaigns
	cert      *x509.Certificate
}

func newEnv(t *testing.T, opts ...func(*webui.Options)) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return testNow }})
	e := &env{t: t, devices: svc, store: st, accounts: &fakeAccounts{}, system: newFakeSystem(), cert: selfSigned(t)}
	e.campaigns = &fakeCampaigns{progress: device.CampaignProgress{
		Campaign: device.Campaign{ID: 7, CreatedAt: testNow.Add(-10 * time.Minute), Actor: "web:alice", Operation: device.OpInstall, Search: "name begins with SEP", Devices: 10},
		Done:     4, Pending: 3, InProgress: 1, Failed: 2,
		PerMinute: []device.MinuteCount{{Minute: testNow.Add(-2 * time.Minute), Count: 1}, {Minute: testNow.Add(-time.Minute), Count: 3}, {Minute: testNow, Count: 0}},
		Remaining: 3 * time.Minute, RemainingKnown: true,
		Failures: []device.FailureGroup{{Reason: "Upgrade Failed: Invalid Authentication String", Devices: []string{"SEP000000000001", "SEP000000000002"}}},
	}}
	o := webui.Options{
		Devices: svc, Accounts: e.accounts, System: e.system, Campaigns: e.campaigns, Certificate: e.cert,
		EventInterval: 10 * time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	ui := webui.New(o)
	e.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := principals[r.Header.Get("X-Test-As")]; ok {
			r = r.WithContext(webauth.WithPrincipal(r.Context(), p))
		}
		ui.ServeHTTP(w, r)
	})
	return e
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x1234), Subject: pkix.Name{CommonName: "CAPF-test", Organization: []string{"Example"}},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// add creates devices with the given names (and their description).
func (e *env) add(ds ...device.Device) {
	e.t.Helper()
	for _, d := range ds {
		if _, err := e.devices.Add(context.Background(), device.CLIActor("test"), d, false); err != nil {
			e.t.Fatalf("add %s: %v", d.Name, err)
		}
	}
}

// giveLSC runs an Install/Upgrade to success for the device through the
// store, as a phone session would.
func (e *env) giveLSC(name string) {
	e.t.Helper()
	ctx := context.Background()
	d, err := e.devices.Get(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	claim, err := e.store.StartAttempt(ctx, device.Attempt{Device: name, Operation: d.Operation, Node: "n1", Rev: d.Rev, StartedAt: testNow})
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.store.FinishAttempt(ctx, device.Outcome{AttemptID: claim.AttemptID, Node: "n1", Device: name, FinishedAt: testNow,
		Result: device.SuccessStatus(device.OpInstall), Completed: true,
		SetLSC: &device.Certificate{Serial: "ABCDEF01", Issuer: "CN=CAPF-test", NotBefore: testNow, NotAfter: testNow.Add(365 * 24 * time.Hour), DER: e.cert.Raw}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// do sends a request as the principal called as ("" for anonymous).
func (e *env) do(method, target, as string, form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if as != "" {
		r.Header.Set("X-Test-As", as)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	checkHTML(e.t, target, w)
	return w
}

func (e *env) get(target, as string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.do(http.MethodGet, target, as, nil)
}

// post sends form as the principal, with its anti-forgery token.
func (e *env) post(target, as string, form url.Values) *httptest.ResponseRecorder {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if p, ok := principals[as]; ok && !form.Has(webauth.CSRFField) {
		form.Set(webauth.CSRFField, p.CSRF)
	}
	return e.do(http.MethodPost, target, as, form)
}

func wantStatus(t *testing.T, w *httptest.ResponseRecorder, want int) {
	t.Helper()
	if w.Code != want {
		t.Fatalf("status %d, want %d; body:\n%s", w.Code, want, w.Body.String())
	}
}

func wantRedirect(t *testing.T, w *httptest.ResponseRecorder, want string) {
	t.Helper()
	wantStatus(t, w, http.StatusSeeOther)
	if got := w.Header().Get("Location"); got != want {
		t.Fatalf("Location %q, want %q", got, want)
	}
}

func wantBody(t *testing.T, w *httptest.ResponseRecorder, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(w.Body.String(), p) {
			t.Errorf("body lacks %q; body:\n%s", p, w.Body.String())
		}
	}
}

func wantNoBody(t *testing.T, w *httptest.ResponseRecorder, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if strings.Contains(w.Body.String(), p) {
			t.Errorf("body has %q", p)
		}
	}
}

var (
	tagRE  = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>`)
	attrRE = regexp.MustCompile(`([a-zA-Z_:@][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?`)
	formRE = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
)

// tag is one start or end tag of a page.
type tag struct {
	end   bool
	name  string
	attrs map[string]string
	pos   int // offset after the tag
}

// tags lexes the tags of an html/template page (which escapes '<' and '>'
// in text and attribute values, so a tag never holds a '>').
func tags(s string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatchIndex(s, -1) {
		tg := tag{end: m[3] > m[2], name: strings.ToLower(s[m[4]:m[5]]), attrs: map[string]string{}, pos: m[1]}
		for _, a := range attrRE.FindAllStringSubmatch(s[m[6]:m[7]], -1) {
			v := a[2] + a[3] + a[4]
			tg.attrs[strings.ToLower(a[1])] = v
		}
		out = append(out, tg)
	}
	return out
}

// checkHTML enforces, on every HTML page a test fetches, what the CSP and
// accessibility need: no inline script (every <script> has a src and no
// body), no event-handler attribute, no style attribute or element; every
// visible input, select and textarea has a label; every POST form carries
// the session's anti-forgery token.
func checkHTML(t *testing.T, target string, w *httptest.ResponseRecorder) {
	t.Helper()
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		return
	}
	for _, p := range htmlProblems(w.Body.String()) {
		t.Errorf("%s: %s", target, p)
	}
}

// htmlProblems lists what checkHTML refuses in page.
func htmlProblems(page string) []string {
	var out []string
	ts := tags(page)
	labels := map[string]bool{}
	for _, tg := range ts {
		if tg.name == "label" && tg.attrs["for"] != "" {
			labels[tg.attrs["for"]] = true
		}
	}
	for i, tg := range ts {
		if tg.end {
			continue
		}
		for a := range tg.attrs {
			if strings.HasPrefix(a, "on") || a == "style" {
				out = append(out, fmt.Sprintf("<%s> has attribute %s", tg.name, a))
			}
		}
		switch tg.name {
		case "style":
			out = append(out, "<style> element")
		case "script":
			if tg.attrs["src"] == "" {
				out = append(out, "<script> without src")
			}
			if i+1 >= len(ts) || !ts[i+1].end || ts[i+1].name != "script" || strings.TrimSpace(page[tg.pos:tagStart(page, ts[i+1].pos)]) != "" {
				out = append(out, "<script> with a body")
			}
		case "input", "select", "textarea":
			typ := tg.attrs["type"]
			if typ == "hidden" || typ == "submit" || typ == "button" {
				continue
			}
			if _, ok := tg.attrs["aria-label"]; ok {
				continue
			}
			if id := tg.attrs["id"]; id == "" || !labels[id] {
				out = append(out, fmt.Sprintf("<%s name=%q> has no label", tg.name, tg.attrs["name"]))
			}
		}
	}
	for _, m := range formRE.FindAllStringSubmatch(page, -1) {
		attrs := tags("<form" + m[1] + ">")[0].attrs
		if !strings.EqualFold(attrs["method"], "post") || attrs["action"] == "/login" {
			continue
		}
		found := false
		for _, tg := range tags(m[2]) {
			if tg.name == "input" && tg.attrs["name"] == webauth.CSRFField && tg.attrs["value"] != "" {
				found = true
			}
		}
		if !found {
			out = append(out, fmt.Sprintf("form action=%q has no %s field", attrs["action"], webauth.CSRFField))
		}
	}
	return out
}

// tagStart finds the '<' of the tag that ends at end.
func tagStart(s string, end int) int { return strings.LastIndex(s[:end], "<") }
