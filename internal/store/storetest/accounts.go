package storetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// auditLister is what the suite needs, besides account.Store, to check the
// audit stream: a backend's store also implements device.Store.
type auditLister interface {
	ListAudit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
}

// accountOpener returns a new, empty account store for one test.
type accountOpener func(t *testing.T) account.Store

// RunAccounts runs the contract suite of [account.Store] against the stores
// open returns: a new, empty store each call, which must also list the
// audit stream (ListAudit, as a device.Store does). RunAccounts closes it
// when the subtest ends if it is an io.Closer.
func RunAccounts(t *testing.T, open func(t *testing.T) account.Store) {
	t.Helper()
	o := accountOpener(open)
	t.Run("accounts", func(t *testing.T) { runAccounts(t, o) })
	t.Run("last-admin", func(t *testing.T) { runLastAdmin(t, o) })
	t.Run("reserve-login", func(t *testing.T) { runReserveLogin(t, o) })
	t.Run("reserve-login-concurrent", func(t *testing.T) { runReserveConcurrent(t, o) })
	t.Run("sessions", func(t *testing.T) { runSessions(t, o) })
	t.Run("tokens", func(t *testing.T) { runTokens(t, o) })
	t.Run("token-owner", func(t *testing.T) { runTokenOwner(t, o) })
	t.Run("audit", func(t *testing.T) { runAccountAudit(t, o) })
	t.Run("disable", func(t *testing.T) { runDisable(t, o) })
}

// fresh opens a store for t, closes it when t ends, and returns it with its
// audit listing.
func (o accountOpener) fresh(t *testing.T) (account.Store, auditLister) {
	t.Helper()
	s := o(t)
	if c, ok := s.(io.Closer); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	al, ok := s.(auditLister)
	if !ok {
		t.Fatalf("%T has no ListAudit: the suite cannot check the audit stream", s)
	}
	return s, al
}

// testActor is who the suite's changes are made by.
var testActor = device.CLIActor("storetest")

// auditEv returns an event for a change of target.
func auditEv(action, target string) device.AuditEvent {
	return device.AuditEvent{At: t0, Actor: testActor, Action: action, Target: target}
}

// addAccount creates an account, failing t if it cannot.
func addAccount(t *testing.T, s account.Store, name string, role account.Role) account.Account {
	t.Helper()
	a := account.Account{Name: name, Role: role, CreatedAt: t0, UpdatedAt: t0}
	must(t, s.CreateAccount(t.Context(), a, "hash-of-"+name, auditEv(account.AuditAccountCreate, name)))
	return a
}

