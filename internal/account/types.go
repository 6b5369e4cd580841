package account

import (
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// Role is what an account or token may do.
type Role string

// The roles.
const (
	RoleAdmin  Role = "admin"  // everything
	RoleViewer Role = "viewer" // read only
)

// Roles lists the roles, for help and validation messages.
var Roles = []Role{RoleAdmin, RoleViewer}

// ParseRole returns the role called s, or an Invalid error naming the
// choices.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleAdmin, RoleViewer:
		return Role(s), nil
	}
	return "", fault.InvalidField("role", "role %q: want admin or viewer", s)
}

// Principal is who made an HTTP request, once authenticated: a web
// session's account or an API token.
type Principal struct {
	Kind   string // device.ActorWeb (browser session) or device.ActorAPI (bearer token)
	Name   string // the account name, or the token's name
	Role   Role
	Remote string // the client address
	// SessionID is the browser session's secret id (the cookie value);
	// empty for a token. Logout needs it.
	SessionID string
	// CSRF is the browser session's anti-forgery token, which every form
	// and state-changing request of that session must carry; empty for a
	// token.
	CSRF string
}

// Actor returns the principal as the audit stream names it.
func (p Principal) Actor() device.Actor {
	return device.Actor{Kind: p.Kind, Name: p.Name, Remote: p.Remote}
}

// CanWrite reports whether the principal may change anything.
func (p Principal) CanWrite() bool { return p.Role == RoleAdmin }

// RequireWrite returns a Forbidden error unless the principal may change
// things.
func (p Principal) RequireWrite() error {
	if p.CanWrite() {
		return nil
	}
	return fault.New(fault.Forbidden, "%s has the %s role, which may only read", p.Name, p.Role)
}

// Account is an administrator who logs in to the web UI.
type Account struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	LastLogin time.Time `json:"last_login"` // zero: never
}

// Token is an API token as listed; its secret is shown only once, when it
// is created, and stored only as a hash.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // zero: never
	LastUsed  time.Time `json:"last_used"`  // zero: never
	CreatedBy string    `json:"created_by"`
}

// Session is a browser session after a successful login.
type Session struct {
	ID        string // secret: the cookie value; stored only as a hash
	Account   string
	Role      Role
	CSRF      string // the anti-forgery token of the session's forms
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time // the absolute expiry; the idle expiry is LastSeen + idle timeout
}

// Principal returns the session's principal for a request from remote.
func (s Session) Principal(remote string) Principal {
	return Principal{Kind: device.ActorWeb, Name: s.Account, Role: s.Role, Remote: remote, SessionID: s.ID, CSRF: s.CSRF}
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

// SeesSecrets reports whether the principal may read authentication
// strings (see device.Reader): only the admin role, which could set one
// anyway.
func (p Principal) SeesSecrets() bool { return p.Role == RoleAdmin }
