package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"regexp"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/ratelog"
)

// The audit actions of accounts and tokens.
const (
	AuditAccountCreate   = "account.create"
	AuditAccountPassword = "account.password"
	AuditAccountRole     = "account.role"
	AuditAccountDelete   = "account.delete"
	AuditAccountDisable  = "account.disable"
	AuditAccountEnable   = "account.enable"
	AuditTokenCreate     = "token.create"
	AuditTokenRevoke     = "token.revoke"
)

// Defaults of [Options].
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
)

// TokenPrefix begins every API token secret, so that a leaked one is easy to
// recognise (and to scan for).
const TokenPrefix = "capf_"

// BootstrapName is the account Bootstrap creates.
const BootstrapName = "admin"

// touchEvery is how stale a session's LastSeen or a token's LastUsed may be
// before a request writes it again: the idle timeout is measured in
// minutes, and a write per request would be a write per page.
const touchEvery = time.Minute

// msgWrongLogin is the one answer to a wrong username or a wrong password.
const msgWrongLogin = "wrong username or password"

// Options configures a [Service].
type Options struct {
	Store  Store
	Now    func() time.Time // defaults to time.Now
	Rand   io.Reader        // salts, secrets, generated passwords; defaults to crypto/rand
	Logger *slog.Logger     // defaults to slog.Default()
	// IdleTimeout ends a session not used for that long (default 30 min);
	// AbsoluteTimeout ends any session that old (default 12 h).
	IdleTimeout, AbsoluteTimeout time.Duration
	// Password is the argon2id cost of new password hashes and of the
	// dummy hash an unknown username costs; DefaultPasswordParams when
	// zero. Tests use a lower cost.
	Password PasswordParams
	// OnPasswordCheck, when set, is called each time a password is
	// evaluated against a hash (a real one or the dummy): for metrics, and
	// for tests that count what the throttle lets through.
	OnPasswordCheck func()
}

// Service holds the use cases on accounts, tokens and sessions. The web UI,
// the REST API and `capf admin` all go through it.
type Service struct {
	store    Store
	now      func() time.Time
	rand     io.Reader
	log      *slog.Logger
	idle     time.Duration
	absolute time.Duration
	params   PasswordParams
	onCheck  func()
	dummy    string // a hash of a random password, verified for unknown names
	addrs    addrThrottle
	ghosts   ghostThrottle
	checks   chan struct{} // a semaphore: the password evaluations running
	// Refused logins are what a guessing flood triggers: at most one line
	// per kind every ratelog.Every, with how many were held back.
	addrLog, accountLog ratelog.Limiter
}

// NewService returns a Service over o.Store.
func NewService(o Options) *Service {
	s := &Service{store: o.Store, now: o.Now, rand: o.Rand, log: o.Logger,
		idle: o.IdleTimeout, absolute: o.AbsoluteTimeout, params: o.Password, onCheck: o.OnPasswordCheck}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	if s.absolute <= 0 {
		s.absolute = DefaultAbsoluteTimeout
	}
	if s.params == (PasswordParams{}) {
		s.params = DefaultPasswordParams
	}
	if s.onCheck == nil {
		s.onCheck = func() {}
	}
	s.dummy = makeDummy(s.rand, s.params)
	s.checks = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	return s
}

// nameRE is what account and token names may be: a letter or digit, then
// letters, digits and . _ @ -, at most 64 in all.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// checkName validates an account or token name.
func checkName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fault.InvalidField("name", "%s name %q: want 1 to 64 letters, digits, '.', '_', '@' or '-', beginning with a letter or digit", what, truncate(name))
	}
	return nil
}

// truncate bounds hostile input before it goes into a message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// hashSecret is how session ids and token secrets are stored and looked up.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// randomSecret returns 32 random bytes, base64url-encoded.
func (s *Service) randomSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// passwordAlphabet is what generated passwords are made of: letters and
// digits without the ones that look alike (0 O o 1 l I).
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratedPasswordLen is the length of a generated password: 20 of 56
// symbols, about 116 bits.
const GeneratedPasswordLen = 20

// GeneratePassword returns a random password of GeneratedPasswordLen
// characters drawn uniformly from r.
func GeneratePassword(r io.Reader) (string, error) {
	b := make([]byte, GeneratedPasswordLen)
	n := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		d, err := rand.Int(r, n)
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		b[i] = passwordAlphabet[d.Int64()]
	}
	return string(b), nil
}

