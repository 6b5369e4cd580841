package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/webauth"
)

// testNow is the clock of every test service.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// env is one API under test over a real SQLite store, with small in-test
// implementations of the services other packages provide.
type env struct {
	t         *testing.T
	h         http.Handler
	srv       *server
	store     *sqlite.Store
	devices   *device.Service
	accounts  *fakeAccounts
	system    *fakeSystem
	campaigns *fakeCampaigns
	cert      *x509.Certificate
	logs      *bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, _, err := ca.LoadOrCreate(ca.Options{Dir: filepath.Join(t.TempDir(), "ca"), KeyAlgorithm: ca.ECP256, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, accounts: newFakeAccounts(), system: newFakeSystem(), campaigns: &fakeCampaigns{}, cert: a.Certificate(), logs: &bytes.Buffer{}}
	e.devices = device.NewService(device.ServiceOptions{Store: st, Now: func() time.Time { return testNow }})
	e.srv = newServer(Options{
		Devices: e.devices, Campaigns: e.campaigns, Accounts: e.accounts, System: e.system, Certificate: e.cert,
		Certificates: lsc.NewService(lsc.Options{Store: st, Now: func() time.Time { return testNow }}),
		ParseTTL:     parseTestTTL, RetryAfter: retryAfter,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: e.logs}, nil)),
	})
	e.h = withTestPrincipal(e.srv.mux)
	return e
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// The roles a test request can have, in the X-Test-Role header; none
// means no principal.
const (
	asAdmin  = "admin"
	asViewer = "viewer"
	asNobody = ""
)

// withTestPrincipal stands in for webauth's middleware: it puts the
// principal the X-Test-Role header names into the request's context.
func withTestPrincipal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Test-Role") {
		case asAdmin:
			r = r.WithContext(webauth.WithPrincipal(r.Context(), account.Principal{Kind: device.ActorAPI, Name: "ops", Role: account.RoleAdmin, Remote: "192.0.2.7"}))
		case asViewer:
			r = r.WithContext(webauth.WithPrincipal(r.Context(), account.Principal{Kind: device.ActorWeb, Name: "watcher", Role: account.RoleViewer, Remote: "192.0.2.8"}))
		}
		h.ServeHTTP(w, r)
	})
}

// do sends one request; body is JSON-encoded unless it is a string, sent
// as is with contentType.
func (e *env) do(role, method, path string, body any, contentType ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		if len(contentType) > 0 {
			ct = contentType[0]
		}
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r := httptest.NewRequest(method, path, rd)
	if rd != nil {
		r.Header.Set("Content-Type", ct)
	}
	if role != "" {
		r.Header.Set("X-Test-Role", role)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// decode decodes the response body as JSON into v, failing on a status
// other than want.
func decode[T any](t *testing.T, w *httptest.ResponseRecorder, want int) T {
	t.Helper()
	var v T
	if w.Code != want {
		t.Fatalf("status %d, want %d; body %s", w.Code, want, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v; body %s", v, err, w.Body)
	}
	return v
}

// problemBody is an RFC 9457 problem as the API sends it.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
		Value    any    `json:"value"`
	} `json:"errors"`
}

// problem checks that w is a problem+json response with status want and
// returns it.
func problem(t *testing.T, w *httptest.ResponseRecorder, want int) problemBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json; body %s", ct, w.Body)
	}
	p := decode[problemBody](t, w, want)
	if p.Status != want || p.Title != http.StatusText(want) || p.Detail == "" {
		t.Errorf("problem %+v: want status %d, its title, a detail", p, want)
	}
	return p
}

// locations lists a problem's error locations.
func (p problemBody) locations() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Location)
	}
	return out
}

func parseTestTTL(s string) (time.Duration, error) {
	switch {
	case s == "0":
		return 0, nil
	case strings.HasSuffix(s, "d"):
		d, err := time.ParseDuration(strings.TrimSuffix(s, "d") + "h")
		if err == nil && d > 0 {
			return 24 * d, nil
		}
	default:
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d, nil
		}
	}
	return 0, fault.Invalidf("expires %q: want a lifetime such as 90d or 12h, or 0 for never", s)
}

// throttledError is a Throttled error that knows the wait, as the account
// package's are.
type throttledError struct {
	wait time.Duration
}

// Like account's, its text is its fault's message: the rule, said once.
func (e *throttledError) Error() string { return "too many attempts; wait 90s" }
func (e *throttledError) Unwrap() error {
	return fault.New(fault.Throttled, "too many attempts; wait 90s")
}

func retryAfter(err error) time.Duration {
	if t, ok := err.(*throttledError); ok {
		return t.wait
	}
	return 0
}

