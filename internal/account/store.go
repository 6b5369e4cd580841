package account

import (
	"context"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// Store is the persistence contract of the accounts, API tokens, browser
// sessions and login failure counters. Every backend implements it and
// passes the shared suite in store/storetest (RunAccounts).
//
// General guarantees:
//   - Every method is safe for concurrent use, from several processes and
//     nodes sharing the database, and honours ctx cancellation.
//   - Errors carry a fault kind: NotFound for a missing account, token or
//     session, Conflict for a duplicate name or a change that would leave
//     no admin; anything else is Internal and wraps the driver error. The
//     messages name the account or token.
//   - Account and token names are unique ignoring case, and are looked up
//     ignoring case; they are stored as given.
//   - Times are stored in UTC with at least microsecond precision and come
//     back in UTC; a zero time.Time round-trips as zero.
//   - A method that returns nil has made its change durable.
//   - A method that takes an AuditEvent appends it to the audit stream in
//     the same transaction as its change, and not at all when the change
//     fails. The store never sees a password or a token secret: only their
//     hashes.
type Store interface {
	// CreateAccount inserts a with its password hash, no failures and no
	// last login. Conflict if an account of that name exists.
	CreateAccount(ctx context.Context, a Account, passwordHash string, ev device.AuditEvent) error
	// GetCredentials returns the account called name with its password
	// hash and login throttle state, or NotFound.
	GetCredentials(ctx context.Context, name string) (Credentials, error)
	// ListAccounts returns every account, by name.
	ListAccounts(ctx context.Context) ([]Account, error)
	// SetPassword replaces the account's password hash, sets UpdatedAt to
	// at, clears its login failures and delay, and deletes all its
	// sessions. NotFound if absent.
	SetPassword(ctx context.Context, name, passwordHash string, at time.Time, ev device.AuditEvent) error
	// SetRole gives the account role and sets UpdatedAt to at, returning
	// the account as stored. Its sessions take the new role at once.
	// Conflict if that would leave no account with the admin role;
	// NotFound if absent.
	SetRole(ctx context.Context, name string, role Role, at time.Time, ev device.AuditEvent) (Account, error)
	// DeleteAccount removes the account, its sessions and the API tokens
	// it owns (Token.Owner), in one transaction; the audit event's Detail
	// then ends with "API tokens revoked with it: " and their names,
	// sorted and comma-separated. Conflict if it is the last account with
	// the admin role; NotFound if absent.
	DeleteAccount(ctx context.Context, name string, ev device.AuditEvent) error
	// SetDisabled disables the account (DisabledAt = at, and its sessions
	// deleted) or, with at zero, enables it again; it sets UpdatedAt to
	// now and returns the account as stored. Conflict if disabling would
	// leave no enabled account with the admin role; NotFound if absent.
	// While an account is disabled, GetSession finds none of its sessions
	// and TokenByHash and ListTokens give the tokens it owns no OwnerRole.
	// "The admin role" in the Conflict rules of SetRole and DeleteAccount
	// counts only enabled accounts.
	SetDisabled(ctx context.Context, name string, at, now time.Time, ev device.AuditEvent) (Account, error)

	// ReserveLogin reserves the evaluation of one password for the account
	// at time at, in one transaction: if the account's delay has not
	// passed (at is before its BlockedUntil) it changes nothing and
	// returns ok false and the time the delay ends. Otherwise it counts
	// the attempt as a failure in advance (Failures+1, so that concurrent
	// attempts, on any node, each see the previous one's count), sets
	// BlockedUntil to at + delay(Failures+1) (no delay when that is 0) and
	// returns ok true. A successful login then resets the counter
	// (CreateSession). delay must be a pure function: the store may call
	// it inside its transaction, and more than once for one call when the
	// transaction is retried after a serialization failure (PostgreSQL).
	// NotFound if the account is absent.
	ReserveLogin(ctx context.Context, name string, at time.Time, delay func(failures int) time.Duration) (until time.Time, ok bool, err error)

	// CreateSession stores a browser session after a successful login of
	// s.Account: in one transaction it inserts s, resets the account's
	// login failures and delay, sets its LastLogin to s.CreatedAt, and
	// deletes every session (of any account) whose ExpiresAt is not after
	// s.CreatedAt or whose LastSeen is before idleBefore. NotFound if the
	// account is absent; Conflict if the id hash exists.
	CreateSession(ctx context.Context, s StoredSession, idleBefore time.Time) error
	// GetSession returns the session whose id hashes to idHash, with its
	// account's current role, or NotFound.
	GetSession(ctx context.Context, idHash string) (StoredSession, error)
	// TouchSession sets the session's LastSeen to at. NotFound if absent.
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	// DeleteSession removes the session; nil if it does not exist.
	DeleteSession(ctx context.Context, idHash string) error

	// CreateToken inserts the API token t whose secret hashes to hash, with
	// no LastUsed. t.Owner is the account it belongs to (matched ignoring
	// case and stored as the account's name), or empty for a service
	// token; t.OwnerRole is ignored. Conflict if a token of that name, or
	// with that hash, exists; NotFound if t.Owner names no account.
	CreateToken(ctx context.Context, t Token, hash string, ev device.AuditEvent) error
	// TokenByHash returns the token whose secret hashes to hash, with its
	// owner's current role in OwnerRole (read in the same statement, so a
	// demotion counts from the next lookup on), or NotFound. A token whose
	// owner no longer exists is NotFound too.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens returns every token, by name, with Owner and OwnerRole as
	// TokenByHash gives them.
	ListTokens(ctx context.Context) ([]Token, error)
	// TouchToken sets the token's LastUsed to at. NotFound if absent.
	TouchToken(ctx context.Context, name string, at time.Time) error
	// DeleteToken removes the token. NotFound if absent.
	DeleteToken(ctx context.Context, name string, ev device.AuditEvent) error
}

// Credentials is an account as the login needs it.
type Credentials struct {
	Account
	PasswordHash string // PHC-encoded argon2id
	// Failures counts the consecutive failed (or reserved, unfinished)
	// logins since the last successful one or password change.
	Failures int
	// BlockedUntil is when the next password may be evaluated; zero: now.
	BlockedUntil time.Time
}

// StoredSession is a browser session as the store keeps it: the secret id
// only as its hash.
type StoredSession struct {
	IDHash    string // hex SHA-256 of the session id
	Account   string
	Role      Role // the account's role, as GetSession reads it; ignored by CreateSession
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
}
