package webui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/safetext"
)

// AccountAdmin is what System > Accounts and System > API Tokens need of
// the account service; *account.Service implements it. The rules (the
// last admin keeps its role and its account, a token's role is at most
// its owner's, names, password length, lifetimes) are the service's: the
// pages only collect the form and show the service's answer.
type AccountAdmin interface {
	Accounts(ctx context.Context) ([]account.Account, error)
	AddAccount(ctx context.Context, actor device.Actor, name string, role account.Role, password string) (account.Account, error)
	SetPassword(ctx context.Context, actor device.Actor, name, password string) error
	SetRole(ctx context.Context, actor device.Actor, name string, role account.Role) (account.Account, error)
	RemoveAccount(ctx context.Context, actor device.Actor, name string) error
	DisableAccount(ctx context.Context, actor device.Actor, name string) (account.Account, error)
	EnableAccount(ctx context.Context, actor device.Actor, name string) (account.Account, error)
	Tokens(ctx context.Context) ([]account.Token, error)
	CreateToken(ctx context.Context, actor device.Actor, owner, name string, role account.Role, ttl time.Duration) (string, account.Token, error)
	RevokeToken(ctx context.Context, actor device.Actor, name string) error
}

// accountRoutes registers the Accounts and API Tokens pages: every one
// of them, reading included, is for administrators only.
func (u *ui) accountRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /system/accounts", u.adminOnly(u.accountsPage))
	mux.HandleFunc("POST /system/accounts", u.write(u.accountAdd))
	mux.HandleFunc("POST /system/accounts/{name}/role", u.write(u.accountRole))
	mux.HandleFunc("POST /system/accounts/{name}/password", u.write(u.accountPassword))
	mux.HandleFunc("POST /system/accounts/{name}/delete", u.write(u.accountDelete))
	mux.HandleFunc("POST /system/accounts/{name}/disable", u.write(u.accountDisable(true)))
	mux.HandleFunc("POST /system/accounts/{name}/enable", u.write(u.accountDisable(false)))
	mux.HandleFunc("GET /system/tokens", u.adminOnly(u.tokensPage))
	mux.HandleFunc("POST /system/tokens", u.write(u.tokenCreate))
	mux.HandleFunc("POST /system/tokens/{name}/revoke", u.write(u.tokenRevoke))
}

// adminOnly wraps a page only an administrator may read.
func (u *ui) adminOnly(h handler) http.HandlerFunc {
	return u.read(func(w http.ResponseWriter, r *http.Request, p account.Principal) {
		if err := p.RequireWrite(); err != nil {
			u.fail(w, r, p, err)
			return
		}
		h(w, r, p)
	})
}

// shownSecret is a generated password or a token secret, shown on the one
// page that answers its creation and never again (nor logged).
type shownSecret struct {
	What   string
	Secret string
}

// accountsData is the Accounts page's content.
type accountsData struct {
	Accounts []account.Account
	Roles    []account.Role
	Self     string // the account of the page's principal
	Name     string // the add form's values, kept after an error
	Role     string
	Errors   formErrors // the add form's, by field
	Error    string     // an action's error, above the list
	Done     string     // what the last action did, in words
	Shown    *shownSecret
	MinLen   int
}

// doneText are the messages after a successful action (the query names
// one of these, never free text).
var doneText = map[string]string{
	"added":    "Account added.",
	"role":     "Role changed; the account's sessions have the new role at once.",
	"password": "Password set; the account's sessions are ended.",
	"removed":  "Account removed, with its sessions and API tokens.",
	"disabled": "Account disabled: it cannot log in, its sessions have ended and the API tokens it owns stop working until it is enabled.",
	"enabled":  "Account enabled: it may log in again, and the API tokens it owns work again.",
	"created":  "Token created.",
	"revoked":  "Token revoked: it stops working at once.",
}

func (u *ui) accountsPage(w http.ResponseWriter, r *http.Request, p account.Principal) {
	u.showAccounts(w, r, p, http.StatusOK, accountsData{Role: string(account.RoleViewer), Done: doneText[r.URL.Query().Get("done")]})
}

