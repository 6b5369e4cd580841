package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/webauth"
)

// viewerCredentials authenticate a viewer: a browser session and a token.
type viewerCredentials struct{}

const (
	viewerSession = "viewer-session"
	viewerCSRF    = "viewer-csrf"
	viewerToken   = "capf_viewer"
)

func (viewerCredentials) Session(_ context.Context, id string) (account.Session, error) {
	if id == viewerSession {
		return account.Session{ID: id, Account: "watcher", Role: account.RoleViewer, CSRF: viewerCSRF}, nil
	}
	return account.Session{}, fault.New(fault.Unauthorized, "unknown session")
}

func (viewerCredentials) Authenticate(_ context.Context, bearer string) (account.Token, error) {
	if bearer == viewerToken {
		return account.Token{Name: "dash", Role: account.RoleViewer}, nil
	}
	return account.Token{}, fault.New(fault.Unauthorized, "unknown API token")
}

// countingReader is n bytes of CSV-ish filler, made as read, counted.
type countingReader struct {
	left int64
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), c.left))
	for i := range p[:n] {
		p[i] = 'x'
	}
	c.left -= int64(n)
	c.read.Add(int64(n))
	return n, nil
}

// TestViewerImportRefusedUnread: a viewer's 200 MB import, by session (with
// the CSRF header) or by token, is refused (403) from the principal alone,
// before its body is read; one without a route's credentials is 401,
// unread too; a declared size over the import's limit is 413, unread.
func TestViewerImportRefusedUnread(t *testing.T) {
	e := newEnv(t)
	h := webauth.LimitBodies(BodyLimit)(webauth.Middleware(viewerCredentials{}, slog.New(slog.DiscardHandler))(e.srv.mux))
	const size = 200 << 20
	for _, c := range []struct {
		name   string
		length int64
		set    func(r *http.Request)
		want   int
	}{
		{"session", -1, func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: viewerSession})
			r.Header.Set(webauth.CSRFHeader, viewerCSRF)
		}, http.StatusForbidden},
		{"token", -1, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+viewerToken) }, http.StatusForbidden},
		{"anonymous", -1, func(*http.Request) {}, http.StatusUnauthorized},
		{"declared-too-large", size, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+viewerToken) }, http.StatusRequestEntityTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := &countingReader{left: size}
			r := httptest.NewRequest(http.MethodPost, Prefix+"/import", body)
			r.ContentLength = c.length
			r.Header.Set("Content-Type", "text/csv")
			c.set(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Errorf("status %d, want %d; body %s", w.Code, c.want, w.Body)
			}
			if n := body.read.Load(); n > 64<<10 {
				t.Errorf("read %d bytes of the body before refusing it", n)
			}
			if !strings.Contains(w.Header().Get("Content-Type"), "problem+json") {
				t.Errorf("Content-Type %q, want a problem", w.Header().Get("Content-Type"))
			}
		})
	}
}