// Login checks username and password from remote and opens a session. A
// wrong username and a wrong password give the same Unauthorized error and
// cost the same argon2 evaluation. Too many failures for the account or
// from the address give a Throttled error (see RetryAfter) without
// evaluating the password.
func (s *Service) Login(ctx context.Context, username, password, remote string) (Session, error) {
	now := s.now().UTC()
	key := addrKey(remote)
	if wait, ok := s.addrs.reserve(key, now); !ok {
		if n, ok := s.addrLog.Allow(now); ok {
			s.log.Warn("login refused: too many failures from the address", "remote", key, "held_back", n)
		}
		return Session{}, throttled(wait, "from your address")
	}
	if len(password) > MaxPasswordLen || len(username) > 256 {
		return Session{}, fault.New(fault.Unauthorized, msgWrongLogin)
	}
	cred, err := s.store.GetCredentials(ctx, username)
	if errors.Is(err, fault.ErrNotFound) {
		if until, ok := s.ghosts.reserve(username, now); !ok {
			s.addrs.release(key)
			return Session{}, throttled(until.Sub(now), "for this account")
		}
		if _, err := s.check(ctx, s.dummyHash(), password); err != nil {
			return Session{}, err
		}
		s.log.Info("login failed", "reason", "unknown user", "remote", key)
		return Session{}, fault.New(fault.Unauthorized, msgWrongLogin)
	}
	if err != nil {
		s.addrs.release(key)
		return Session{}, fmt.Errorf("login: %w", err)
	}
	until, ok, err := s.store.ReserveLogin(ctx, cred.Name, now, LoginDelay)
	if err != nil {
		s.addrs.release(key)
		return Session{}, fmt.Errorf("login: %w", err)
	}
	if !ok {
		// Not the address's fault: give its reservation back.
		s.addrs.release(key)
		if n, ok := s.accountLog.Allow(now); ok {
			s.log.Warn("login refused: account throttled", "account", cred.Name, "remote", key, "until", until, "held_back", n)
		}
		return Session{}, throttled(until.Sub(now), "for this account")
	}
	ok, err = s.check(ctx, cred.PasswordHash, password)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		s.log.Info("login failed", "reason", "wrong password", "account", cred.Name, "remote", key, "failures", cred.Failures+1)
		return Session{}, fault.New(fault.Unauthorized, msgWrongLogin)
	}
	s.addrs.release(key)
	if cred.Disabled() {
		// Said only to whoever knows the password: no name is confirmed
		// to a guesser.
		s.log.Info("login refused: account disabled", "account", cred.Name, "remote", key)
		return Session{}, fault.New(fault.Forbidden, "account %s is disabled: an administrator can enable it", cred.Name)
	}
	id, err := s.randomSecret()
	if err != nil {
		return Session{}, err
	}
	csrf, err := s.randomSecret()
	if err != nil {
		return Session{}, err
	}
	st := StoredSession{IDHash: hashSecret(id), Account: cred.Name, CSRF: csrf,
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.absolute)}
	if err := s.store.CreateSession(ctx, st, now.Add(-s.idle)); err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	s.log.Info("login", "account", cred.Name, "remote", key)
	return Session{ID: id, Account: cred.Name, Role: cred.Role, CSRF: csrf,
		CreatedAt: st.CreatedAt, LastSeen: st.LastSeen, ExpiresAt: st.ExpiresAt}, nil
}

// check evaluates password against hash; a hash that does not parse never
// matches (and is logged).
func (s *Service) check(ctx context.Context, hash, password string) (bool, error) {
	// Each evaluation takes the cost's memory (19 MiB by default): bound
	// how many run at once, so a burst of logins cannot exhaust memory.
	select {
	case s.checks <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("login: %w", ctx.Err())
	}
	defer func() { <-s.checks }()
	s.onCheck()
	ok, err := verifyPassword(hash, password)
	if err != nil {
		s.log.Error("stored password hash unusable", "err", err)
		// Spend the time anyway, so the failure is not faster.
		_, _ = verifyPassword(s.dummyHash(), password)
		return false, nil
	}
	return ok, nil
}

// dummyHash returns the hash unknown usernames are checked against.
func (s *Service) dummyHash() string { return s.dummy }

