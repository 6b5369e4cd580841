package webui_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// openStream opens the live status stream of SEP000000000001 with the
// request's headers set by prep and returns the response; its body is
// closed when the test ends.
func openStream(t *testing.T, url string, prep func(*http.Request)) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/phones/SEP000000000001/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	prep(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// watchStream waits for resp's first event and returns a channel closed
// when the stream ends.
func watchStream(t *testing.T, resp *http.Response) <-chan struct{} {
	t.Helper()
	ended := make(chan struct{})
	first := make(chan bool, 1)
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(resp.Body)
		sawEvent := false
		for sc.Scan() {
			if !sawEvent && strings.HasPrefix(sc.Text(), "event: status") {
				sawEvent = true
				first <- true
			}
		}
		if !sawEvent {
			first <- false
		}
	}()
	select {
	case ok := <-first:
		if !ok {
			t.Fatal("the stream ended before its first event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first event")
	}
	return ended
}

func TestLiveStatusStreamsPerSession(t *testing.T) {
	e := newEnv(t, func(o *webui.Options) { o.StreamsPerSession, o.MaxStreams = 2, 3 })
	e.add(device.Device{Name: "SEP000000000001"})
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close) // after the streams' bodies close
	as := func(who string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-Test-As", who) }
	}
	var open []*http.Response
	for i := range 2 {
		resp := openStream(t, srv.URL, as("viewer"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("viewer's stream %d: %d", i+1, resp.StatusCode)
		}
		open = append(open, resp)
	}
	third := openStream(t, srv.URL, as("viewer"))
	body, _ := io.ReadAll(third.Body)
	if third.StatusCode != http.StatusTooManyRequests || third.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "this session already has 2 live status streams open") {
		t.Fatalf("the session's third stream: %d %q, want 429 with Retry-After", third.StatusCode, body)
	}
	// Another session still gets one, until the total is reached.
	if resp := openStream(t, srv.URL, as("admin")); resp.StatusCode != http.StatusOK {
		t.Fatalf("another session's stream: %d", resp.StatusCode)
	}
	resp := openStream(t, srv.URL, as("admin"))
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "the server already has 3 live status streams open") {
		t.Fatalf("a stream over the total: %d %q, want 429", resp.StatusCode, body)
	}
	// A closed stream gives its slot back.
	open[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp := openStream(t, srv.URL, as("viewer"))
		if resp.StatusCode == http.StatusOK {
			break
		}
		io.Copy(io.Discard, resp.Body)
		if time.Now().After(deadline) {
			t.Fatalf("the slot of a closed stream was not given back: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clock is a settable time for the account service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestLiveStatusEndsWithSession runs the real account service and
// middleware: a live status stream ends within a few re-checks of its
// session's end, however it ends.
func TestLiveStatusEndsWithSession(t *testing.T) {
	actor := device.CLIActor("test")
	tests := []struct {
		name  string
		token bool
		end   func(ctx context.Context, a *account.Service, c *clock, sessionID string) error
	}{
		{name: "logout", end: func(ctx context.Context, a *account.Service, _ *clock, id string) error { return a.Logout(ctx, id) }},
		{name: "password-change", end: func(ctx context.Context, a *account.Service, _ *clock, _ string) error {
			return a.SetPassword(ctx, actor, "victor", "another long password")
		}},
		{name: "account-removed", end: func(ctx context.Context, a *account.Service, _ *clock, _ string) error {
			return a.RemoveAccount(ctx, actor, "victor")
		}},
		{name: "role-changed", end: func(ctx context.Context, a *account.Service, _ *clock, _ string) error {
			_, err := a.SetRole(ctx, actor, "victor", account.RoleAdmin)
			return err
		}},
		{name: "idle-expiry", end: func(_ context.Context, _ *account.Service, c *clock, _ string) error {
			c.add(31 * time.Minute)
			return nil
		}},
		{name: "token-revoked", token: true, end: func(ctx context.Context, a *account.Service, _ *clock, _ string) error {
			return a.RevokeToken(ctx, actor, "monitor")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "capf.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			clk := &clock{t: time.Now()}
			accounts := account.NewService(account.Options{Store: st, Now: clk.now, Password: account.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1},
				Logger: slog.New(slog.DiscardHandler)})
			devices := device.NewService(device.ServiceOptions{Store: st})
			if _, err := devices.Add(ctx, actor, device.Device{Name: "SEP000000000001"}, false); err != nil {
				t.Fatal(err)
			}
			if _, err := accounts.AddAccount(ctx, actor, "admin", account.RoleAdmin, "the first admin's password"); err != nil {
				t.Fatal(err)
			}
			if _, err := accounts.AddAccount(ctx, actor, "victor", account.RoleViewer, "victor's long password"); err != nil {
				t.Fatal(err)
			}
			ui := webui.New(webui.Options{Devices: devices, Accounts: accounts, Sessions: accounts,
				EventInterval: 10 * time.Millisecond, SessionRecheck: 50 * time.Millisecond})
			srv := httptest.NewServer(webauth.Middleware(accounts, nil)(ui))
			t.Cleanup(srv.Close)

			var prep func(*http.Request)
			sessionID := ""
			if tt.token {
				secret, _, err := accounts.CreateToken(ctx, actor, "", "monitor", account.RoleViewer, 0)
				if err != nil {
					t.Fatal(err)
				}
				prep = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }
			} else {
				s, err := accounts.Login(ctx, "victor", "victor's long password", "192.0.2.9")
				if err != nil {
					t.Fatal(err)
				}
				sessionID = s.ID
				prep = func(r *http.Request) { r.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: s.ID}) }
			}
			resp := openStream(t, srv.URL, prep)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("stream: %d", resp.StatusCode)
			}
			ended := watchStream(t, resp)
			// A few re-checks pass while the session holds.
			select {
			case <-ended:
				t.Fatal("the stream ended while its session held")
			case <-time.After(300 * time.Millisecond):
			}
			if err := tt.end(ctx, accounts, clk, sessionID); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			select {
			case <-ended:
				t.Logf("the stream ended %v after the session", time.Since(start).Round(time.Millisecond))
			case <-time.After(5 * time.Second):
				t.Fatal("the stream went on after its session ended")
			}
		})
	}
}
