package account_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// clock is a fake clock the tests advance.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a service over a real SQLite store, a fake clock and a
// counter of password evaluations.
type fixture struct {
	svc    *account.Service
	store  *sqlite.Store
	clock  *clock
	checks atomic.Int64
}

// cheap is an argon2id cost that keeps the tests fast.
var cheap = account.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}

const (
	adminPW = "correct horse battery"
	remote  = "192.0.2.10"
)

var cli = device.CLIActor("tester")

// newFixture returns a service with the account "root" (admin, adminPW).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st, clock: &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	f.svc = account.NewService(account.Options{Store: st, Now: f.clock.Now, Password: cheap,
		OnPasswordCheck: func() { f.checks.Add(1) }})
	if _, err := f.svc.AddAccount(t.Context(), cli, "root", account.RoleAdmin, adminPW); err != nil {
		t.Fatal(err)
	}
	return f
}

// wantKind fails t unless err has kind k.
func wantKind(t *testing.T, err error, k fault.Kind) {
	t.Helper()
	if err == nil || fault.KindOf(err) != k {
		t.Fatalf("err = %v (kind %v), want kind %v", err, fault.KindOf(err), k)
	}
}

func TestLoginWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	_, errPW := f.svc.Login(ctx, "root", "wrong password!", remote)
	wantKind(t, errPW, fault.Unauthorized)
	_, errUser := f.svc.Login(ctx, "nobody", "wrong password!", remote)
	wantKind(t, errUser, fault.Unauthorized)
	if errPW.Error() != errUser.Error() || errPW.Error() != "wrong username or password" {
		t.Errorf("messages %q and %q, want the same %q", errPW, errUser, "wrong username or password")
	}
	if n := f.checks.Load(); n != 2 {
		t.Errorf("%d password evaluations, want 2 (the unknown user costs one too)", n)
	}

	s, err := f.svc.Login(ctx, "ROOT", adminPW, remote)
	if err != nil {
		t.Fatalf("Login with the right password: %v", err)
	}
	if s.Account != "root" || s.Role != account.RoleAdmin || len(s.ID) < 40 || len(s.CSRF) < 40 || s.ID == s.CSRF {
		t.Errorf("session = %+v", s)
	}
	got, err := f.svc.Session(ctx, s.ID)
	if err != nil || got.Account != "root" || got.CSRF != s.CSRF {
		t.Errorf("Session(id) = %+v, %v", got, err)
	}
	as, err := f.svc.Accounts(ctx)
	if err != nil || len(as) != 1 || !as[0].LastLogin.Equal(f.clock.Now()) {
		t.Errorf("Accounts = %+v, %v; want root with LastLogin now", as, err)
	}
}

