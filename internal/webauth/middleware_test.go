package webauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// fakeSessions knows one valid session, one expired one, one valid token
// and one expired token.
type fakeSessions struct{}

const (
	goodSession    = "good-session-id"
	expiredSession = "expired-session-id"
	goodCSRF       = "the-csrf-token"
	goodToken      = "capf_good"
	expiredToken   = "capf_expired"
)

func (fakeSessions) Session(_ context.Context, id string) (account.Session, error) {
	switch id {
	case goodSession:
		return account.Session{ID: id, Account: "alice", Role: account.RoleAdmin, CSRF: goodCSRF}, nil
	case expiredSession:
		return account.Session{}, fault.New(fault.Unauthorized, "session expired")
	}
	return account.Session{}, fault.New(fault.Unauthorized, "unknown session")
}

func (fakeSessions) Authenticate(_ context.Context, bearer string) (account.Token, error) {
	switch bearer {
	case goodToken:
		return account.Token{Name: "ci", Role: account.RoleViewer}, nil
	case expiredToken:
		return account.Token{}, fault.New(fault.Unauthorized, "API token ci expired")
	}
	return account.Token{}, fault.New(fault.Unauthorized, "unknown API token")
}

// echo answers with the principal it got, as "kind:name:role", or "anonymous".
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		io.WriteString(w, "anonymous")
		return
	}
	io.WriteString(w, p.Kind+":"+p.Name+":"+string(p.Role)+"@"+p.Remote)
})