// makeDummy returns a well-formed argon2id hash with the cost p and random
// salt and key: verifying against it spends what a real hash of cost p
// spends, and matches no password.
func makeDummy(r io.Reader, p PasswordParams) string {
	b := make([]byte, saltLen+keyLen)
	if _, err := io.ReadFull(r, b); err != nil {
		copy(b, "a fixed salt and key are as slow as random ones")
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, enc.EncodeToString(b[:saltLen]), enc.EncodeToString(b[saltLen:]))
}

// Session returns the session whose id is id, with its account's current
// role. Unauthorized if it is unknown or has expired (idle or absolute);
// an expired one is deleted. It records the use (LastSeen) at most once a
// minute.
func (s *Service) Session(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 128 {
		return Session{}, fault.New(fault.Unauthorized, "no session")
	}
	h := hashSecret(id)
	st, err := s.store.GetSession(ctx, h)
	if errors.Is(err, fault.ErrNotFound) {
		return Session{}, fault.New(fault.Unauthorized, "unknown session: log in again")
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: %w", err)
	}
	now := s.now().UTC()
	if !now.Before(st.ExpiresAt) || !now.Before(st.LastSeen.Add(s.idle)) {
		if err := s.store.DeleteSession(ctx, h); err != nil {
			s.log.Error("delete expired session", "account", st.Account, "err", err)
		}
		return Session{}, fault.New(fault.Unauthorized, "session expired: log in again")
	}
	if now.Sub(st.LastSeen) >= touchEvery {
		if err := s.store.TouchSession(ctx, h, now); err != nil && !errors.Is(err, fault.ErrNotFound) {
			return Session{}, fmt.Errorf("session: %w", err)
		}
		st.LastSeen = now
	}
	return Session{ID: id, Account: st.Account, Role: st.Role, CSRF: st.CSRF,
		CreatedAt: st.CreatedAt, LastSeen: st.LastSeen, ExpiresAt: st.ExpiresAt}, nil
}

// Logout ends the session whose id is id; an unknown one is no error.
func (s *Service) Logout(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	if err := s.store.DeleteSession(ctx, hashSecret(id)); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// Authenticate returns the API token whose secret is bearer; it may act
// with its EffectiveRole (capped at its owner's current role). Unauthorized
// if it is unknown, has expired, or its owner is gone. It records the use
// (LastUsed) at most once a minute.
func (s *Service) Authenticate(ctx context.Context, bearer string) (Token, error) {
	if !strings.HasPrefix(bearer, TokenPrefix) || len(bearer) > 128 {
		return Token{}, fault.New(fault.Unauthorized, "not a capf API token")
	}
	t, err := s.store.TokenByHash(ctx, hashSecret(bearer))
	if errors.Is(err, fault.ErrNotFound) {
		return Token{}, fault.New(fault.Unauthorized, "unknown API token")
	}
	if err != nil {
		return Token{}, fmt.Errorf("authenticate: %w", err)
	}
	if t.EffectiveRole() == "" {
		return Token{}, fault.New(fault.Unauthorized, "API token %s: its account is gone or disabled", t.Name)
	}
	now := s.now().UTC()
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return Token{}, fault.New(fault.Unauthorized, "API token %s expired at %s", t.Name, t.ExpiresAt.Format(time.RFC3339))
	}
	if now.Sub(t.LastUsed) >= touchEvery {
		if err := s.store.TouchToken(ctx, t.Name, now); err != nil && !errors.Is(err, fault.ErrNotFound) {
			return Token{}, fmt.Errorf("authenticate: %w", err)
		}
		t.LastUsed = now
	}
	return t, nil
}

// Accounts lists the accounts by name.
func (s *Service) Accounts(ctx context.Context) ([]Account, error) {
	as, err := s.store.ListAccounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return as, nil
}