func runAccounts(t *testing.T, o accountOpener) {
	s, _ := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "zed", account.RoleViewer)
	addAccount(t, s, "Alice", account.RoleAdmin)

	t.Run("duplicate-ignoring-case", func(t *testing.T) {
		err := s.CreateAccount(ctx, account.Account{Name: "ALICE", Role: account.RoleAdmin, CreatedAt: t0, UpdatedAt: t0}, "h", device.AuditEvent{})
		wantKind(t, err, fault.ErrConflict, "ALICE")
	})
	t.Run("get-ignoring-case", func(t *testing.T) {
		c, err := s.GetCredentials(ctx, "alice")
		must(t, err)
		if c.Name != "Alice" || c.Role != account.RoleAdmin || c.PasswordHash != "hash-of-Alice" || c.Failures != 0 || !c.BlockedUntil.IsZero() || !c.LastLogin.IsZero() {
			t.Errorf("GetCredentials = %+v", c)
		}
		if s := diffTime("CreatedAt", c.CreatedAt, t0); s != "" {
			t.Error(s)
		}
	})
	t.Run("get-unknown", func(t *testing.T) {
		_, err := s.GetCredentials(ctx, "nobody")
		wantKind(t, err, fault.ErrNotFound, "nobody")
	})
	t.Run("list-by-name", func(t *testing.T) {
		as, err := s.ListAccounts(ctx)
		must(t, err)
		var got []string
		for _, a := range as {
			got = append(got, a.Name+":"+string(a.Role))
		}
		if strings.Join(got, " ") != "Alice:admin zed:viewer" {
			t.Errorf("ListAccounts = %v", got)
		}
	})
	t.Run("set-password", func(t *testing.T) {
		_, _, err := s.ReserveLogin(ctx, "zed", at(time.Hour), func(int) time.Duration { return time.Hour })
		must(t, err)
		must(t, s.CreateSession(ctx, session("sz", "zed", at(time.Hour)), time.Time{}))
		must(t, s.SetPassword(ctx, "ZED", "new-hash", at(2*time.Hour), auditEv(account.AuditAccountPassword, "zed")))
		c, err := s.GetCredentials(ctx, "zed")
		must(t, err)
		if c.PasswordHash != "new-hash" || c.Failures != 0 || !c.BlockedUntil.IsZero() {
			t.Errorf("after SetPassword: %+v, want the new hash and no throttle", c)
		}
		if d := diffTime("UpdatedAt", c.UpdatedAt, at(2*time.Hour)); d != "" {
			t.Error(d)
		}
		if _, err := s.GetSession(ctx, "sz"); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("session after SetPassword: err = %v, want NotFound", err)
		}
		wantKind(t, s.SetPassword(ctx, "nobody", "h", t0, device.AuditEvent{}), fault.ErrNotFound, "nobody")
	})
	t.Run("set-role", func(t *testing.T) {
		a, err := s.SetRole(ctx, "zed", account.RoleAdmin, at(3*time.Hour), auditEv(account.AuditAccountRole, "zed"))
		must(t, err)
		if a.Name != "zed" || a.Role != account.RoleAdmin {
			t.Errorf("SetRole = %+v", a)
		}
		if d := diffTime("UpdatedAt", a.UpdatedAt, at(3*time.Hour)); d != "" {
			t.Error(d)
		}
		_, err = s.SetRole(ctx, "nobody", account.RoleAdmin, t0, device.AuditEvent{})
		wantKind(t, err, fault.ErrNotFound, "nobody")
	})
	t.Run("delete", func(t *testing.T) {
		must(t, s.CreateSession(ctx, session("sd", "zed", at(time.Hour)), time.Time{}))
		must(t, s.DeleteAccount(ctx, "Zed", auditEv(account.AuditAccountDelete, "Zed")))
		if _, err := s.GetCredentials(ctx, "zed"); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("after DeleteAccount: err = %v, want NotFound", err)
		}
		if _, err := s.GetSession(ctx, "sd"); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("session after DeleteAccount: err = %v, want NotFound", err)
		}
		wantKind(t, s.DeleteAccount(ctx, "zed", device.AuditEvent{}), fault.ErrNotFound, "zed")
	})
}

// session returns a session of acct created at created, expiring a day
// later.
func session(idHash, acct string, created time.Time) account.StoredSession {
	return account.StoredSession{IDHash: idHash, Account: acct, CSRF: "csrf-" + idHash,
		CreatedAt: created, LastSeen: created, ExpiresAt: created.Add(24 * time.Hour)}
}