func TestLoginThrottlePerAccount(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for range account.FreeFailures {
		_, err := f.svc.Login(ctx, "root", "wrong password!", remote)
		wantKind(t, err, fault.Unauthorized)
	}
	// The delay now runs: even the right password is refused, unevaluated.
	before := f.checks.Load()
	_, err := f.svc.Login(ctx, "root", adminPW, remote)
	wantKind(t, err, fault.Throttled)
	if !strings.Contains(err.Error(), "wait 1 seconds") || account.RetryAfter(err) != time.Second {
		t.Errorf("throttled: %q, RetryAfter %v; want a wait of 1 s", err, account.RetryAfter(err))
	}
	if f.checks.Load() != before {
		t.Error("a throttled login evaluated the password")
	}
	f.clock.Advance(time.Second)
	if _, err := f.svc.Login(ctx, "root", adminPW, remote); err != nil {
		t.Fatalf("after the wait, the right password: %v", err)
	}
	// The success reset the counter: five free failures again.
	for range account.FreeFailures {
		_, err := f.svc.Login(ctx, "root", "wrong password!", remote)
		wantKind(t, err, fault.Unauthorized)
	}
	_, err = f.svc.Login(ctx, "root", adminPW, remote)
	wantKind(t, err, fault.Throttled)
	// A new password clears the throttle at once.
	if err := f.svc.SetPassword(ctx, cli, "root", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(ctx, "root", "a brand new password", remote); err != nil {
		t.Fatalf("after SetPassword: %v", err)
	}
}

// TestUnknownNameThrottledAlike: an unknown name is throttled like a real
// one, with the same message, so the throttle does not tell which exist.
func TestUnknownNameThrottledAlike(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var msgs []string
	for _, name := range []string{"root", "nobody"} {
		for range account.FreeFailures {
			_, err := f.svc.Login(ctx, name, "wrong password!", fmt.Sprintf("192.0.2.%d", len(name)))
			wantKind(t, err, fault.Unauthorized)
		}
		before := f.checks.Load()
		_, err := f.svc.Login(ctx, name, "wrong password!", "198.51.100.1")
		wantKind(t, err, fault.Throttled)
		if f.checks.Load() != before {
			t.Errorf("%s: a throttled login evaluated a hash", name)
		}
		msgs = append(msgs, err.Error())
	}
	if msgs[0] != msgs[1] {
		t.Errorf("throttled known name: %q; unknown name: %q; want the same", msgs[0], msgs[1])
	}
}

func TestLoginDelayDoublesToTheCap(t *testing.T) {
	want := map[int]time.Duration{1: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 7: 4 * time.Second,
		13: 256 * time.Second, 14: account.MaxDelay, 100: account.MaxDelay, 1 << 30: account.MaxDelay}
	for n, d := range want {
		if got := account.LoginDelay(n); got != d {
			t.Errorf("LoginDelay(%d) = %v, want %v", n, got, d)
		}
	}
}

// TestStrangerCannotLockOutBeyondTheCap: however many failures a stranger
// causes, the admin gets in MaxDelay after the stranger's last attempt.
func TestStrangerCannotLockOutBeyondTheCap(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for i := range 60 {
		// A different address each time, so only the account throttle acts.
		addr := fmt.Sprintf("198.51.100.%d", i)
		_, err := f.svc.Login(ctx, "root", "guess guess guess", addr)
		if d := account.RetryAfter(err); d > account.MaxDelay {
			t.Fatalf("attempt %d: asked to wait %v, more than the cap", i, d)
		}
		f.clock.Advance(time.Duration(i) * time.Second)
	}
	f.clock.Advance(account.MaxDelay)
	if _, err := f.svc.Login(ctx, "root", adminPW, remote); err != nil {
		t.Fatalf("admin after the cap: %v", err)
	}
}

// TestBruteForce: 200 wrong passwords, one every 36 s of fake time (two
// hours): the throttle lets through the free five, the doubling ramp and
// then one every 5 minutes: at most 12 in the second hour. The right
// password works after the throttle window.
func TestBruteForce(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	start := f.clock.Now()
	var secondHour int64
	for range 200 {
		before := f.checks.Load()
		_, err := f.svc.Login(ctx, "root", "not the password", remote)
		if err == nil {
			t.Fatal("a wrong password logged in")
		}
		if k := fault.KindOf(err); k != fault.Unauthorized && k != fault.Throttled {
			t.Fatalf("err = %v (kind %v)", err, k)
		}
		if f.clock.Now().Sub(start) >= time.Hour {
			secondHour += f.checks.Load() - before
		}
		f.clock.Advance(36 * time.Second)
	}
	total := f.checks.Load()
	t.Logf("%d of 200 guesses evaluated in 2 h, %d in the second hour", total, secondHour)
	if secondHour > 12 {
		t.Errorf("%d guesses evaluated in the second hour, want at most 12", secondHour)
	}
	if total > 5+9+24 {
		t.Errorf("%d guesses evaluated in two hours, want at most 38", total)
	}
	f.clock.Advance(account.MaxDelay)
	if _, err := f.svc.Login(ctx, "root", adminPW, remote); err != nil {
		t.Fatalf("right password after the throttle window: %v", err)
	}
}

func TestLoginThrottlePerAddress(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	// Unknown users spread over names: no account throttle applies.
	for i := range account.AddrFailures {
		_, err := f.svc.Login(ctx, fmt.Sprintf("user%d", i), "whatever it is", "203.0.113.5:4431")
		wantKind(t, err, fault.Unauthorized)
	}
	before := f.checks.Load()
	_, err := f.svc.Login(ctx, "root", adminPW, "203.0.113.5:5000")
	wantKind(t, err, fault.Throttled)
	if f.checks.Load() != before {
		t.Error("a throttled address had a password evaluated")
	}
	if d := account.RetryAfter(err); d <= 0 || d > account.AddrWindow {
		t.Errorf("RetryAfter = %v, want within the window", d)
	}
	// Another address is not affected, nor is the account.
	if _, err := f.svc.Login(ctx, "root", adminPW, "203.0.113.6"); err != nil {
		t.Fatalf("another address: %v", err)
	}
	// The window passes.
	f.clock.Advance(account.AddrWindow)
	if _, err := f.svc.Login(ctx, "root", adminPW, "203.0.113.5"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestLoginThrottleIPv6CountsPer64(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	for i := range account.AddrFailures {
		addr := fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)
		_, err := f.svc.Login(ctx, fmt.Sprintf("nobody%d", i), "whatever it is", addr)
		wantKind(t, err, fault.Unauthorized)
	}
	_, err := f.svc.Login(ctx, "root", adminPW, "2001:db8:1:2:ffff::1")
	wantKind(t, err, fault.Throttled)
	if _, err := f.svc.Login(ctx, "root", adminPW, "2001:db8:1:3::1"); err != nil {
		t.Fatalf("another /64: %v", err)
	}
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	login := func() account.Session {
		t.Helper()
		s, err := f.svc.Login(ctx, "root", adminPW, remote)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("idle", func(t *testing.T) {
		s := login()
		f.clock.Advance(account.DefaultIdleTimeout - time.Second)
		if _, err := f.svc.Session(ctx, s.ID); err != nil {
			t.Fatalf("just before the idle timeout: %v", err)
		}
		// That use restarted the idle clock.
		f.clock.Advance(account.DefaultIdleTimeout - time.Second)
		if _, err := f.svc.Session(ctx, s.ID); err != nil {
			t.Fatalf("used within the idle timeout: %v", err)
		}
		f.clock.Advance(account.DefaultIdleTimeout)
		_, err := f.svc.Session(ctx, s.ID)
		wantKind(t, err, fault.Unauthorized)
	})
	t.Run("absolute", func(t *testing.T) {
		s := login()
		for f.clock.Now().Before(s.ExpiresAt.Add(-10 * time.Minute)) {
			f.clock.Advance(10 * time.Minute)
			if _, err := f.svc.Session(ctx, s.ID); err != nil {
				t.Fatalf("active session before the absolute expiry: %v", err)
			}
		}
		f.clock.Advance(10 * time.Minute)
		_, err := f.svc.Session(ctx, s.ID)
		wantKind(t, err, fault.Unauthorized)
	})
	t.Run("logout", func(t *testing.T) {
		s := login()
		if err := f.svc.Logout(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Session(ctx, s.ID)
		wantKind(t, err, fault.Unauthorized)
	})
	t.Run("unknown", func(t *testing.T) {
		_, err := f.svc.Session(ctx, "forged")
		wantKind(t, err, fault.Unauthorized)
	})
	t.Run("password-change-ends-sessions", func(t *testing.T) {
		s := login()
		if err := f.svc.SetPassword(ctx, cli, "root", "another long password"); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Session(ctx, s.ID)
		wantKind(t, err, fault.Unauthorized)
		if err := f.svc.SetPassword(ctx, cli, "root", adminPW); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("removal-ends-sessions", func(t *testing.T) {
		if _, err := f.svc.AddAccount(ctx, cli, "bob", account.RoleViewer, "bob's long password"); err != nil {
			t.Fatal(err)
		}
		s, err := f.svc.Login(ctx, "bob", "bob's long password", remote)
		if err != nil || s.Role != account.RoleViewer {
			t.Fatalf("Login bob = %+v, %v", s, err)
		}
		if err := f.svc.RemoveAccount(ctx, cli, "bob"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Session(ctx, s.ID)
		wantKind(t, err, fault.Unauthorized)
	})
}

func TestTokens(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	secret, tok, err := f.svc.CreateToken(ctx, cli, "", "ci", account.RoleViewer, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "capf_") || len(secret) != len("capf_")+43 {
		t.Errorf("secret %q: want capf_ and 43 base64url characters", secret)
	}
	if tok.CreatedBy != "cli:tester" || !tok.ExpiresAt.Equal(f.clock.Now().Add(24*time.Hour)) {
		t.Errorf("token = %+v", tok)
	}
	got, err := f.svc.Authenticate(ctx, secret)
	if err != nil || got.Name != "ci" || got.Role != account.RoleViewer {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "capf_", secret + "x", "Bearer " + secret, strings.ToUpper(secret)} {
		_, err := f.svc.Authenticate(ctx, bad)
		wantKind(t, err, fault.Unauthorized)
	}
	_, _, err = f.svc.CreateToken(ctx, cli, "", "CI", account.RoleAdmin, 0)
	wantKind(t, err, fault.Conflict)

	f.clock.Advance(24 * time.Hour)
	_, err = f.svc.Authenticate(ctx, secret)
	wantKind(t, err, fault.Unauthorized)

	forever, _, err := f.svc.CreateToken(ctx, cli, "", "backup", account.RoleAdmin, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * 365 * 24 * time.Hour)
	if _, err := f.svc.Authenticate(ctx, forever); err != nil {
		t.Errorf("a token without expiry, years later: %v", err)
	}
	if err := f.svc.RevokeToken(ctx, cli, "backup"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, forever)
	wantKind(t, err, fault.Unauthorized)
	wantKind(t, f.svc.RevokeToken(ctx, cli, "backup"), fault.NotFound)

	ts, err := f.svc.Tokens(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "ci" || ts[0].LastUsed.IsZero() {
		t.Errorf("Tokens = %+v, %v; want ci, used", ts, err)
	}
}

func TestAccountChanges(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.svc.AddAccount(ctx, cli, "vera", account.RoleViewer, "vera's long password"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		err       error
		wantKind  fault.Kind
		wantField string
	}{
		{"short-password", second(f.svc.AddAccount(ctx, cli, "bob", account.RoleAdmin, "short")), fault.Invalid, "password"},
		{"bad-name", second(f.svc.AddAccount(ctx, cli, "bob smith", account.RoleAdmin, adminPW)), fault.Invalid, "name"},
		{"bad-role", second(f.svc.AddAccount(ctx, cli, "bob", "root", adminPW)), fault.Invalid, "role"},
		{"duplicate", second(f.svc.AddAccount(ctx, cli, "Root", account.RoleAdmin, adminPW)), fault.Conflict, ""},
		{"short-new-password", f.svc.SetPassword(ctx, cli, "root", "short"), fault.Invalid, "password"},
		{"password-of-unknown", f.svc.SetPassword(ctx, cli, "nobody", adminPW), fault.NotFound, ""},
		{"remove-last-admin", f.svc.RemoveAccount(ctx, cli, "root"), fault.Conflict, ""},
		{"demote-last-admin", second(f.svc.SetRole(ctx, cli, "root", account.RoleViewer)), fault.Conflict, ""},
		{"remove-unknown", f.svc.RemoveAccount(ctx, cli, "nobody"), fault.NotFound, ""},
		{"token-bad-ttl", third(f.svc.CreateToken(ctx, cli, "", "t", account.RoleAdmin, -time.Hour)), fault.Invalid, "expires"},
		{"token-above-owner", third(f.svc.CreateToken(ctx, cli, "vera", "t", account.RoleAdmin, time.Hour)), fault.Invalid, "role"},
		{"token-of-unknown-owner", third(f.svc.CreateToken(ctx, cli, "nobody", "t", account.RoleViewer, time.Hour)), fault.NotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKind(t, tt.err, tt.wantKind)
			if got := fault.FieldOf(tt.err); got != tt.wantField {
				t.Errorf("field = %q, want %q", got, tt.wantField)
			}
		})
	}
	// With a second admin, the first may be demoted and removed.
	if _, err := f.svc.AddAccount(ctx, cli, "alice", account.RoleAdmin, "alice's long password"); err != nil {
		t.Fatal(err)
	}
	if a, err := f.svc.SetRole(ctx, cli, "root", account.RoleViewer); err != nil || a.Role != account.RoleViewer {
		t.Fatalf("SetRole = %+v, %v", a, err)
	}
	if err := f.svc.RemoveAccount(ctx, cli, "root"); err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error        { return err }
func third[A, B any](_ A, _ B, err error) error { return err }

func TestAuditNeverHoldsSecrets(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	web := device.Actor{Kind: device.ActorWeb, Name: "root", Remote: remote}
	const bobPW, bobPW2 = "bob's first password", "bob's second password"
	if _, err := f.svc.AddAccount(ctx, web, "bob", account.RoleViewer, bobPW); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetPassword(ctx, web, "bob", bobPW2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetRole(ctx, web, "bob", account.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	secret, _, err := f.svc.CreateToken(ctx, web, "", "ci", account.RoleViewer, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeToken(ctx, web, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RemoveAccount(ctx, web, "bob"); err != nil {
		t.Fatal(err)
	}
	evs, err := f.store.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		actions = append(actions, ev.Action+" "+ev.Target)
		all := ev.Detail
		for _, c := range ev.Changes {
			all += " " + c.Old + " " + c.New
		}
		for _, s := range []string{adminPW, bobPW, bobPW2, secret, secret[len("capf_"):]} {
			if strings.Contains(all, s) {
				t.Errorf("audit event %s %s holds a secret: %q", ev.Action, ev.Target, all)
			}
		}
		if ev.Action != account.AuditAccountCreate || ev.Target != "root" {
			if ev.Actor != web {
				t.Errorf("event %s %s by %+v, want %+v", ev.Action, ev.Target, ev.Actor, web)
			}
		}
	}
	want := "account.create root|account.create bob|account.password bob|account.role bob|token.create ci|token.revoke ci|account.delete bob"
	if got := strings.Join(actions, "|"); got != want {
		t.Errorf("audit = %s\nwant   %s", got, want)
	}
}

func TestBootstrap(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := account.NewService(account.Options{Store: st, Password: cheap})
	pw, created, err := svc.Bootstrap(t.Context())
	if err != nil || !created || len(pw) != account.GeneratedPasswordLen {
		t.Fatalf("Bootstrap = %q, %v, %v", pw, created, err)
	}
	s, err := svc.Login(t.Context(), "admin", pw, remote)
	if err != nil || s.Role != account.RoleAdmin {
		t.Fatalf("login with the bootstrap password: %+v, %v", s, err)
	}
	pw, created, err = svc.Bootstrap(t.Context())
	if err != nil || created || pw != "" {
		t.Errorf("second Bootstrap = %q, %v, %v; want nothing done", pw, created, err)
	}
}

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"30m", 30 * time.Minute, true},
		{"0", 0, true},
		{"", 0, true},
		{"-1h", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"+3d", 0, false},
		{"100000d", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := account.ParseTTL(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseTTL(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && fault.FieldOf(err) != "expires" {
				t.Errorf("error field %q, want expires", fault.FieldOf(err))
			}
		})
	}
}

func TestRetryAfterOfOtherErrors(t *testing.T) {
	if d := account.RetryAfter(errors.New("x")); d != 0 {
		t.Errorf("RetryAfter(plain) = %v", d)
	}
	if d := account.RetryAfter(nil); d != 0 {
		t.Errorf("RetryAfter(nil) = %v", d)
	}
}

// TestDisableAccount: a disabled account cannot log in (told so only
// after the right password), its session ends and its own token stops at
// once; the last enabled admin cannot be disabled; enabling gives the
// login and the token back; disabling twice audits once.
func TestDisableAccount(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	const pw = "alice's long password"
	if _, err := f.svc.AddAccount(ctx, cli, "alice", account.RoleAdmin, pw); err != nil {
		t.Fatal(err)
	}
	sess, err := f.svc.Login(ctx, "alice", pw, remote)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := f.svc.CreateToken(ctx, cli, "alice", "alice-ci", account.RoleAdmin, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.DisableAccount(ctx, cli, "Alice")
	if err != nil || !a.Disabled() || a.Name != "alice" {
		t.Fatalf("DisableAccount = %+v, %v", a, err)
	}
	if _, err := f.svc.Session(ctx, sess.ID); err == nil {
		t.Error("the disabled account's session still works")
	}
	_, err = f.svc.Authenticate(ctx, secret)
	wantKind(t, err, fault.Unauthorized)
	_, err = f.svc.Login(ctx, "alice", "not her password at all", remote)
	wantKind(t, err, fault.Unauthorized) // a guesser learns nothing
	f.clock.Advance(time.Hour)           // past the failure's delay
	_, err = f.svc.Login(ctx, "alice", pw, remote)
	wantKind(t, err, fault.Forbidden)
	if !strings.Contains(err.Error(), "disabled") {
		t.Errorf("login with the right password: %v, want it to say the account is disabled", err)
	}
	if _, err := f.svc.DisableAccount(ctx, cli, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.DisableAccount(ctx, cli, "root")
	wantKind(t, err, fault.Conflict)
	_, err = f.svc.DisableAccount(ctx, cli, "nobody")
	wantKind(t, err, fault.NotFound)

	if a, err := f.svc.EnableAccount(ctx, cli, "alice"); err != nil || a.Disabled() {
		t.Fatalf("EnableAccount = %+v, %v", a, err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.svc.Login(ctx, "alice", pw, remote); err != nil {
		t.Errorf("login after enabling: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, secret); err != nil {
		t.Errorf("the token after enabling: %v", err)
	}
	evs, err := f.store.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range evs {
		n[ev.Action]++
	}
	if n[account.AuditAccountDisable] != 1 || n[account.AuditAccountEnable] != 1 {
		t.Errorf("audit: %d disable, %d enable; want one each", n[account.AuditAccountDisable], n[account.AuditAccountEnable])
	}
}
