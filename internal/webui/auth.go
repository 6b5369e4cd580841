package webui

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
	"github.com/capf-server/capf/internal/webauth"
)

// loginData is the login page's content.
type loginData struct {
	Next, Username, Error string
}

func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := webauth.PrincipalFrom(r.Context()); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	u.render(w, r, account.Principal{}, http.StatusOK, "login.html", "Log in", "", loginData{Next: next})
}

// loginSubmit checks the credentials. A login form carries no session
// token yet, so cross-site posts are refused by their Sec-Fetch-Site or
// Origin header instead.
func (u *ui) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if webauth.CrossOrigin(r) != "" {
		u.render(w, r, account.Principal{}, http.StatusForbidden, "error.html", "Forbidden", "",
			errorData{Status: http.StatusForbidden, Title: "Forbidden", Detail: "a login from another site is refused"})
		return
	}
	if u.o.Accounts == nil {
		u.fail(w, r, account.Principal{}, notConfigured("logging in"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	username, password := r.PostFormValue("username"), r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	s, err := u.o.Accounts.Login(r.Context(), username, password, remoteIP(r))
	if err != nil {
		pr := fault.ProblemOf(err)
		msg := pr.Detail
		switch fault.KindOf(err) {
		case fault.Unauthorized, fault.Throttled, fault.Invalid:
		default:
			u.log.Error("webui: login", "err", err)
		}
		if wait := account.RetryAfter(err); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)))
		}
		u.render(w, r, account.Principal{}, pr.Status, "login.html", "Log in", "",
			loginData{Next: next, Username: safetext.Bound(username, 128), Error: msg})
		return
	}
	webauth.SetSessionCookie(w, s)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	p, ok := webauth.PrincipalFrom(r.Context())
	if ok {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := checkCSRF(r, p); err != nil {
			u.fail(w, r, p, err) // a cross-site page cannot log the administrator out
			return
		}
	}
	if ok && p.SessionID != "" && u.o.Accounts != nil {
		if err := u.o.Accounts.Logout(r.Context(), p.SessionID); err != nil && fault.KindOf(err) != fault.Unauthorized {
			u.log.Error("webui: logout", "err", err)
		}
	}
	webauth.ClearSessionCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// remoteIP is the connection's address without the port.
func remoteIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
