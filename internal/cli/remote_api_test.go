package cli

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/api"
	"github.com/capf-server/capf/internal/apiclient"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/webauth"
)

// viewerToken is a token of the viewer role.
const viewerToken = "capf_remote_test_viewer"

// realAPI is internal/api's handler behind a stand-in for webauth's
// middleware that knows two tokens: testToken, an admin called
// "remote-test", and viewerToken, a viewer called "watcher".
func realAPI(svc *device.Service) http.Handler {
	h, _ := api.New(api.Options{Devices: svc})
	return withTestTokens(h)
}

// withTestTokens puts the principal of testToken or viewerToken into the
// request's context, as webauth's middleware would, and serves h.
func withTestTokens(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer " + testToken:
			p := account.Principal{Kind: device.ActorAPI, Name: "remote-test", Role: account.RoleAdmin, Remote: r.RemoteAddr}
			r = r.WithContext(webauth.WithPrincipal(r.Context(), p))
		case "Bearer " + viewerToken:
			p := account.Principal{Kind: device.ActorAPI, Name: "watcher", Role: account.RoleViewer, Remote: r.RemoteAddr}
			r = r.WithContext(webauth.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	})
}

// TestRemoteOutputThroughTheRealAPI is TestRemoteOutputIsLocalOutput
// against internal/api itself: the remote CLI and the API agree on the
// contract, and the output is the local output.
func TestRemoteOutputThroughTheRealAPI(t *testing.T) { compareLocalRemote(t, realAPI) }

// TestRemoteRolesThroughTheRealAPI: the API's 401 and 403 reach the CLI as
// its errors, with the API's words.
func TestRemoteRolesThroughTheRealAPI(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, _ := remoteServer(t, data, realAPI)
	tests := []struct {
		name     string
		token    string
		args     []string
		wantCode int
		want     string
	}{
		{"viewer-reads", viewerToken, []string{"device", "list"}, ExitOK, "0 of 0 devices"},
		{"viewer-cannot-write", viewerToken, []string{"device", "add", "CSFVIEWER"}, ExitFailure, "viewer"},
		{"unknown-token", "nope", []string{"device", "list"}, ExitFailure, "authentication required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--server", remote[1], "--token", tt.token, "--server-ca", remote[5]}, tt.args...)
			out, errOut, code := run(t, data, args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
}

// TestClientCallsTheCLIDoesNotMake: apiclient's history and service calls
// against the real API, which serves no service activation here (503).
func TestClientCallsTheCLIDoesNotMake(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, st := remoteServer(t, data, realAPI)
	if _, errOut, code := run(t, data, "device", "add", "CSFHISTORY", "--auth-mode", "string", "--auth-string", "2468", "--operation", "install"); code != ExitOK {
		t.Fatal(errOut)
	}
	phoneSession(t, st, "CSFHISTORY")
	pemData, err := os.ReadFile(remote[5])
	if err != nil {
		t.Fatal(err)
	}
	pool, err := apiclient.CertPool(pemData)
	if err != nil {
		t.Fatal(err)
	}
	c, err := apiclient.New(apiclient.Options{Server: remote[1], Token: testToken, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, limit := range []int{0, 1, 5000} {
		as, err := c.History(ctx, "CSFHISTORY", limit)
		want := 2
		if limit == 1 {
			want = 1
		}
		if err != nil || len(as) != want || as[0].Result != "Upgrade Success" {
			t.Fatalf("history limit %d: %v, %+v", limit, err, as)
		}
	}
	if _, err := c.History(ctx, "CSFNOBODY", 1); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("history of an unknown device: %v", err)
	}
	if _, err := c.Service(ctx); fault.KindOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("service: %v", err)
	}
	if _, err := c.SetService(ctx, false); fault.KindOf(err) != fault.Unavailable {
		t.Fatalf("set service: %v", err)
	}
}

// TestRemoteService: `capf service` through the real API changes the
// activation the local command reads, as the token, with the same output.
func TestRemoteService(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, _ := remoteServer(t, data, systemAPI(t, data))
	if out, errOut, code := run(t, data, append(remote, "service", "deactivate")...); code != ExitOK || !strings.Contains(out, "inactive") {
		t.Fatalf("remote deactivate: exit %d: %s%s", code, out, errOut)
	}
	local, _, code := run(t, data, "service", "status")
	if code != ExitOK || !strings.Contains(local, "inactive") || !strings.Contains(local, "by api:remote-test") {
		t.Fatalf("local status after the remote deactivate: %s", local)
	}
	if out, _, _ := run(t, data, append(remote, "service", "status")...); out != local {
		t.Errorf("remote status differs from local:\n%s\nlocal:\n%s", out, local)
	}
	if _, errOut, code := run(t, data, "--server", remote[1], "--token", viewerToken, "--server-ca", remote[5], "service", "activate"); code != ExitFailure || !strings.Contains(errOut, "viewer") {
		t.Errorf("a viewer's activate: exit %d: %s", code, errOut)
	}
}

// systemAPI builds internal/api with the device service and the system
// service (parameters, activation) of the data directory data.
func systemAPI(t *testing.T, data string) apiHandler {
	return func(svc *device.Service) http.Handler {
		st, err := sqlite.Open(context.Background(), datadir.Dir(data).DB(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		h, _ := api.New(api.Options{Devices: svc, System: system.NewService(system.Options{DataDir: data, Store: st})})
		return withTestTokens(h)
	}
}