// showAccounts renders the Accounts page with d and the current list.
func (u *ui) showAccounts(w http.ResponseWriter, r *http.Request, p account.Principal, status int, d accountsData) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("Accounts"))
		return
	}
	list, err := u.o.AccountAdmin.Accounts(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d.Accounts, d.Roles, d.Self, d.MinLen = list, account.Roles, p.Owner, account.MinPasswordLen
	if d.Errors == nil {
		d.Errors = formErrors{}
	}
	if d.Shown != nil {
		w.Header().Set("Cache-Control", "no-store")
	}
	u.render(w, r, p, status, "accounts.html", "Accounts", "accounts", d)
}

// actionFailed shows err above the accounts list, or as the error page
// when the service is missing.
func (u *ui) accountActionFailed(w http.ResponseWriter, r *http.Request, p account.Principal, err error) {
	pr := u.problem("account action", err)
	u.showAccounts(w, r, p, pr.Status, accountsData{Role: string(account.RoleViewer), Error: pr.Detail})
}

// password returns the form's password, or a generated one (generated
// true) when the field is empty, as `capf admin add` does without
// --password-stdin.
func (u *ui) password(r *http.Request) (pw string, generated bool, err error) {
	if pw = r.PostFormValue("password"); pw != "" {
		return pw, false, nil
	}
	pw, err = account.GeneratePassword(u.rand)
	return pw, true, err
}

func (u *ui) accountAdd(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("Accounts"))
		return
	}
	name, roleText := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	d := accountsData{Name: name, Role: roleText, Errors: formErrors{}}
	role, err := account.ParseRole(roleText)
	if err == nil {
		var pw string
		var generated bool
		if pw, generated, err = u.password(r); err == nil {
			var a account.Account
			if a, err = u.o.AccountAdmin.AddAccount(r.Context(), p.Actor(), name, role, pw); err == nil {
				if !generated {
					http.Redirect(w, r, "/system/accounts?done=added", http.StatusSeeOther)
					return
				}
				u.showAccounts(w, r, p, http.StatusOK, accountsData{Role: string(account.RoleViewer), Done: doneText["added"],
					Shown: &shownSecret{What: "Password of " + a.Name, Secret: pw}})
				return
			}
		}
	}
	status := u.formError(d.Errors, err)
	u.showAccounts(w, r, p, status, d)
}

func (u *ui) accountRole(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("Accounts"))
		return
	}
	role, err := account.ParseRole(r.PostFormValue("role"))
	if err == nil {
		_, err = u.o.AccountAdmin.SetRole(r.Context(), p.Actor(), r.PathValue("name"), role)
	}
	if err != nil {
		u.accountActionFailed(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/system/accounts?done=role", http.StatusSeeOther)
}

func (u *ui) accountPassword(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("Accounts"))
		return
	}
	name := r.PathValue("name")
	pw, generated, err := u.password(r)
	if err == nil {
		err = u.o.AccountAdmin.SetPassword(r.Context(), p.Actor(), name, pw)
	}
	if err != nil {
		u.accountActionFailed(w, r, p, err)
		return
	}
	if strings.EqualFold(name, p.Owner) && p.SessionID != "" {
		// The administrator's own session ended with the change.
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !generated {
		http.Redirect(w, r, "/system/accounts?done=password", http.StatusSeeOther)
		return
	}
	u.showAccounts(w, r, p, http.StatusOK, accountsData{Role: string(account.RoleViewer), Done: doneText["password"],
		Shown: &shownSecret{What: "New password of " + name, Secret: pw}})
}

// accountDisable disables (disable true) or enables the account the path
// names. An administrator who disables their own account is logged out
// by it.
func (u *ui) accountDisable(disable bool) handler {
	return func(w http.ResponseWriter, r *http.Request, p account.Principal) {
		if u.o.AccountAdmin == nil {
			u.fail(w, r, p, notConfigured("Accounts"))
			return
		}
		name := r.PathValue("name")
		change, done := u.o.AccountAdmin.EnableAccount, "enabled"
		if disable {
			change, done = u.o.AccountAdmin.DisableAccount, "disabled"
		}
		if _, err := change(r.Context(), p.Actor(), name); err != nil {
			u.accountActionFailed(w, r, p, err)
			return
		}
		if disable && strings.EqualFold(name, p.Owner) && p.SessionID != "" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/system/accounts?done="+done, http.StatusSeeOther)
	}
}

// confirmData is the content of a page that asks before a removal.
type confirmData struct {
	Action, Text, Button, Cancel string
}

