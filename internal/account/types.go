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
	// Owner is the account behind the credential: the session's account,
	// or the owner of the API token; empty for a service token. A token
	// created with this principal belongs to it.
	Owner string
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
	// DisabledAt is when an administrator disabled the account; zero while
	// it is enabled. A disabled account cannot log in, has no sessions,
	// and the API tokens it owns act with no role until it is enabled.
	DisabledAt time.Time `json:"disabled_at,omitzero"`
}

// Disabled reports whether the account is disabled.
func (a Account) Disabled() bool { return !a.DisabledAt.IsZero() }

// Token is an API token as listed; its secret is shown only once, when it
// is created, and stored only as a hash.
//
// A token created through the API or the web UI belongs to the account
// that created it (Owner): it acts with at most that account's current
// role (EffectiveRole) and is deleted with the account. A token created
// with the local CLI on the server has no owner: it is a service token,
// whose role is its own, until it expires or is revoked.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"` // the role it was created with
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // zero: never
	LastUsed  time.Time `json:"last_used"`  // zero: never
	CreatedBy string    `json:"created_by"`
	// Owner is the account the token belongs to; empty for a service
	// token (see OwnerLabel).
	Owner string `json:"owner"`
	// Service is true for a token without an owner (Owner == ""), so
	// that listings say so without relying on an empty name. Ignored by
	// CreateToken.
	Service bool `json:"service"`
	// OwnerRole is the owner's current role as the store read it; empty
	// for a service token. Ignored by CreateToken.
	OwnerRole Role `json:"owner_role,omitempty"`
}

// ServiceOwner is how listings name the owner of a service token.
const ServiceOwner = "service"

// OwnerLabel returns the owner's account name, or "service" for a token
// without one.
func (t Token) OwnerLabel() string {
	if t.Owner == "" {
		return ServiceOwner
	}
	return t.Owner
}

// EffectiveRole is what the token may do: its own role, capped at its
// owner's current role. A token whose owner's role is unknown (the
// account is gone) has none ("").
func (t Token) EffectiveRole() Role {
	if t.Owner == "" {
		return t.Role
	}
	valid := func(r Role) bool { return r == RoleAdmin || r == RoleViewer }
	switch {
	case !valid(t.OwnerRole) || !valid(t.Role):
		return ""
	case t.Role == RoleAdmin && t.OwnerRole == RoleAdmin:
		return RoleAdmin
	}
	return RoleViewer
}

// Capped says, for a listing, what the token acts as when its owner's
// current role caps it below its own ("acts as viewer"), or that it acts
// with none while its owner is disabled; "" when it acts with its own.
func (t Token) Capped() string {
	switch eff := t.EffectiveRole(); {
	case eff == t.Role:
		return ""
	case eff == "":
		return "acts with no role: its owner is disabled"
	default:
		return "acts as " + string(eff)
	}
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
	return Principal{Kind: device.ActorWeb, Name: s.Account, Role: s.Role, Remote: remote, SessionID: s.ID, CSRF: s.CSRF, Owner: s.Account}
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

// SeesSecrets reports whether the principal may read authentication
// strings (see device.Reader): only the admin role, which could set one
// anyway.
func (p Principal) SeesSecrets() bool { return p.Role == RoleAdmin }
