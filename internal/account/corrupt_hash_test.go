package account_test

import (
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// TestCorruptHashMatchesNoPassword: an account whose stored hash does not
// parse (a damaged row, a hand edit, a format from elsewhere) cannot be
// logged in to, with its old password, a wrong one or none; it is not a
// way in for everyone.
func TestCorruptHashMatchesNoPassword(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	cred, err := f.store.GetCredentials(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	good := cred.PasswordHash
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=…,t=…,p=…, salt, key
	if len(parts) != 6 {
		t.Fatalf("stored hash %q is not a PHC string", good)
	}
	join := func(p ...string) string { return strings.Join(p, "$") }
	for _, c := range []struct{ name, hash string }{
		{"empty", ""},
		{"garbage", "not a hash"},
		{"truncated", good[:len(good)/2]},
		{"argon2i", join("", "argon2i", parts[2], parts[3], parts[4], parts[5])},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"version", join("", "argon2id", "v=16", parts[3], parts[4], parts[5])},
		{"zero-time", join("", "argon2id", parts[2], "m=64,t=0,p=1", parts[4], parts[5])},
		{"huge-memory", join("", "argon2id", parts[2], "m=4294967295,t=1,p=1", parts[4], parts[5])},
		{"bad-salt", join("", "argon2id", parts[2], parts[3], "!!!", parts[5])},
		{"empty-key", join("", "argon2id", parts[2], parts[3], parts[4], "")},
		{"short-key", join("", "argon2id", parts[2], parts[3], parts[4], "AAAA")},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := device.AuditEvent{At: f.clock.Now(), Actor: cli, Action: account.AuditAccountPassword, Target: "root"}
			if err := f.store.SetPassword(ctx, "root", c.hash, f.clock.Now(), ev); err != nil {
				t.Fatal(err)
			}
			for _, pw := range []string{adminPW, "wrong password!", ""} {
				// Past every throttle window: each attempt is evaluated.
				f.clock.Advance(time.Hour)
				s, err := f.svc.Login(ctx, "root", pw, remote)
				if err == nil {
					t.Fatalf("password %q logged in to an account whose hash is %q: session %+v", pw, c.hash, s.Account)
				}
				wantKind(t, err, fault.Unauthorized)
			}
		})
	}
	// The account works again once its password is set properly.
	if err := f.svc.SetPassword(ctx, cli, "root", adminPW); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.svc.Login(ctx, "root", adminPW, remote); err != nil {
		t.Fatalf("login after the password was set again: %v", err)
	}
}
