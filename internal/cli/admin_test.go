package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// runIn executes capf with a data directory and stdin.
func runIn(t *testing.T, data, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := RunWithInput(context.Background(), append([]string{"--data", data}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestAdminCommands runs the account and token commands while another
// store (as `capf serve` would) holds the database open, and checks what
// they did through an account service over that store.
func TestAdminCommands(t *testing.T) {
	data := initData(t)
	serving, err := sqlite.Open(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer serving.Close()
	svc := account.NewService(account.Options{Store: serving})
	ctx := t.Context()

	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  string // substring of stdout+stderr
	}{
		{"ok/add-stdin", "alice's long password\n", []string{"admin", "add", "alice", "--password-stdin"}, ExitOK, "added account alice (role admin)"},
		{"fail/add-again", "alice's long password\n", []string{"admin", "add", "ALICE", "--password-stdin"}, ExitConflict, "exists"},
		{"fail/add-short", "short\n", []string{"admin", "add", "bob", "--password-stdin"}, ExitUsage, "at least 12"},
		{"fail/add-empty-stdin", "", []string{"admin", "add", "bob", "--password-stdin"}, ExitUsage, "no password"},
		{"fail/add-bad-role", "", []string{"admin", "add", "bob", "--role", "root"}, ExitUsage, "want admin or viewer"},
		{"fail/add-bad-name", "", []string{"admin", "add", "bob smith"}, ExitUsage, "account name"},
		{"ok/add-generated", "", []string{"admin", "add", "viewer1", "--role", "viewer"}, ExitOK, "shown only now"},
		{"ok/role", "", []string{"admin", "role", "viewer1", "admin"}, ExitOK, "viewer1: role admin"},
		{"fail/role-bad", "", []string{"admin", "role", "viewer1", "god"}, ExitUsage, "want admin or viewer"},
		{"fail/role-unknown", "", []string{"admin", "role", "nobody", "admin"}, ExitNotFound, "not found"},
		{"ok/disable", "", []string{"admin", "disable", "VIEWER1"}, ExitOK, "viewer1: disabled"},
		{"ok/list-disabled", "", []string{"admin", "list"}, ExitOK, "DISABLED"},
		{"fail/disable-last-enabled-admin", "", []string{"admin", "disable", "alice"}, ExitConflict, "last enabled admin"},
		{"fail/disable-unknown", "", []string{"admin", "disable", "nobody"}, ExitNotFound, "not found"},
		{"ok/enable", "", []string{"admin", "enable", "viewer1"}, ExitOK, "viewer1: enabled"},
		{"ok/rm", "", []string{"admin", "rm", "viewer1"}, ExitOK, "removed account viewer1"},
		{"fail/rm-last-admin", "", []string{"admin", "rm", "alice"}, ExitConflict, "last admin"},
		{"fail/demote-last-admin", "", []string{"admin", "role", "alice", "viewer"}, ExitConflict, "last admin"},
		{"fail/rm-unknown", "", []string{"admin", "rm", "nobody"}, ExitNotFound, "not found"},
		{"ok/passwd-stdin", "alice's second password\r\n", []string{"admin", "passwd", "alice", "--password-stdin"}, ExitOK, "sessions are ended"},
		{"fail/passwd-unknown", "", []string{"admin", "passwd", "nobody"}, ExitNotFound, "not found"},
		{"ok/list", "", []string{"admin", "list"}, ExitOK, "alice  admin"},
		{"fail/token-bad-expiry", "", []string{"admin", "token", "create", "ci", "--expires", "soon"}, ExitUsage, "lifetime"},
		{"ok/token-create", "", []string{"admin", "token", "create", "ci"}, ExitOK, "role viewer, expires 20"},
		{"fail/token-again", "", []string{"admin", "token", "create", "ci"}, ExitConflict, "exists"},
		{"ok/token-forever", "", []string{"admin", "token", "create", "backup", "--role", "admin", "--expires", "0"}, ExitOK, "expires never"},
		{"ok/token-list", "", []string{"admin", "token", "list"}, ExitOK, "ci      viewer"},
		{"ok/token-revoke", "", []string{"admin", "token", "revoke", "backup"}, ExitOK, "revoked token backup"},
		{"fail/token-revoke-unknown", "", []string{"admin", "token", "revoke", "backup"}, ExitNotFound, "not found"},
		{"fail/unknown-subcommand", "", []string{"admin", "frobnicate"}, ExitUsage, "unknown command"},
	}
	outputs := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runIn(t, data, tt.stdin, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.wantOut) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.wantOut, out, errOut)
			}
			outputs[tt.name] = out
		})
	}

	// The listing while viewer1 was disabled gave when.
	for _, line := range strings.Split(outputs["ok/list-disabled"], "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "viewer1" && !strings.HasPrefix(f[len(f)-1], "20") {
			t.Errorf("admin list while viewer1 is disabled: %q, want the time it was disabled last", line)
		}
	}

	// The passwords work through the server's store.
	if _, err := svc.Login(ctx, "alice", "alice's second password", "192.0.2.1"); err != nil {
		t.Errorf("alice with the password set by passwd: %v", err)
	}
	// A generated password is printed alone on stdout and works.
	out, errOut, code := runIn(t, data, "", "admin", "add", "carol")
	if code != ExitOK {
		t.Fatalf("add carol: %d %s", code, errOut)
	}
	pw := strings.TrimSpace(out)
	if len(pw) != account.GeneratedPasswordLen {
		t.Fatalf("stdout %q: want the generated password alone", out)
	}
	if _, err := svc.Login(ctx, "carol", pw, "192.0.2.1"); err != nil {
		t.Errorf("carol with the generated password: %v", err)
	}
	// The token secret printed once authenticates.
	secret := strings.TrimSpace(outputs["ok/token-create"])
	if tok, err := svc.Authenticate(ctx, secret); err != nil || tok.Name != "ci" || tok.Role != account.RoleViewer {
		t.Errorf("Authenticate(printed secret %q) = %+v, %v", secret, tok, err)
	}

	// JSON listings.
	out, _, code = runIn(t, data, "", "admin", "list", "--json")
	var as []account.Account
	if err := json.Unmarshal([]byte(out), &as); code != ExitOK || err != nil || len(as) != 2 || as[0].Name != "alice" || as[1].Name != "carol" {
		t.Errorf("admin list --json: exit %d, %v: %s", code, err, out)
	}
	out, _, code = runIn(t, data, "", "admin", "token", "list", "--json")
	var ts []account.Token
	if err := json.Unmarshal([]byte(out), &ts); code != ExitOK || err != nil || len(ts) != 1 || ts[0].Name != "ci" || ts[0].ExpiresAt.IsZero() {
		t.Errorf("admin token list --json: exit %d, %v: %s", code, err, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, secret[len("capf_"):]) {
		t.Error("token list shows the secret")
	}

	// Every change is audited as the CLI user, without secrets.
	evs, err := serving.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, ev := range evs {
		actions[ev.Action]++
		if ev.Actor.Kind != device.ActorCLI {
			t.Errorf("event %s %s by %v, want the CLI", ev.Action, ev.Target, ev.Actor)
		}
		b, _ := json.Marshal(ev)
		for _, s := range []string{"alice's long password", "alice's second password", pw, secret} {
			if strings.Contains(string(b), s) {
				t.Errorf("event %s holds a secret: %s", ev.Action, b)
			}
		}
	}
	for a, n := range map[string]int{"account.create": 3, "account.role": 1, "account.delete": 1, "account.password": 1, "token.create": 2, "token.revoke": 1,
		"account.disable": 1, "account.enable": 1} {
		if actions[a] != n {
			t.Errorf("%d %s events, want %d (all: %v)", actions[a], a, n, actions)
		}
	}
}

func TestReadPassword(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"newline", "pass word 1234\nrest", "pass word 1234", true},
		{"crlf", "pass word 1234\r\n", "pass word 1234", true},
		{"no-newline", "pass word 1234", "pass word 1234", true},
		{"keeps-spaces", "  spaced  \n", "  spaced  ", true},
		{"empty", "\n", "", false},
		{"too-long", strings.Repeat("x", account.MaxPasswordLen+10), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPassword(strings.NewReader(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("readPassword = %q, %v; want %q, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}