// AddAccount creates an account. The password must have at least
// MinPasswordLen characters. Conflict if the name is taken (ignoring case).
func (s *Service) AddAccount(ctx context.Context, actor device.Actor, name string, role Role, password string) (Account, error) {
	if err := checkName("account", name); err != nil {
		return Account{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return Account{}, fault.InvalidField("role", "%s", fault.Message(err))
	}
	if err := checkPassword(password); err != nil {
		return Account{}, err
	}
	hash, err := hashPassword(s.rand, s.params, password)
	if err != nil {
		return Account{}, err
	}
	now := s.now().UTC()
	a := Account{Name: name, Role: role, CreatedAt: now, UpdatedAt: now}
	ev := device.AuditEvent{At: now, Actor: actor, Action: AuditAccountCreate, Target: name,
		Changes: []device.FieldChange{{Field: "role", Old: "", New: string(role)}}}
	if err := s.store.CreateAccount(ctx, a, hash, ev); err != nil {
		return Account{}, fmt.Errorf("add account %s: %w", name, err)
	}
	return a, nil
}

// SetPassword gives the account a new password, ends its sessions and
// clears its login throttle.
func (s *Service) SetPassword(ctx context.Context, actor device.Actor, name, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := hashPassword(s.rand, s.params, password)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	ev := device.AuditEvent{At: now, Actor: actor, Action: AuditAccountPassword, Target: name,
		Detail: "password changed; sessions ended; login throttle cleared"}
	if err := s.store.SetPassword(ctx, name, hash, now, ev); err != nil {
		return fmt.Errorf("set password of %s: %w", truncate(name), err)
	}
	return nil
}

// SetRole gives the account role. Conflict if it is the last admin losing
// the admin role.
func (s *Service) SetRole(ctx context.Context, actor device.Actor, name string, role Role) (Account, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Account{}, fault.InvalidField("role", "%s", fault.Message(err))
	}
	cur, err := s.store.GetCredentials(ctx, name)
	if err != nil {
		return Account{}, fmt.Errorf("set role of %s: %w", truncate(name), err)
	}
	if cur.Role == role {
		return cur.Account, nil
	}
	now := s.now().UTC()
	ev := device.AuditEvent{At: now, Actor: actor, Action: AuditAccountRole, Target: cur.Name,
		Changes: []device.FieldChange{{Field: "role", Old: string(cur.Role), New: string(role)}}}
	a, err := s.store.SetRole(ctx, cur.Name, role, now, ev)
	if err != nil {
		return Account{}, fmt.Errorf("set role of %s: %w", cur.Name, err)
	}
	return a, nil
}

// RemoveAccount deletes the account, ends its sessions and revokes the API
// tokens it owns. Conflict if it is the last admin.
func (s *Service) RemoveAccount(ctx context.Context, actor device.Actor, name string) error {
	ev := device.AuditEvent{At: s.now().UTC(), Actor: actor, Action: AuditAccountDelete, Target: name}
	if err := s.store.DeleteAccount(ctx, name, ev); err != nil {
		return fmt.Errorf("remove account %s: %w", truncate(name), err)
	}
	return nil
}

// DisableAccount disables the account: it can no longer log in, its
// sessions end at once and the API tokens it owns stop working, while its
// name stays in the audit trail and its tokens come back with it
// (EnableAccount). Conflict if it is the last enabled admin. Disabling a
// disabled account changes nothing.
func (s *Service) DisableAccount(ctx context.Context, actor device.Actor, name string) (Account, error) {
	return s.setDisabled(ctx, actor, name, true)
}

// EnableAccount lets a disabled account log in again. Enabling an enabled
// account changes nothing.
func (s *Service) EnableAccount(ctx context.Context, actor device.Actor, name string) (Account, error) {
	return s.setDisabled(ctx, actor, name, false)
}

// setDisabled disables or enables the account, audited.
func (s *Service) setDisabled(ctx context.Context, actor device.Actor, name string, disable bool) (Account, error) {
	verb := "enable"
	if disable {
		verb = "disable"
	}
	cur, err := s.store.GetCredentials(ctx, name)
	if err != nil {
		return Account{}, fmt.Errorf("%s account %s: %w", verb, truncate(name), err)
	}
	if cur.Disabled() == disable {
		return cur.Account, nil
	}
	now := s.now().UTC()
	var at time.Time
	ev := device.AuditEvent{At: now, Actor: actor, Action: AuditAccountEnable, Target: cur.Name,
		Detail: "enabled: it may log in again, and the API tokens it owns work again"}
	if disable {
		at = now
		ev.Action, ev.Detail = AuditAccountDisable, "disabled: its sessions ended, the API tokens it owns stop working"
	}
	a, err := s.store.SetDisabled(ctx, cur.Name, at, now, ev)
	if err != nil {
		return Account{}, fmt.Errorf("%s account %s: %w", verb, cur.Name, err)
	}
	return a, nil
}