func runLastAdmin(t *testing.T, o accountOpener) {
	s, _ := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	addAccount(t, s, "eve", account.RoleViewer)

	wantKind(t, s.DeleteAccount(ctx, "root", device.AuditEvent{}), fault.ErrConflict, "root")
	_, err := s.SetRole(ctx, "root", account.RoleViewer, t0, device.AuditEvent{})
	wantKind(t, err, fault.ErrConflict, "root")
	must(t, s.DeleteAccount(ctx, "eve", device.AuditEvent{}))

	// With a second admin, either may go, but not both.
	addAccount(t, s, "second", account.RoleAdmin)
	_, err = s.SetRole(ctx, "root", account.RoleViewer, t0, device.AuditEvent{})
	must(t, err)
	wantKind(t, s.DeleteAccount(ctx, "second", device.AuditEvent{}), fault.ErrConflict, "second")

	// Concurrent removals of two admins: one wins, one is refused.
	_, err = s.SetRole(ctx, "root", account.RoleAdmin, t0, device.AuditEvent{})
	must(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, n := range []string{"root", "second"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.DeleteAccount(ctx, n, device.AuditEvent{})
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("concurrent removal of both admins: errors %v, %v; want exactly one refused", errs[0], errs[1])
	}
	as, err := s.ListAccounts(ctx)
	must(t, err)
	if len(as) != 1 || as[0].Role != account.RoleAdmin {
		t.Errorf("accounts left = %+v, want one admin", as)
	}
}

func runReserveLogin(t *testing.T, o accountOpener) {
	s, _ := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	delay := func(f int) time.Duration {
		if f < 3 {
			return 0
		}
		return time.Duration(f) * time.Second
	}
	steps := []struct {
		name      string
		at        time.Time
		wantOK    bool
		wantUntil time.Time
		wantFails int
	}{
		{"first-free", at(0), true, time.Time{}, 1},
		{"second-free", at(0), true, time.Time{}, 2},
		{"third-sets-delay", at(0), true, at(3 * time.Second), 3},
		{"refused-while-waiting", at(2 * time.Second), false, at(3 * time.Second), 3},
		{"allowed-at-end", at(3 * time.Second), true, at(7 * time.Second), 4},
	}
	for _, st := range steps {
		until, ok, err := s.ReserveLogin(ctx, "ROOT", st.at, delay)
		must(t, err)
		c, err := s.GetCredentials(ctx, "root")
		must(t, err)
		if ok != st.wantOK || c.Failures != st.wantFails {
			t.Errorf("%s: ok %v, failures %d; want %v, %d", st.name, ok, c.Failures, st.wantOK, st.wantFails)
		}
		if d := diffTime(st.name+": until", until, st.wantUntil); d != "" {
			t.Error(d)
		}
		if d := diffTime(st.name+": BlockedUntil", c.BlockedUntil, st.wantUntil); d != "" {
			t.Error(d)
		}
	}
	// A successful login resets the counter and records the login.
	must(t, s.CreateSession(ctx, session("ok", "root", at(time.Minute)), time.Time{}))
	c, err := s.GetCredentials(ctx, "root")
	must(t, err)
	if c.Failures != 0 || !c.BlockedUntil.IsZero() {
		t.Errorf("after CreateSession: failures %d, blocked until %v; want reset", c.Failures, c.BlockedUntil)
	}
	if d := diffTime("LastLogin", c.LastLogin, at(time.Minute)); d != "" {
		t.Error(d)
	}
	_, _, err = s.ReserveLogin(ctx, "nobody", t0, delay)
	wantKind(t, err, fault.ErrNotFound, "nobody")
}

// runReserveConcurrent checks that concurrent reservations each count: N
// attempts at once leave the counter at N, and with a delay after the
// first, only one is let through.
func runReserveConcurrent(t *testing.T, o accountOpener) {
	s, _ := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := s.ReserveLogin(ctx, "root", t0, func(int) time.Duration { return time.Hour })
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	c, err := s.GetCredentials(ctx, "root")
	must(t, err)
	if allowed != 1 || c.Failures != 1 {
		t.Errorf("%d concurrent reservations with a delay: %d allowed, failures %d; want 1 and 1", n, allowed, c.Failures)
	}
}

func runSessions(t *testing.T, o accountOpener) {
	s, _ := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	addAccount(t, s, "eve", account.RoleViewer)

	must(t, s.CreateSession(ctx, session("h1", "EVE", t0), time.Time{}))
	got, err := s.GetSession(ctx, "h1")
	must(t, err)
	if got.Account != "eve" || got.Role != account.RoleViewer || got.CSRF != "csrf-h1" || got.IDHash != "h1" {
		t.Errorf("GetSession = %+v", got)
	}
	for _, d := range []string{
		diffTime("CreatedAt", got.CreatedAt, t0), diffTime("LastSeen", got.LastSeen, t0),
		diffTime("ExpiresAt", got.ExpiresAt, at(24*time.Hour)),
	} {
		if d != "" {
			t.Error(d)
		}
	}
	wantKind(t, s.CreateSession(ctx, session("h1", "eve", t0), time.Time{}), fault.ErrConflict, "")
	wantKind(t, s.CreateSession(ctx, session("hx", "nobody", t0), time.Time{}), fault.ErrNotFound, "nobody")

	// The role is the account's current one.
	_, err = s.SetRole(ctx, "eve", account.RoleAdmin, t0, device.AuditEvent{})
	must(t, err)
	if got, err := s.GetSession(ctx, "h1"); err != nil || got.Role != account.RoleAdmin {
		t.Errorf("after SetRole: session role %q, err %v; want admin", got.Role, err)
	}

	must(t, s.TouchSession(ctx, "h1", at(time.Hour)))
	got, err = s.GetSession(ctx, "h1")
	must(t, err)
	if d := diffTime("LastSeen after touch", got.LastSeen, at(time.Hour)); d != "" {
		t.Error(d)
	}
	wantKind(t, s.TouchSession(ctx, "nope", t0), fault.ErrNotFound, "")

	// A login prunes sessions idle since before idleBefore or expired.
	must(t, s.CreateSession(ctx, session("idle", "root", t0), time.Time{}))
	must(t, s.CreateSession(ctx, session("new", "root", at(2*time.Hour)), at(30*time.Minute)))
	if _, err := s.GetSession(ctx, "idle"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("idle session after a later login: err = %v, want NotFound (pruned)", err)
	}
	if _, err := s.GetSession(ctx, "h1"); err != nil {
		t.Errorf("session seen after idleBefore was pruned: %v", err)
	}
	must(t, s.CreateSession(ctx, session("later", "root", at(25*time.Hour)), time.Time{}))
	if _, err := s.GetSession(ctx, "h1"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("expired session after a later login: err = %v, want NotFound (pruned)", err)
	}

	must(t, s.DeleteSession(ctx, "new"))
	if _, err := s.GetSession(ctx, "new"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("after DeleteSession: err = %v, want NotFound", err)
	}
	must(t, s.DeleteSession(ctx, "new")) // gone already: no error
}

func runTokens(t *testing.T, o accountOpener) {
	s, _ := o.fresh(t)
	ctx := t.Context()
	tok := account.Token{Name: "ci", Role: account.RoleViewer, CreatedAt: t0, ExpiresAt: at(90 * 24 * time.Hour), CreatedBy: "cli:alice"}
	must(t, s.CreateToken(ctx, tok, "hash-ci", auditEv(account.AuditTokenCreate, "ci")))
	must(t, s.CreateToken(ctx, account.Token{Name: "backup", Role: account.RoleAdmin, CreatedAt: t0}, "hash-backup", device.AuditEvent{}))
	wantKind(t, s.CreateToken(ctx, account.Token{Name: "CI", Role: account.RoleAdmin, CreatedAt: t0}, "other", device.AuditEvent{}), fault.ErrConflict, "CI")
	wantKind(t, s.CreateToken(ctx, account.Token{Name: "dup", Role: account.RoleAdmin, CreatedAt: t0}, "hash-ci", device.AuditEvent{}), fault.ErrConflict, "")

	got, err := s.TokenByHash(ctx, "hash-ci")
	must(t, err)
	if got.Name != "ci" || got.Role != account.RoleViewer || got.CreatedBy != "cli:alice" || !got.LastUsed.IsZero() {
		t.Errorf("TokenByHash = %+v", got)
	}
	if d := diffTime("ExpiresAt", got.ExpiresAt, tok.ExpiresAt); d != "" {
		t.Error(d)
	}
	if _, err := s.TokenByHash(ctx, "hash-nope"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("TokenByHash(unknown): err = %v, want NotFound", err)
	}

	must(t, s.TouchToken(ctx, "ci", at(time.Hour)))
	ts, err := s.ListTokens(ctx)
	must(t, err)
	if len(ts) != 2 || ts[0].Name != "backup" || ts[1].Name != "ci" || !ts[0].ExpiresAt.IsZero() {
		t.Fatalf("ListTokens = %+v, want backup (never expires), ci", ts)
	}
	if d := diffTime("LastUsed", ts[1].LastUsed, at(time.Hour)); d != "" {
		t.Error(d)
	}
	wantKind(t, s.TouchToken(ctx, "nope", t0), fault.ErrNotFound, "nope")

	must(t, s.DeleteToken(ctx, "CI", auditEv(account.AuditTokenRevoke, "CI")))
	if _, err := s.TokenByHash(ctx, "hash-ci"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("revoked token: err = %v, want NotFound", err)
	}
	wantKind(t, s.DeleteToken(ctx, "ci", device.AuditEvent{}), fault.ErrNotFound, "ci")
}

// runTokenOwner checks that a token made for an account reads its owner's
// current role and goes with the account, and that a service token has no
// owner and outlives every account.
func runTokenOwner(t *testing.T, o accountOpener) {
	s, al := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	addAccount(t, s, "alice", account.RoleAdmin)
	owned := account.Token{Name: "alice-ci", Role: account.RoleAdmin, CreatedAt: t0, CreatedBy: "web:alice", Owner: "ALICE"}
	must(t, s.CreateToken(ctx, owned, "hash-owned", auditEv(account.AuditTokenCreate, "alice-ci")))
	must(t, s.CreateToken(ctx, account.Token{Name: "alice-2", Role: account.RoleViewer, CreatedAt: t0, Owner: "alice"}, "hash-owned-2", device.AuditEvent{}))
	must(t, s.CreateToken(ctx, account.Token{Name: "svc", Role: account.RoleAdmin, CreatedAt: t0, CreatedBy: "cli:root"}, "hash-svc", device.AuditEvent{}))
	wantKind(t, s.CreateToken(ctx, account.Token{Name: "ghost", Role: account.RoleAdmin, CreatedAt: t0, Owner: "nobody"}, "hash-ghost", device.AuditEvent{}), fault.ErrNotFound, "nobody")
	if _, err := s.TokenByHash(ctx, "hash-ghost"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("token refused for an unknown owner was stored: err = %v", err)
	}

	check := func(step, hash string, want account.Token) {
		t.Helper()
		got, err := s.TokenByHash(ctx, hash)
		if err != nil {
			t.Fatalf("%s: TokenByHash(%s): %v", step, hash, err)
		}
		if got.Owner != want.Owner || got.OwnerRole != want.OwnerRole || got.Service != want.Service || got.Role != want.Role {
			t.Errorf("%s: TokenByHash(%s) owner %q (role %q) service %v role %q; want owner %q (role %q) service %v role %q", step, hash,
				got.Owner, got.OwnerRole, got.Service, got.Role, want.Owner, want.OwnerRole, want.Service, want.Role)
		}
	}
	check("created", "hash-owned", account.Token{Owner: "alice", OwnerRole: account.RoleAdmin, Role: account.RoleAdmin})
	check("created", "hash-svc", account.Token{Service: true, Role: account.RoleAdmin})

	_, err := s.SetRole(ctx, "alice", account.RoleViewer, t0, device.AuditEvent{})
	must(t, err)
	check("demoted", "hash-owned", account.Token{Owner: "alice", OwnerRole: account.RoleViewer, Role: account.RoleAdmin})
	ts, err := s.ListTokens(ctx)
	must(t, err)
	if len(ts) != 3 || ts[0].Name != "alice-2" || ts[1].Name != "alice-ci" || ts[1].OwnerRole != account.RoleViewer || ts[1].Owner != "alice" || !ts[2].Service || ts[2].Owner != "" {
		t.Errorf("ListTokens after the demotion = %+v", ts)
	}

	must(t, s.DeleteAccount(ctx, "Alice", auditEv(account.AuditAccountDelete, "Alice")))
	for _, h := range []string{"hash-owned", "hash-owned-2"} {
		if _, err := s.TokenByHash(ctx, h); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("owner removed: TokenByHash(%s): err = %v, want NotFound", h, err)
		}
	}
	check("owner removed", "hash-svc", account.Token{Service: true, Role: account.RoleAdmin})
	ts, err = s.ListTokens(ctx)
	must(t, err)
	if len(ts) != 1 || ts[0].Name != "svc" {
		t.Errorf("ListTokens after the owner's removal = %+v, want svc alone", ts)
	}
	// A new account of the same name does not get the old tokens back.
	addAccount(t, s, "alice", account.RoleAdmin)
	if _, err := s.TokenByHash(ctx, "hash-owned"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("account re-created: TokenByHash: err = %v, want NotFound", err)
	}
	evs, err := al.ListAudit(ctx, device.AuditQuery{})
	must(t, err)
	var detail string
	for _, ev := range evs {
		if ev.Action == account.AuditAccountDelete {
			detail = ev.Detail
		}
	}
	if !strings.HasSuffix(detail, "API tokens revoked with it: alice-2, alice-ci") {
		t.Errorf("account.delete detail = %q, want it to name the revoked tokens", detail)
	}
}