// fakeAccounts keeps accounts and tokens in memory, with the rules the
// API relies on (unknown names, duplicates, the last admin).
type fakeAccounts struct {
	mu       sync.Mutex
	accounts []account.Account
	tokens   []account.Token
	calls    []string // "method actor name"
	fail     error    // returned by every call when set
}

func newFakeAccounts() *fakeAccounts {
	return &fakeAccounts{accounts: []account.Account{{Name: "admin", Role: account.RoleAdmin, CreatedAt: testNow}}}
}

func (f *fakeAccounts) record(method string, actor device.Actor, name string) error {
	f.calls = append(f.calls, method+" "+actor.String()+" "+name)
	return f.fail
}

func (f *fakeAccounts) find(name string) int {
	return slices.IndexFunc(f.accounts, func(a account.Account) bool { return a.Name == name })
}

func (f *fakeAccounts) Accounts(context.Context) ([]account.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.accounts), f.fail
}

func (f *fakeAccounts) AddAccount(_ context.Context, actor device.Actor, name string, role account.Role, password string) (account.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("add", actor, name); err != nil {
		return account.Account{}, err
	}
	if len(password) < 8 {
		return account.Account{}, fault.InvalidField("password", "password: want at least 8 characters")
	}
	if f.find(name) >= 0 {
		return account.Account{}, fault.Conflictf("account %s exists", name)
	}
	a := account.Account{Name: name, Role: role, CreatedAt: testNow, UpdatedAt: testNow}
	f.accounts = append(f.accounts, a)
	return a, nil
}

func (f *fakeAccounts) SetPassword(_ context.Context, actor device.Actor, name, password string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("passwd", actor, name); err != nil {
		return err
	}
	if f.find(name) < 0 {
		return fault.NotFoundf("account %s not found", name)
	}
	if len(password) < 8 {
		return fault.Invalidf("password: want at least 8 characters")
	}
	return nil
}

func (f *fakeAccounts) SetRole(_ context.Context, actor device.Actor, name string, role account.Role) (account.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("role", actor, name); err != nil {
		return account.Account{}, err
	}
	i := f.find(name)
	if i < 0 {
		return account.Account{}, fault.NotFoundf("account %s not found", name)
	}
	f.accounts[i].Role = role
	return f.accounts[i], nil
}

func (f *fakeAccounts) RemoveAccount(_ context.Context, actor device.Actor, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("rm", actor, name); err != nil {
		return err
	}
	i := f.find(name)
	if i < 0 {
		return fault.NotFoundf("account %s not found", name)
	}
	if name == "admin" {
		return fault.Conflictf("account admin is the last admin; it cannot be removed")
	}
	f.accounts = slices.Delete(f.accounts, i, i+1)
	return nil
}

func (f *fakeAccounts) DisableAccount(ctx context.Context, actor device.Actor, name string) (account.Account, error) {
	return f.setDisabled(actor, name, true)
}

func (f *fakeAccounts) EnableAccount(ctx context.Context, actor device.Actor, name string) (account.Account, error) {
	return f.setDisabled(actor, name, false)
}

func (f *fakeAccounts) setDisabled(actor device.Actor, name string, disable bool) (account.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	verb := "enable"
	if disable {
		verb = "disable"
	}
	if err := f.record(verb, actor, name); err != nil {
		return account.Account{}, err
	}
	i := f.find(name)
	if i < 0 {
		return account.Account{}, fault.NotFoundf("account %s not found", name)
	}
	if disable && name == "admin" {
		return account.Account{}, fault.Conflictf("account admin is the last enabled admin")
	}
	f.accounts[i].DisabledAt = time.Time{}
	if disable {
		f.accounts[i].DisabledAt = testNow
	}
	return f.accounts[i], nil
}

func (f *fakeAccounts) Tokens(context.Context) ([]account.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.tokens), f.fail
}

func (f *fakeAccounts) CreateToken(_ context.Context, actor device.Actor, owner, name string, role account.Role, ttl time.Duration) (string, account.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("token", actor, name); err != nil {
		return "", account.Token{}, err
	}
	t := account.Token{Name: name, Role: role, CreatedAt: testNow, CreatedBy: actor.String(), Owner: owner}
	if ttl > 0 {
		t.ExpiresAt = testNow.Add(ttl)
	}
	f.tokens = append(f.tokens, t)
	return "capf_secret_" + name, t, nil
}

func (f *fakeAccounts) RevokeToken(_ context.Context, actor device.Actor, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("revoke", actor, name); err != nil {
		return err
	}
	i := slices.IndexFunc(f.tokens, func(t account.Token) bool { return t.Name == name })
	if i < 0 {
		return fault.NotFoundf("token %s not found", name)
	}
	f.tokens = slices.Delete(f.tokens, i, i+1)
	return nil
}

