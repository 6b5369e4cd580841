package webauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/ratelog"
	"github.com/capf-server/capf/internal/safetext"
)

// Sessions is what the middleware needs of the account service.
type Sessions interface {
	Session(ctx context.Context, id string) (account.Session, error)
	Authenticate(ctx context.Context, bearer string) (account.Token, error)
}

var _ Sessions = (*account.Service)(nil)

// maxLoggedText bounds what of a request (path, header values) a log line
// or a refusal repeats.
const maxLoggedText = 200

// Middleware authenticates each request and puts its Principal in the
// context (see PrincipalFrom):
//   - "Authorization: Bearer T": the API token T, with its effective role
//     (capped at its owner's current role); a bad or expired one gives no
//     principal (the cookie is then not looked at).
//   - else the session cookie; an unknown or expired one gives no
//     principal, and the response clears the cookie.
//
// It never rejects an anonymous request: the handler decides what one
// gets. It does reject, with 403 application/problem+json, a request with
// an unsafe method (not GET, HEAD, OPTIONS) that is not bearer-authenticated
// and comes from another origin (Origin or Sec-Fetch-Site, when present),
// and a cookie-authenticated one without the session's CSRF token in the
// X-CSRF-Token header or the "csrf" form field (looked for in the form's
// first MaxTokenScan bytes only; put LimitBodies in front to bound the
// rest). The principal's Remote is the connection's IP; X-Forwarded-For is
// not trusted.
func Middleware(s Sessions, log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	// Refusals are what a flood or a forging page triggers: at most one
	// line per kind every ratelog.Every, with how many were held back.
	var tokenLog, originLog, csrfLog ratelog.Limiter
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			remote := remoteIP(r)
			ctx := r.Context()
			if bearer, ok := bearerToken(r); ok {
				t, err := s.Authenticate(ctx, bearer)
				if err != nil {
					if n, ok := tokenLog.Allow(time.Now()); ok {
						log.Info("API token refused", "remote", remote, "reason", err.Error(), "held_back", n)
					}
					next.ServeHTTP(w, r)
					return
				}
				p := account.Principal{Kind: device.ActorAPI, Name: t.Name, Role: t.EffectiveRole(), Remote: remote, Owner: t.Owner}
				next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, p)))
				return
			}
			unsafe := !safeMethod(r.Method)
			if unsafe {
				if why := CrossOrigin(r); why != "" {
					why = safetext.Bound(why, maxLoggedText)
					if n, ok := originLog.Allow(time.Now()); ok {
						log.Warn("cross-origin request refused", "remote", remote, "method", safetext.Bound(r.Method, 16),
							"path", safetext.Bound(r.URL.Path, maxLoggedText), "reason", why, "held_back", n)
					}
					forbidden(w, "cross-origin request refused: "+why)
					return
				}
			}
			c, err := r.Cookie(CookieName)
			if err != nil || c.Value == "" {
				next.ServeHTTP(w, r)
				return
			}
			sess, err := s.Session(ctx, c.Value)
			if err != nil {
				ClearSessionCookie(w)
				next.ServeHTTP(w, r)
				return
			}
			if unsafe {
				if ok, tooBig := csrfOK(r, sess.CSRF); !ok {
					if tooBig {
						problem(w, http.StatusRequestEntityTooLarge, "the request body is larger than this page accepts")
						return
					}
					if n, ok := csrfLog.Allow(time.Now()); ok {
						log.Warn("request without a valid CSRF token refused", "remote", remote, "account", sess.Account,
							"method", safetext.Bound(r.Method, 16), "path", safetext.Bound(r.URL.Path, maxLoggedText), "held_back", n)
					}
					forbidden(w, "missing or wrong CSRF token: reload the page and try again")
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(ctx, sess.Principal(remote))))
		})
	}
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// safeMethod reports whether m changes nothing by definition.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// remoteIP returns the IP of the connection's peer.
func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// CrossOrigin returns why r comes from another origin, or "" when the
// headers browsers send say it is same-origin or say nothing.
// Sec-Fetch-Site, which no page script can set, decides when present: a
// browser under Referrer-Policy no-referrer sends "Origin: null" with a
// same-origin form post, so Origin is only consulted without it.
func CrossOrigin(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "same-origin", "none":
		return ""
	case "":
	default:
		return "Sec-Fetch-Site is " + site
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return ""
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return "Origin is not a URL"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) || !strings.EqualFold(u.Host, r.Host) {
		return "Origin " + u.Scheme + "://" + u.Host + " is not this server"
	}
	return ""
}

// csrfOK reports whether r carries want, the session's CSRF token, in the
// header or (for a form) the form field. The header is enough: a request
// that has it is decided without its body. A form's field is looked for
// in the first MaxTokenScan bytes of the body only (formToken), which the
// handler then reads again. tooBig reports that the body ran over the
// limit LimitBodies set before the field was found.
func csrfOK(r *http.Request, want string) (ok, tooBig bool) {
	if want == "" {
		return false, false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		var err error
		got, err = formToken(r)
		var mbe *http.MaxBytesError
		tooBig = errors.As(err, &mbe)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, tooBig
}

// forbidden writes a 403 problem (RFC 9457).
func forbidden(w http.ResponseWriter, detail string) {
	problem(w, http.StatusForbidden, detail)
}

// problem writes a problem (RFC 9457) with status.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status),
		"status": status, "detail": detail,
	})
}

// RequirePrincipal serves only a request the middleware authenticated,
// with any role; any other gets 401 with a WWW-Authenticate challenge.
// It must run behind Middleware.
func RequirePrincipal(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="capf"`)
			problem(w, http.StatusUnauthorized, "authentication required: send an API token as Authorization: Bearer TOKEN, or log in")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ContentSecurityPolicy is the policy every response carries: only this
// server's own scripts, styles and images, no framing, forms posting only
// here.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// StaticPrefix is the path under which the UI's embedded assets are served;
// those responses may be cached.
const StaticPrefix = "/static/"

// SecurityHeaders sets the security headers on every response: the CSP,
// nosniff, no referrer, HSTS, no framing, and Cache-Control no-store except
// for the static assets.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, StaticPrefix) {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}