func runAccountAudit(t *testing.T, o accountOpener) {
	s, al := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	addAccount(t, s, "eve", account.RoleViewer)
	must(t, s.SetPassword(ctx, "eve", "h2", t0, auditEv(account.AuditAccountPassword, "eve")))
	_, err := s.SetRole(ctx, "EVE", account.RoleAdmin, t0, auditEv(account.AuditAccountRole, "EVE"))
	must(t, err)
	must(t, s.DeleteAccount(ctx, "EVE", auditEv(account.AuditAccountDelete, "EVE")))
	must(t, s.CreateToken(ctx, account.Token{Name: "ci", Role: account.RoleAdmin, CreatedAt: t0}, "h", auditEv(account.AuditTokenCreate, "ci")))
	must(t, s.DeleteToken(ctx, "ci", auditEv(account.AuditTokenRevoke, "ci")))

	// Refused changes write no event.
	_ = s.DeleteAccount(ctx, "root", auditEv(account.AuditAccountDelete, "root"))
	_ = s.CreateToken(ctx, account.Token{Name: "x", Role: "superuser", CreatedAt: t0}, "hx", auditEv(account.AuditTokenCreate, "x"))

	evs, err := al.ListAudit(ctx, device.AuditQuery{})
	must(t, err)
	var got []string
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		got = append(got, fmt.Sprintf("%s %s by %s", ev.Action, ev.Target, ev.Actor))
	}
	want := []string{
		"account.create root by cli:storetest",
		"account.create eve by cli:storetest",
		"account.password eve by cli:storetest",
		"account.role eve by cli:storetest", // the stored name
		"account.delete eve by cli:storetest",
		"token.create ci by cli:storetest",
		"token.revoke ci by cli:storetest",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit stream:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// runDisable covers SetDisabled: a disabled account keeps its name and
// tokens but has no sessions and its tokens no role; disabled admins do
// not count for the last-admin rules; enabling gives everything back.
func runDisable(t *testing.T, o accountOpener) {
	s, al := o.fresh(t)
	ctx := t.Context()
	addAccount(t, s, "root", account.RoleAdmin)
	addAccount(t, s, "alice", account.RoleAdmin)
	must(t, s.CreateToken(ctx, account.Token{Name: "alice-ci", Role: account.RoleAdmin, CreatedAt: t0, Owner: "alice"}, "hash-alice", device.AuditEvent{}))
	must(t, s.CreateSession(ctx, session("sess-alice", "alice", t0), t0.Add(-time.Hour)))
	must(t, s.CreateSession(ctx, session("sess-root", "root", t0), t0.Add(-time.Hour)))

	off := t0.Add(time.Hour).Truncate(time.Microsecond)
	a, err := s.SetDisabled(ctx, "ALICE", off, off, auditEv(account.AuditAccountDisable, "ALICE"))
	must(t, err)
	if a.Name != "alice" || !a.DisabledAt.Equal(off) || !a.UpdatedAt.Equal(off) || a.Role != account.RoleAdmin {
		t.Errorf("disabled account = %+v, want alice, admin, disabled and updated at %v", a, off)
	}
	if _, err := s.GetSession(ctx, "sess-alice"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("the disabled account's session: err = %v, want NotFound", err)
	}
	if _, err := s.GetSession(ctx, "sess-root"); err != nil {
		t.Errorf("another account's session: %v", err)
	}
	if _, err := s.TokenByHash(ctx, "hash-alice"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("a disabled owner's token: err = %v, want NotFound", err)
	}
	ts, err := s.ListTokens(ctx)
	must(t, err)
	if len(ts) != 1 || ts[0].Owner != "alice" || ts[0].OwnerRole != "" || ts[0].Service || ts[0].EffectiveRole() != "" {
		t.Errorf("ListTokens with the owner disabled = %+v, want alice's token with no role", ts)
	}
	c, err := s.GetCredentials(ctx, "alice")
	must(t, err)
	if !c.Disabled() {
		t.Errorf("GetCredentials of a disabled account: %+v, want it disabled", c.Account)
	}
	as, err := s.ListAccounts(ctx)
	must(t, err)
	if len(as) != 2 || !as[0].Disabled() || as[1].Disabled() {
		t.Errorf("ListAccounts = %+v, want alice disabled, root not", as)
	}

	// root is the last enabled admin: not disabled, demoted nor removed.
	_, err = s.SetDisabled(ctx, "root", off, off, device.AuditEvent{})
	wantKind(t, err, fault.ErrConflict, "root")
	_, err = s.SetRole(ctx, "root", account.RoleViewer, off, device.AuditEvent{})
	wantKind(t, err, fault.ErrConflict, "root")
	wantKind(t, s.DeleteAccount(ctx, "root", device.AuditEvent{}), fault.ErrConflict, "root")
	if _, err := s.GetSession(ctx, "sess-root"); err != nil {
		t.Errorf("refused disable ended root's session: %v", err)
	}
	_, err = s.SetDisabled(ctx, "nobody", off, off, device.AuditEvent{})
	wantKind(t, err, fault.ErrNotFound, "nobody")

	on := off.Add(time.Hour)
	a, err = s.SetDisabled(ctx, "alice", time.Time{}, on, auditEv(account.AuditAccountEnable, "alice"))
	must(t, err)
	if a.Disabled() || !a.UpdatedAt.Equal(on) {
		t.Errorf("enabled account = %+v", a)
	}
	got, err := s.TokenByHash(ctx, "hash-alice")
	must(t, err)
	if got.OwnerRole != account.RoleAdmin {
		t.Errorf("enabled owner's token: owner role %q, want admin", got.OwnerRole)
	}
	// With alice enabled, root may go.
	_, err = s.SetDisabled(ctx, "root", on, on, device.AuditEvent{})
	must(t, err)

	evs, err := al.ListAudit(ctx, device.AuditQuery{})
	must(t, err)
	var actions []string
	for _, ev := range evs {
		if ev.Action == account.AuditAccountDisable || ev.Action == account.AuditAccountEnable {
			actions = append(actions, ev.Action+" "+ev.Target)
		}
	}
	if fmt.Sprint(actions) != fmt.Sprint([]string{"account.disable alice", "account.enable alice"}) &&
		fmt.Sprint(actions) != fmt.Sprint([]string{"account.enable alice", "account.disable alice"}) {
		t.Errorf("audit = %q, want alice's disable and enable (the stored name), nothing for the refused ones", actions)
	}
}