// fakeSystem holds two parameters and the activation in memory.
type fakeSystem struct {
	mu     sync.Mutex
	params []system.Parameter
	act    system.Activation
	actors []string
}

func newFakeSystem() *fakeSystem {
	return &fakeSystem{
		params: []system.Parameter{
			{Name: "certificate_validity_days", Value: float64(1825), Default: float64(1825), Type: system.TypeInteger, Help: "LSC validity"},
			{Name: "phone_keys", Value: []any{"rsa2048"}, Default: []any{"rsa2048"}, Type: system.TypeList, Help: "keys"},
		},
		act: system.Activation{Active: true},
	}
}

func (f *fakeSystem) Parameters(context.Context) ([]system.Parameter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.params), nil
}

func (f *fakeSystem) UpdateParameters(_ context.Context, actor device.Actor, set map[string]any) ([]system.Parameter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next := slices.Clone(f.params)
	for name, v := range set {
		i := slices.IndexFunc(next, func(p system.Parameter) bool { return p.Name == name })
		if i < 0 {
			return nil, fault.InvalidField(name, "unknown parameter %q", name)
		}
		if next[i].Type == system.TypeInteger {
			n, ok := v.(float64)
			if !ok || n < 1 {
				// Wrapped as system.Service wraps its rules: the edge says the
				// rule, the log gets the chain.
				return nil, fmt.Errorf("change the fleet parameters: %w", fault.InvalidField(name, "%s: want a whole number of at least 1", name))
			}
		}
		next[i].Value = v
	}
	f.params = next
	f.actors = append(f.actors, actor.String())
	return slices.Clone(f.params), nil
}

func (f *fakeSystem) Activation(context.Context) (system.Activation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.act, nil
}

func (f *fakeSystem) SetActive(_ context.Context, actor device.Actor, active bool) (system.Activation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.act = system.Activation{Active: active, ChangedAt: testNow.Format(time.RFC3339), ChangedBy: actor.String()}
	f.actors = append(f.actors, actor.String())
	return f.act, nil
}

// fakeCampaigns records what it was asked and answers with canned data.
type fakeCampaigns struct {
	mu        sync.Mutex
	criteria  []device.Criteria
	changes   []device.Change
	campaigns []device.Campaign
	dashboard device.Dashboard
}

func (f *fakeCampaigns) Schedule(_ context.Context, actor device.Actor, c device.Criteria, ch device.Change) (device.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch.Operation == nil {
		return device.Campaign{}, fault.InvalidField("operation", "choose the certificate operation to schedule")
	}
	if c.Name == "NOMATCH" {
		return device.Campaign{}, fault.Invalidf("no phone matches the search")
	}
	f.criteria, f.changes = append(f.criteria, c), append(f.changes, ch)
	cp := device.Campaign{ID: int64(len(f.campaigns) + 1), CreatedAt: testNow, Actor: actor.String(), Operation: *ch.Operation, Search: "name begins with " + c.Name, Devices: 2}
	f.campaigns = append(f.campaigns, cp)
	return cp, nil
}

func (f *fakeCampaigns) Campaigns(_ context.Context, limit int) ([]device.Campaign, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.campaigns)
	slices.Reverse(out)
	return out[:min(limit, len(out))], nil
}

func (f *fakeCampaigns) Campaign(_ context.Context, id int64) (device.CampaignProgress, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.campaigns {
		if c.ID == id {
			return device.CampaignProgress{Campaign: c, Done: 1, Pending: 1, Failures: []device.FailureGroup{{Reason: "Upgrade Failed: Invalid Authentication String", Devices: []string{"SEP000000000002"}}}}, nil
		}
	}
	return device.CampaignProgress{}, fault.NotFoundf("campaign %d not found", id)
}

// CancelCampaign records the cancel as a write (an empty change) and
// cancels the campaign if it has it.
func (f *fakeCampaigns) CancelCampaign(_ context.Context, actor device.Actor, id int64) (device.CampaignCancel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, device.Change{})
	for i, c := range f.campaigns {
		if c.ID == id {
			f.campaigns[i].CancelledAt, f.campaigns[i].CancelledBy = testNow, actor.String()
			return device.CampaignCancel{Campaign: f.campaigns[i], Cancelled: c.Devices}, nil
		}
	}
	return device.CampaignCancel{}, fault.NotFoundf("campaign %d not found", id)
}

func (f *fakeCampaigns) Dashboard(context.Context) (device.Dashboard, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dashboard, nil
}
