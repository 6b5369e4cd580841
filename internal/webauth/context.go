package webauth

import (
	"context"
	"net/http"
	"time"

	"github.com/capf-server/capf/internal/account"
)

// CookieName is the name of the browser session cookie. The __Host- prefix
// makes browsers insist on Secure, Path=/ and no Domain.
const CookieName = "__Host-capf_session"

// CSRFField is the form field, and CSRFHeader the request header, that
// carry a browser session's anti-forgery token.
const (
	CSRFField  = "csrf"
	CSRFHeader = "X-CSRF-Token"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p account.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal the middleware authenticated, if
// any.
func PrincipalFrom(ctx context.Context) (account.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(account.Principal)
	return p, ok
}

// SetSessionCookie gives the browser the session's cookie: Secure,
// HttpOnly, SameSite=Strict, expiring with the session.
func SetSessionCookie(w http.ResponseWriter, s account.Session) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    s.ID,
		Path:     "/",
		Expires:  s.ExpiresAt,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

// ClearSessionCookie tells the browser to forget the session cookie.
func ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    "",
		Path:     "/",
		Expires:  time.Unix(0, 0),
		MaxAge:   -1,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}
