package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/webauth"
)

// TestTokensEndWithTheirAccount drives the admin listener as `serve`
// composes it (real middleware, API, account service and SQLite store): a
// token an administrator creates through the API acts with at most that
// account's current role and stops working when the account is removed,
// while a service token made with `capf admin token create` is unaffected.
func TestTokensEndWithTheirAccount(t *testing.T) {
	data := initData(t)
	ctx := t.Context()
	st, err := sqlite.Open(ctx, datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	accounts := account.NewService(account.Options{Store: st, Password: account.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	devices := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec("rsa2048")})
	srv := httptest.NewServer(adminServices{devices: devices, accounts: accounts}.handler(adminhttp.Options{Gatherer: prometheus.NewRegistry()}))
	defer srv.Close()

	root := device.CLIActor("root")
	const pw = "alice's long password"
	for _, name := range []string{"root", "alice"} {
		if _, err := accounts.AddAccount(ctx, root, name, account.RoleAdmin, pw); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := accounts.Login(ctx, "alice", pw, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}

	// alice creates an admin token from her browser session.
	body, _ := json.Marshal(map[string]string{"name": "alice-ci", "role": "admin", "expires": "0"})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", sess.CSRF)
	req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: sess.ID})
	code, out := send(t, req)
	if code != http.StatusCreated {
		t.Fatalf("create token with alice's session: %d %s", code, out)
	}
	var created struct{ Token string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Token == "" {
		t.Fatalf("create token: %v %s", err, out)
	}
	owned := created.Token

	// A token made with alice's token is alice's too.
	body, _ = json.Marshal(map[string]string{"name": "alice-child", "role": "admin", "expires": "0"})
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/api/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+owned)
	code, out = send(t, req)
	var child struct{ Token string }
	if err := json.Unmarshal([]byte(out), &child); code != http.StatusCreated || err != nil || child.Token == "" {
		t.Fatalf("create token with alice's token: %d %s", code, out)
	}

	// A service token, made with the CLI while the store is open.
	cliOut, cliErr, rc := runIn(t, data, "", "admin", "token", "create", "svc", "--role", "admin", "--expires", "0")
	if rc != ExitOK {
		t.Fatalf("capf admin token create: exit %d %s%s", rc, cliOut, cliErr)
	}
	service := strings.TrimSpace(cliOut)

	// read: GET the device list; write: revoke a token that does not
	// exist (404 for an admin, 403 for a viewer, 401 for nobody): it
	// changes nothing whoever asks.
	probe := func(secret string) (read, write int) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/devices", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		read, _ = send(t, r)
		w, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/v1/tokens/no-such-token", nil)
		w.Header.Set("Authorization", "Bearer "+secret)
		write, _ = send(t, w)
		return read, write
	}
	steps := []struct {
		name                string
		change              func() error
		wantOwned, wantServ [2]int
	}{
		{"admin", func() error { return nil }, [2]int{200, 404}, [2]int{200, 404}},
		{"demoted", func() error {
			_, err := accounts.SetRole(ctx, root, "alice", account.RoleViewer)
			return err
		}, [2]int{200, 403}, [2]int{200, 404}},
		{"promoted-again", func() error {
			_, err := accounts.SetRole(ctx, root, "ALICE", account.RoleAdmin)
			return err
		}, [2]int{200, 404}, [2]int{200, 404}},
		{"disabled", func() error {
			if _, err := accounts.DisableAccount(ctx, root, "alice"); err != nil {
				return err
			}
			// Her browser session ended with it.
			r, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/devices", nil)
			r.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: sess.ID})
			if code, out := send(t, r); code != http.StatusUnauthorized {
				t.Errorf("alice's session after her account was disabled: %d %s", code, out)
			}
			return nil
		}, [2]int{401, 401}, [2]int{200, 404}},
		{"enabled-again", func() error {
			_, err := accounts.EnableAccount(ctx, root, "alice")
			return err
		}, [2]int{200, 404}, [2]int{200, 404}},
		{"removed", func() error { return accounts.RemoveAccount(ctx, root, "alice") }, [2]int{401, 401}, [2]int{200, 404}},
		{"recreated", func() error {
			_, err := accounts.AddAccount(ctx, root, "alice", account.RoleAdmin, pw)
			return err
		}, [2]int{401, 401}, [2]int{200, 404}},
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if r, w := probe(owned); [2]int{r, w} != s.wantOwned {
			t.Errorf("%s: alice's token: read %d, write %d; want %v", s.name, r, w, s.wantOwned)
		}
		if r, w := probe(child.Token); [2]int{r, w} != s.wantOwned {
			t.Errorf("%s: the token made with alice's token: read %d, write %d; want %v", s.name, r, w, s.wantOwned)
		}
		if r, w := probe(service); [2]int{r, w} != s.wantServ {
			t.Errorf("%s: service token: read %d, write %d; want %v", s.name, r, w, s.wantServ)
		}
	}

	// The listings say whose each token is, and the removal is audited.
	list, _, rc := runIn(t, data, "", "admin", "token", "list")
	if rc != ExitOK || !strings.Contains(list, "svc   admin  service") || strings.Contains(list, "alice-") {
		t.Errorf("token list after alice's removal:\n%s", list)
	}
	evs, err := st.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		if ev.Action == account.AuditAccountDelete && strings.HasSuffix(ev.Detail, "API tokens revoked with it: alice-child, alice-ci") {
			found = true
		}
	}
	if !found {
		t.Errorf("no account.delete event naming the revoked token alice-ci in %+v", evs)
	}
}

// send performs req and returns the status and body.
func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