// Tokens lists the API tokens by name.
func (s *Service) Tokens(ctx context.Context) ([]Token, error) {
	ts, err := s.store.ListTokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// MaxTTL bounds a token's lifetime.
const MaxTTL = 10 * 366 * 24 * time.Hour

// CreateToken creates an API token and returns its secret, which is shown
// only now: the store keeps its hash. ttl 0: it never expires. owner is
// the account the token belongs to (the principal's Owner, for a token
// made through the API or the web UI): the token then acts with at most
// that account's current role and is deleted with it. An empty owner
// makes a service token, as the local CLI does. A token's role may not be
// above its owner's (Invalid, field "role").
func (s *Service) CreateToken(ctx context.Context, actor device.Actor, owner, name string, role Role, ttl time.Duration) (string, Token, error) {
	if err := checkName("token", name); err != nil {
		return "", Token{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", Token{}, fault.InvalidField("role", "%s", fault.Message(err))
	}
	if ttl < 0 || ttl > MaxTTL {
		return "", Token{}, fault.InvalidField("expires", "token lifetime %v: want 0 (never) up to 10 years", ttl)
	}
	if owner != "" {
		// A token never starts with more than its owner may do; it is
		// capped again at each use (EffectiveRole), should the owner be
		// demoted later.
		cred, err := s.store.GetCredentials(ctx, owner)
		if err != nil {
			return "", Token{}, fmt.Errorf("create token %s: owner %s: %w", name, truncate(owner), err)
		}
		if role == RoleAdmin && cred.Role != RoleAdmin {
			return "", Token{}, fault.InvalidField("role", "token %s: role admin is above the %s role of its owner %s", name, cred.Role, cred.Name)
		}
	}
	rnd, err := s.randomSecret()
	if err != nil {
		return "", Token{}, err
	}
	secret := TokenPrefix + rnd
	now := s.now().UTC()
	t := Token{Name: name, Role: role, CreatedAt: now, CreatedBy: actor.String(), Owner: owner, Service: owner == ""}
	expires := "never"
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
		expires = t.ExpiresAt.Format(time.RFC3339)
	}
	ev := device.AuditEvent{At: now, Actor: actor, Action: AuditTokenCreate, Target: name,
		Changes: []device.FieldChange{{Field: "role", New: string(role)}, {Field: "expires", New: expires},
			{Field: "owner", New: t.OwnerLabel()}}}
	if err := s.store.CreateToken(ctx, t, hashSecret(secret), ev); err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	return secret, t, nil
}

// RevokeToken deletes the API token: it stops working at once.
func (s *Service) RevokeToken(ctx context.Context, actor device.Actor, name string) error {
	ev := device.AuditEvent{At: s.now().UTC(), Actor: actor, Action: AuditTokenRevoke, Target: name}
	if err := s.store.DeleteToken(ctx, name, ev); err != nil {
		return fmt.Errorf("revoke token %s: %w", truncate(name), err)
	}
	return nil
}

// Bootstrap creates the account "admin" with a random password when no
// account exists, and returns that password; created is false (and the
// password empty) when some account exists already.
func (s *Service) Bootstrap(ctx context.Context) (string, bool, error) {
	as, err := s.store.ListAccounts(ctx)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: %w", err)
	}
	if len(as) > 0 {
		return "", false, nil
	}
	pw, err := GeneratePassword(s.rand)
	if err != nil {
		return "", false, err
	}
	actor := device.Actor{Kind: device.ActorSystem, Name: "bootstrap"}
	if _, err := s.AddAccount(ctx, actor, BootstrapName, RoleAdmin, pw); err != nil {
		if errors.Is(err, fault.ErrConflict) {
			return "", false, nil // another node bootstrapped first
		}
		return "", false, fmt.Errorf("bootstrap: %w", err)
	}
	return pw, true, nil
}

// ParseTTL parses a token lifetime: a number of days ("90d"), a Go
// duration ("12h", "30m"), or "0" for never.
func ParseTTL(text string) (time.Duration, error) {
	t := strings.TrimSpace(text)
	if t == "0" || t == "" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(t, "d"); ok {
		var days int64
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n || days <= 0 || days > int64(MaxTTL/(24*time.Hour)) {
			return 0, fault.InvalidField("expires", "lifetime %q: want days like 90d, a duration like 12h, or 0 for never", truncate(text))
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		d, err = time.ParseDuration(t)
		if err != nil || d <= 0 {
			return 0, fault.InvalidField("expires", "lifetime %q: want days like 90d, a duration like 12h, or 0 for never", truncate(text))
		}
	}
	if d > MaxTTL {
		return 0, fault.InvalidField("expires", "lifetime %q: at most 10 years", truncate(text))
	}
	return d, nil
}