func TestMiddleware(t *testing.T) {
	h := Middleware(fakeSessions{}, slog.New(slog.DiscardHandler))(echo)
	form := url.Values{CSRFField: {goodCSRF}, "name": {"SEP001"}}.Encode()
	wrongForm := url.Values{CSRFField: {"forged"}}.Encode()
	tests := []struct {
		name        string
		method      string
		body        string
		headers     map[string]string
		cookie      string
		wantStatus  int
		wantBody    string // prefix
		wantCleared bool
	}{
		{name: "anonymous-get", method: "GET", wantStatus: 200, wantBody: "anonymous"},
		{name: "anonymous-post", method: "POST", wantStatus: 200, wantBody: "anonymous"},
		{name: "bearer-ok", method: "GET", headers: map[string]string{"Authorization": "Bearer " + goodToken}, wantStatus: 200, wantBody: "api:ci:viewer@192.0.2.7"},
		{name: "bearer-scheme-any-case", method: "GET", headers: map[string]string{"Authorization": "bearer " + goodToken}, wantStatus: 200, wantBody: "api:ci:viewer"},
		{name: "bearer-expired", method: "GET", headers: map[string]string{"Authorization": "Bearer " + expiredToken}, wantStatus: 200, wantBody: "anonymous"},
		{name: "bearer-unknown", method: "GET", headers: map[string]string{"Authorization": "Bearer capf_nope"}, wantStatus: 200, wantBody: "anonymous"},
		{name: "bad-bearer-ignores-cookie", method: "GET", headers: map[string]string{"Authorization": "Bearer capf_nope"}, cookie: goodSession, wantStatus: 200, wantBody: "anonymous"},
		{name: "bearer-post-needs-no-csrf", method: "POST", headers: map[string]string{"Authorization": "Bearer " + goodToken}, wantStatus: 200, wantBody: "api:ci:viewer"},
		{name: "bearer-post-cross-origin-allowed", method: "DELETE", headers: map[string]string{"Authorization": "Bearer " + goodToken, "Origin": "https://evil.example"}, wantStatus: 200, wantBody: "api:ci"},
		{name: "cookie-ok", method: "GET", cookie: goodSession, wantStatus: 200, wantBody: "web:alice:admin@192.0.2.7"},
		{name: "cookie-expired-cleared", method: "GET", cookie: expiredSession, wantStatus: 200, wantBody: "anonymous", wantCleared: true},
		{name: "cookie-unknown-cleared", method: "GET", cookie: "forged", wantStatus: 200, wantBody: "anonymous", wantCleared: true},
		{name: "cookie-post-csrf-missing", method: "POST", cookie: goodSession, wantStatus: 403, wantBody: "{"},
		{name: "cookie-post-csrf-wrong-header", method: "POST", cookie: goodSession, headers: map[string]string{CSRFHeader: "forged"}, wantStatus: 403},
		{name: "cookie-post-csrf-right-header", method: "POST", cookie: goodSession, headers: map[string]string{CSRFHeader: goodCSRF}, wantStatus: 200, wantBody: "web:alice"},
		{name: "cookie-post-csrf-right-form", method: "POST", cookie: goodSession, body: form,
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, wantStatus: 200, wantBody: "web:alice"},
		{name: "cookie-post-csrf-wrong-form", method: "POST", cookie: goodSession, body: wrongForm,
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, wantStatus: 403},
		{name: "cookie-post-csrf-in-query-not-accepted", method: "POST", cookie: goodSession, wantStatus: 403},
		{name: "cookie-delete-needs-csrf", method: "DELETE", cookie: goodSession, wantStatus: 403},
		{name: "cookie-head-needs-none", method: "HEAD", cookie: goodSession, wantStatus: 200},
		{name: "cookie-post-same-origin", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Origin": "https://capf.example:8443", "Sec-Fetch-Site": "same-origin"}, wantStatus: 200, wantBody: "web:alice"},
		{name: "cookie-post-cross-origin", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Origin": "https://evil.example"}, wantStatus: 403},
		{name: "cookie-post-other-scheme", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Origin": "http://capf.example:8443"}, wantStatus: 403},
		{name: "cookie-post-null-origin", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Origin": "null"}, wantStatus: 403},
		{name: "cookie-post-same-origin-fetch-with-null-origin", method: "POST", cookie: goodSession, // Chromium under Referrer-Policy no-referrer
			headers: map[string]string{CSRFHeader: goodCSRF, "Origin": "null", "Sec-Fetch-Site": "same-origin"}, wantStatus: 200},
		{name: "cookie-post-cross-site-with-own-origin", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Origin": "https://capf.example:8443", "Sec-Fetch-Site": "cross-site"}, wantStatus: 403},
		{name: "cookie-post-cross-site", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Sec-Fetch-Site": "cross-site"}, wantStatus: 403},
		{name: "anonymous-post-cross-origin", method: "POST", headers: map[string]string{"Origin": "https://evil.example"}, wantStatus: 403},
		// A sibling host (another site on the same registrable domain, a
		// compromised intranet page) is not this origin: same-site is
		// refused like cross-site, with the right token and even with
		// this server's Origin.
		{name: "cookie-post-same-site", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Sec-Fetch-Site": "same-site", "Origin": "https://wiki.example:8443"}, wantStatus: 403},
		{name: "cookie-post-same-site-own-origin", method: "POST", cookie: goodSession,
			headers: map[string]string{CSRFHeader: goodCSRF, "Sec-Fetch-Site": "same-site", "Origin": "https://capf.example:8443"}, wantStatus: 403},
		{name: "cookie-post-same-site-form", method: "POST", cookie: goodSession, body: form,
			headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-site"}, wantStatus: 403},
		{name: "anonymous-post-same-site", method: "POST", headers: map[string]string{"Sec-Fetch-Site": "same-site"}, wantStatus: 403},
		{name: "anonymous-post-same-origin", method: "POST", headers: map[string]string{"Sec-Fetch-Site": "same-origin"}, wantStatus: 200, wantBody: "anonymous"},
		{name: "anonymous-post-typed-url", method: "POST", headers: map[string]string{"Sec-Fetch-Site": "none"}, wantStatus: 200, wantBody: "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := "https://capf.example:8443/phones"
			if strings.Contains(tt.name, "in-query") {
				target += "?" + CSRFField + "=" + goodCSRF
			}
			r := httptest.NewRequest(tt.method, target, strings.NewReader(tt.body))
			r.TLS = &tls.ConnectionState{}
			r.RemoteAddr = "192.0.2.7:51234"
			r.Header.Set("X-Forwarded-For", "10.9.9.9")
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tt.cookie})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			res := w.Result()
			body := w.Body.String()
			if res.StatusCode != tt.wantStatus || !strings.HasPrefix(body, tt.wantBody) {
				t.Fatalf("status %d body %q; want %d and %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if res.StatusCode == 403 {
				if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type = %q, want application/problem+json", ct)
				}
				var p struct {
					Status int    `json:"status"`
					Detail string `json:"detail"`
				}
				if err := json.Unmarshal([]byte(body), &p); err != nil || p.Status != 403 || p.Detail == "" {
					t.Errorf("problem body %q: %v", body, err)
				}
			}
			cleared := false
			for _, c := range res.Cookies() {
				if c.Name == CookieName && c.MaxAge < 0 {
					cleared = true
				}
			}
			if cleared != tt.wantCleared {
				t.Errorf("cookie cleared = %v, want %v", cleared, tt.wantCleared)
			}
		})
	}
}

func TestPrincipalActor(t *testing.T) {
	h := Middleware(fakeSessions{}, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		if a := p.Actor(); a != (device.Actor{Kind: device.ActorWeb, Name: "alice", Remote: "2001:db8::1"}) {
			t.Errorf("actor = %+v", a)
		}
		if p.SessionID != goodSession || p.CSRF != goodCSRF {
			t.Errorf("principal = %+v, want the session's id and CSRF token", p)
		}
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "[2001:db8::1]:443"
	r.AddCookie(&http.Cookie{Name: CookieName, Value: goodSession})
	h.ServeHTTP(httptest.NewRecorder(), r)
}

func TestSecurityHeaders(t *testing.T) {
	h := SecurityHeaders(echo)
	for _, tt := range []struct {
		path      string
		wantCache string
	}{
		{"/phones", "no-store"},
		{"/api/v1/devices", "no-store"},
		{"/static/app.css", ""},
	} {
		t.Run(tt.path, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
			want := map[string]string{
				"Content-Security-Policy":   "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "no-referrer",
				"Strict-Transport-Security": "max-age=31536000",
				"X-Frame-Options":           "DENY",
				"Cache-Control":             tt.wantCache,
			}
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestRefusalFloodLogsLittle: a forging page or a scanner sending a flood
// of refused requests with long hostile paths and headers costs one log
// line per kind, bounded in length, not one line per request.
func TestRefusalFloodLogsLittle(t *testing.T) {
	var logs bytes.Buffer
	h := Middleware(fakeSessions{}, slog.New(slog.NewTextHandler(&logs, nil)))(echo)
	long := "/" + strings.Repeat("A", 10000)
	for range 200 {
		r := httptest.NewRequest(http.MethodPost, "https://capf.example:8443"+long, nil)
		r.Header.Set("Origin", "https://evil.example/"+strings.Repeat("B", 10000))
		h.ServeHTTP(httptest.NewRecorder(), r)
		r = httptest.NewRequest(http.MethodGet, "https://capf.example:8443/api/v1/devices", nil)
		r.Header.Set("Authorization", "Bearer capf_"+strings.Repeat("C", 100))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	lines := strings.Count(logs.String(), "\n")
	if lines > 2 {
		t.Errorf("400 refused requests wrote %d log lines, want at most one per kind:\n%.2000s", lines, logs.String())
	}
	if logs.Len() > 2000 {
		t.Errorf("the refusals' log is %d bytes: the hostile path and Origin were not bounded", logs.Len())
	}
}
