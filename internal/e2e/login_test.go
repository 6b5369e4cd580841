package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/webauth"
)

// loginClient posts the login form from the local address src, as a
// script would (no browser headers), without following the redirect.
func loginClient(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:     d.DialContext,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test's own admin CA; TLS is tested elsewhere
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// login posts username and password and returns the status, whether a
// session cookie came back, and the Retry-After seconds of a refusal.
func login(t *testing.T, c *http.Client, base, user, pass string) (code int, in bool, retryAfter int) {
	t.Helper()
	resp, err := c.PostForm(base+"/login", url.Values{"username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	retryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
	for _, ck := range resp.Cookies() {
		if ck.Name == webauth.CookieName && ck.Value != "" {
			return resp.StatusCode, true, retryAfter
		}
	}
	return resp.StatusCode, false, retryAfter
}

// TestLoginBruteForce: a stranger hammering the admin's login from one
// address gets only a handful of guesses evaluated, then is told to wait
// (429); the real admin, from another address, gets in with the right
// password once the account's throttle window has passed.
func TestLoginBruteForce(t *testing.T) {
	s := startServer(t, nil, "")
	base := adminURL(t, s)
	pw, err := os.ReadFile(filepath.Join(s.data, "admin-initial-password"))
	if err != nil {
		t.Fatal(err)
	}
	attacker := loginClient("127.0.0.1")
	admin := loginClient("127.0.0.2")
	right := strings.TrimSpace(string(pw))
	// The attack: at least 60 quick tries, and on until a refusal asks for
	// a wait of 2 s or more. Right after that refusal (the wait still has
	// well over a second to run, however slow the machine), the real
	// admin's right password must be refused too: the throttle holds the
	// account, not only the attacking address.
	evaluated, throttled, adminTried := 0, 0, false
	for try := 0; try < 60 || !adminTried; try++ {
		if try >= 400 {
			t.Fatalf("400 wrong passwords and no wait of 2 s asked: %d evaluated, %d throttled", evaluated, throttled)
		}
		code, ok, wait := login(t, attacker, base, "admin", "wrong-password-guess")
		switch {
		case ok:
			t.Fatal("a wrong password logged in")
		case code == http.StatusUnauthorized:
			evaluated++
		case code == http.StatusTooManyRequests:
			throttled++
			if wait >= 2 && !adminTried {
				adminTried = true
				if code, ok, _ := login(t, admin, base, "admin", right); ok || code != http.StatusTooManyRequests {
					t.Fatalf("the account was not throttled: the right password during the attack got status %d (in: %v), want 429", code, ok)
				}
			}
		default:
			t.Fatalf("wrong password: status %d", code)
		}
		time.Sleep(10 * time.Millisecond) // an attacker's pace; the throttle, not the test, decides what is evaluated
	}
	// 5 free failures, then one guess per doubling delay (1 s, 2 s, …):
	// the quick tries get at most a few more evaluated.
	if evaluated < 5 || evaluated > 9 || throttled == 0 {
		t.Fatalf("the attack: %d evaluated, %d throttled; want 5..9 evaluated and the rest throttled", evaluated, throttled)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		code, ok, _ := login(t, admin, base, "admin", right)
		if ok {
			break
		}
		if code != http.StatusTooManyRequests {
			t.Fatalf("the right password during the throttle: status %d, want 429", code)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the real admin was still locked out after 90 s")
		case <-time.After(250 * time.Millisecond):
		}
	}
}