func (u *ui) accountDelete(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("Accounts"))
		return
	}
	name := r.PathValue("name")
	if r.PostFormValue("confirm") != "yes" {
		u.render(w, r, p, http.StatusOK, "confirm_account.html", "Remove account", "accounts", confirmData{
			Action: "/system/accounts/" + url.PathEscape(name) + "/delete", Button: "Remove", Cancel: "/system/accounts",
			Text: "Remove account " + safetext.Bound(name, 64) + "? Its sessions end and the API tokens it owns are revoked with it."})
		return
	}
	if err := u.o.AccountAdmin.RemoveAccount(r.Context(), p.Actor(), name); err != nil {
		u.accountActionFailed(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/system/accounts?done=removed", http.StatusSeeOther)
}

// tokenRow is one API token as the list shows it.
type tokenRow struct {
	account.Token
	Acts string // Token.Capped: what it acts as, when less than its role
}

// tokensData is the API Tokens page's content.
type tokensData struct {
	Tokens  []tokenRow
	Roles   []account.Role
	Owner   string // who a new token belongs to: the page's account, or "service"
	Name    string
	Role    string
	Expires string
	Errors  formErrors
	Error   string
	Done    string
	Shown   *shownSecret
}

func (u *ui) tokensPage(w http.ResponseWriter, r *http.Request, p account.Principal) {
	u.showTokens(w, r, p, http.StatusOK, tokensData{Role: string(account.RoleViewer), Expires: "90d", Done: doneText[r.URL.Query().Get("done")]})
}

func (u *ui) showTokens(w http.ResponseWriter, r *http.Request, p account.Principal, status int, d tokensData) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("API tokens"))
		return
	}
	list, err := u.o.AccountAdmin.Tokens(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	for _, t := range list {
		row := tokenRow{Token: t, Acts: t.Capped()}
		d.Tokens = append(d.Tokens, row)
	}
	d.Roles = account.Roles
	d.Owner = account.Token{Owner: p.Owner}.OwnerLabel()
	if d.Errors == nil {
		d.Errors = formErrors{}
	}
	if d.Shown != nil {
		w.Header().Set("Cache-Control", "no-store")
	}
	u.render(w, r, p, status, "tokens.html", "API Tokens", "tokens", d)
}

func (u *ui) tokenCreate(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("API tokens"))
		return
	}
	d := tokensData{Name: strings.TrimSpace(r.PostFormValue("name")), Role: r.PostFormValue("role"),
		Expires: r.PostFormValue("expires"), Errors: formErrors{}}
	role, err := account.ParseRole(d.Role)
	if err == nil {
		var ttl time.Duration
		if ttl, err = account.ParseTTL(d.Expires); err == nil {
			// The token belongs to the account behind the session: it is
			// capped at that account's role and revoked with it.
			var secret string
			var t account.Token
			if secret, t, err = u.o.AccountAdmin.CreateToken(r.Context(), p.Actor(), p.Owner, d.Name, role, ttl); err == nil {
				u.showTokens(w, r, p, http.StatusCreated, tokensData{Role: string(account.RoleViewer), Expires: "90d", Done: doneText["created"],
					Shown: &shownSecret{What: "Token " + t.Name, Secret: secret}})
				return
			}
		}
	}
	status := u.formError(d.Errors, err)
	u.showTokens(w, r, p, status, d)
}

func (u *ui) tokenRevoke(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.AccountAdmin == nil {
		u.fail(w, r, p, notConfigured("API tokens"))
		return
	}
	name := r.PathValue("name")
	if r.PostFormValue("confirm") != "yes" {
		u.render(w, r, p, http.StatusOK, "confirm_account.html", "Revoke API token", "tokens", confirmData{
			Action: "/system/tokens/" + url.PathEscape(name) + "/revoke", Button: "Revoke", Cancel: "/system/tokens",
			Text: "Revoke API token " + safetext.Bound(name, 64) + "? Every client that uses it is refused from now on."})
		return
	}
	if err := u.o.AccountAdmin.RevokeToken(r.Context(), p.Actor(), name); err != nil {
		pr := u.problem("revoke token", err)
		u.showTokens(w, r, p, pr.Status, tokensData{Role: string(account.RoleViewer), Expires: "90d", Error: pr.Detail})
		return
	}
	http.Redirect(w, r, "/system/tokens?done=revoked", http.StatusSeeOther)
}
