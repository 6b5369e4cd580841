package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// Account and token names are unique ignoring case: each table's primary
// key is key, generated as lower(name), and every lookup is by
// key = lower($n).

const accountColumns = `name, role, created_at, updated_at, last_login, disabled_at`

// scanAccount reads one row of accountColumns, then extra.
func scanAccount(row pgx.Row, extra ...any) (account.Account, error) {
	var (
		a                      account.Account
		role                   string
		created, updated, last *int64
		disabled               *int64
	)
	if err := row.Scan(append([]any{&a.Name, &role, &created, &updated, &last, &disabled}, extra...)...); err != nil {
		return account.Account{}, err
	}
	a.Role = account.Role(role)
	a.CreatedAt, a.UpdatedAt, a.LastLogin = fromMicros(created), fromMicros(updated), fromMicros(last)
	a.DisabledAt = fromMicros(disabled)
	return a, nil
}

// CreateAccount inserts an account with its password hash.
func (s *Store) CreateAccount(ctx context.Context, a account.Account, passwordHash string, ev device.AuditEvent) error {
	what := fmt.Sprintf("create account %q", a.Name)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO accounts (name, role, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5)`, a.Name, string(a.Role), passwordHash, micros(a.CreatedAt), micros(a.UpdatedAt))
		switch {
		case isUnique(err):
			return fault.Conflictf("account %q exists", a.Name)
		case isCheck(err):
			return fault.Invalidf("%s: role %q: want admin or viewer", what, a.Role)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// GetCredentials returns the account with its password hash and throttle.
func (s *Store) GetCredentials(ctx context.Context, name string) (account.Credentials, error) {
	var (
		c        account.Credentials
		failures int64
		blocked  *int64
	)
	row := s.pool.QueryRow(ctx, `SELECT `+accountColumns+`, password_hash, login_failures, login_blocked_until
		FROM accounts WHERE key = lower($1)`, name)
	a, err := scanAccount(row, &c.PasswordHash, &failures, &blocked)
	if errors.Is(err, pgx.ErrNoRows) {
		return account.Credentials{}, fault.NotFoundf("account %q not found", name)
	}
	if err != nil {
		return account.Credentials{}, fmt.Errorf("get account %q: %w", name, err)
	}
	c.Account, c.Failures, c.BlockedUntil = a, int(failures), fromMicros(blocked)
	return c, nil
}

// ListAccounts returns every account by name.
func (s *Store) ListAccounts(ctx context.Context) ([]account.Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountColumns+` FROM accounts ORDER BY key COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	as := []account.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list accounts: scan: %w", err)
		}
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return as, nil
}

// SetPassword replaces the hash, clears the throttle and ends the sessions.
func (s *Store) SetPassword(ctx context.Context, name, passwordHash string, at time.Time, ev device.AuditEvent) error {
	what := fmt.Sprintf("set password of account %q", name)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts SET password_hash = $1, updated_at = $2,
			login_failures = 0, login_blocked_until = NULL WHERE key = lower($3)`, passwordHash, micros(at), name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := affected(tag, fault.NotFoundf("account %q not found", name)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM account_sessions WHERE account_key = lower($1)`, name); err != nil {
			return fmt.Errorf("%s: end sessions: %w", what, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// adminCount returns how many enabled accounts have the admin role.
func adminCount(ctx context.Context, tx pgx.Tx) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM accounts WHERE role = 'admin' AND disabled_at IS NULL`).Scan(&n)
	return n, err
}

// lastAdmin reports whether an account whose role, as roleTx gives it,
// is role is the last enabled admin, so that it must keep that role.
func lastAdmin(ctx context.Context, tx pgx.Tx, role account.Role) (bool, error) {
	if role != account.RoleAdmin {
		return false, nil
	}
	n, err := adminCount(ctx, tx)
	return n <= 1, err
}

// roleTx returns the stored name and role of the account, the role as
// the last-admin rules count it (none while the account is disabled), or
// NotFound.
func roleTx(ctx context.Context, tx pgx.Tx, name string) (string, account.Role, error) {
	var stored, role string
	var disabled *int64
	err := tx.QueryRow(ctx, `SELECT name, role, disabled_at FROM accounts WHERE key = lower($1)`, name).Scan(&stored, &role, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", fault.NotFoundf("account %q not found", name)
	}
	if disabled != nil {
		role = ""
	}
	return stored, account.Role(role), err
}

// SetDisabled disables the account (ending its sessions) or enables it,
// keeping at least one enabled admin: the count and the change are one
// SERIALIZABLE transaction, as in SetRole.
func (s *Store) SetDisabled(ctx context.Context, name string, at, now time.Time, ev device.AuditEvent) (account.Account, error) {
	what := fmt.Sprintf("disable account %q", name)
	if at.IsZero() {
		what = fmt.Sprintf("enable account %q", name)
	}
	var a account.Account
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		ev := ev
		stored, role, err := roleTx(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if last, err := lastAdmin(ctx, tx, role); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if last && !at.IsZero() {
			return fault.Conflictf("account %q is the last enabled admin: give another account the admin role first", stored)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET disabled_at = $1, updated_at = $2 WHERE key = lower($3)`, micros(at), micros(now), name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if !at.IsZero() {
			if _, err := tx.Exec(ctx, `DELETE FROM account_sessions WHERE account_key = lower($1)`, name); err != nil {
				return fmt.Errorf("%s: end sessions: %w", what, err)
			}
		}
		a, err = changedAccount(ctx, tx, name, stored, what, ev)
		return err
	})
	if err != nil {
		return account.Account{}, err
	}
	return a, nil
}

// changedAccount reads the account name back after a change made in tx
// and appends ev, aimed at its stored name, in the same transaction.
func changedAccount(ctx context.Context, tx pgx.Tx, name, stored, what string, ev device.AuditEvent) (account.Account, error) {
	a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM accounts WHERE key = lower($1)`, name))
	if err != nil {
		return account.Account{}, fmt.Errorf("%s: read back: %w", what, err)
	}
	ev.Target = stored
	return a, insertAudit(ctx, tx, ev)
}

// SetRole changes the role, keeping at least one admin: the count of
// admins and the change are one SERIALIZABLE transaction, so two nodes
// demoting the last two admins at once cannot both succeed.
func (s *Store) SetRole(ctx context.Context, name string, role account.Role, at time.Time, ev device.AuditEvent) (account.Account, error) {
	what := fmt.Sprintf("set role of account %q", name)
	var a account.Account
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		ev := ev
		stored, old, err := roleTx(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if last, err := lastAdmin(ctx, tx, old); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if last && role != account.RoleAdmin {
			return fault.Conflictf("account %q is the last admin: give another account the admin role first", stored)
		}
		_, err = tx.Exec(ctx, `UPDATE accounts SET role = $1, updated_at = $2 WHERE key = lower($3)`, string(role), micros(at), name)
		if isCheck(err) {
			return fault.Invalidf("%s: role %q: want admin or viewer", what, role)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		a, err = changedAccount(ctx, tx, name, stored, what, ev)
		return err
	})
	if err != nil {
		return account.Account{}, err
	}
	return a, nil
}

// DeleteAccount removes the account (and, by cascade, its sessions),
// keeping at least one admin.
func (s *Store) DeleteAccount(ctx context.Context, name string, ev device.AuditEvent) error {
	what := fmt.Sprintf("delete account %q", name)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		ev := ev
		stored, role, err := roleTx(ctx, tx, name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if last, err := lastAdmin(ctx, tx, role); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if last {
			return fault.Conflictf("account %q is the last admin and cannot be removed", stored)
		}
		// The foreign key would cascade; the explicit delete states the
		// rule and names the tokens in the audit event.
		rows, err := tx.Query(ctx, `DELETE FROM api_tokens WHERE owner_key = lower($1) RETURNING name`, name)
		if err != nil {
			return fmt.Errorf("%s: revoke its tokens: %w", what, err)
		}
		revoked, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("%s: revoke its tokens: %w", what, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE key = lower($1)`, name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ev.Target = stored
		if len(revoked) > 0 {
			sort.Strings(revoked)
			ev.Detail = joinDetail(ev.Detail, "API tokens revoked with it: "+strings.Join(revoked, ", "))
		}
		return insertAudit(ctx, tx, ev)
	})
}

// ReserveLogin counts one password evaluation in advance unless the
// account's delay has not passed. delay may be called again if the
// transaction is retried after a serialization failure.
func (s *Store) ReserveLogin(ctx context.Context, name string, at time.Time, delay func(int) time.Duration) (time.Time, bool, error) {
	what := fmt.Sprintf("reserve login of account %q", name)
	var (
		until time.Time
		ok    bool
	)
	err := s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		until, ok = time.Time{}, false
		var (
			failures int
			blocked  *int64
		)
		err := tx.QueryRow(ctx, `SELECT login_failures, login_blocked_until FROM accounts WHERE key = lower($1)`, name).
			Scan(&failures, &blocked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.NotFoundf("account %q not found", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if b := fromMicros(blocked); !b.IsZero() && at.Before(b) {
			until, ok = b, false
			return nil
		}
		failures++
		var next time.Time
		if d := delay(failures); d > 0 {
			next = at.Add(d)
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET login_failures = $1, login_blocked_until = $2 WHERE key = lower($3)`,
			failures, micros(next), name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		until, ok = next.Truncate(time.Microsecond).UTC(), true
		return nil
	})
	if err != nil {
		return time.Time{}, false, err
	}
	return until, ok, nil
}

// CreateSession stores a session after a successful login.
func (s *Store) CreateSession(ctx context.Context, ss account.StoredSession, idleBefore time.Time) error {
	what := fmt.Sprintf("create session of account %q", ss.Account)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE accounts SET login_failures = 0, login_blocked_until = NULL, last_login = $1
			WHERE key = lower($2)`, micros(ss.CreatedAt), ss.Account)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := affected(tag, fault.NotFoundf("account %q not found", ss.Account)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM account_sessions WHERE expires_at <= $1 OR last_seen < $2`,
			micros(ss.CreatedAt), micros(idleBefore)); err != nil {
			return fmt.Errorf("%s: prune sessions: %w", what, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO account_sessions (id_hash, account_key, csrf, created_at, last_seen, expires_at)
			VALUES ($1, lower($2), $3, $4, $5, $6)`, ss.IDHash, ss.Account, ss.CSRF, micros(ss.CreatedAt), micros(ss.LastSeen), micros(ss.ExpiresAt))
		if isUnique(err) {
			return fault.Conflictf("%s: the session id exists", what)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// GetSession returns the session with its account's current role.
func (s *Store) GetSession(ctx context.Context, idHash string) (account.StoredSession, error) {
	var (
		ss                     account.StoredSession
		role                   string
		created, seen, expires *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT s.id_hash, a.name, a.role, s.csrf, s.created_at, s.last_seen, s.expires_at
		FROM account_sessions s JOIN accounts a ON a.key = s.account_key AND a.disabled_at IS NULL WHERE s.id_hash = $1`, idHash).
		Scan(&ss.IDHash, &ss.Account, &role, &ss.CSRF, &created, &seen, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return account.StoredSession{}, fault.NotFoundf("session not found")
	}
	if err != nil {
		return account.StoredSession{}, fmt.Errorf("get session: %w", err)
	}
	ss.Role = account.Role(role)
	ss.CreatedAt, ss.LastSeen, ss.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return ss, nil
}

// TouchSession records a use of the session.
func (s *Store) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	const what = "touch session"
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE account_sessions SET last_seen = $1 WHERE id_hash = $2`, micros(at), idHash)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return affected(tag, fault.NotFoundf("session not found"))
	})
}

// DeleteSession removes the session, if it exists.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	const what = "delete session"
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM account_sessions WHERE id_hash = $1`, idHash); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// tokenColumns are read from api_tokens t LEFT JOIN accounts a ON the
// owner: the owner's role is current at every lookup.
// A disabled owner gives no role (CASE), so its tokens act with none.
const tokenColumns = `t.name, t.role, t.created_at, t.expires_at, t.last_used, t.created_by, t.owner_key, a.name,
	CASE WHEN a.disabled_at IS NULL THEN a.role ELSE '' END`

// tokenFrom is the FROM clause of tokenColumns.
const tokenFrom = ` FROM api_tokens t LEFT JOIN accounts a ON a.key = t.owner_key`

// scanToken reads one row of tokenColumns.
func scanToken(row pgx.Row) (account.Token, error) {
	var (
		t                          account.Token
		role                       string
		created, expires, used     *int64
		ownerKey, owner, ownerRole *string
	)
	if err := row.Scan(&t.Name, &role, &created, &expires, &used, &t.CreatedBy, &ownerKey, &owner, &ownerRole); err != nil {
		return account.Token{}, err
	}
	t.Role = account.Role(role)
	t.CreatedAt, t.ExpiresAt, t.LastUsed = fromMicros(created), fromMicros(expires), fromMicros(used)
	t.Service = ownerKey == nil
	if owner != nil && ownerRole != nil {
		t.Owner, t.OwnerRole = *owner, account.Role(*ownerRole)
	} else if ownerKey != nil {
		// The owner is gone (the cascade and DeleteAccount prevent it):
		// keep the key so that the token is refused, not a service token.
		t.Owner = *ownerKey
	}
	return t, nil
}

// CreateToken inserts an API token by the hash of its secret.
func (s *Store) CreateToken(ctx context.Context, t account.Token, hash string, ev device.AuditEvent) error {
	what := fmt.Sprintf("create token %q", t.Name)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		var owner *string
		if t.Owner != "" {
			stored, _, err := roleTx(ctx, tx, t.Owner)
			if err != nil {
				return fmt.Errorf("%s: owner: %w", what, err)
			}
			key := strings.ToLower(stored)
			owner = &key
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_tokens (name, hash, role, created_at, expires_at, created_by, owner_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.Name, hash, string(t.Role), micros(t.CreatedAt), micros(t.ExpiresAt), t.CreatedBy, owner)
		switch {
		case isUnique(err):
			return fault.Conflictf("token %q exists", t.Name)
		case isCheck(err):
			return fault.Invalidf("%s: role %q: want admin or viewer", what, t.Role)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		return insertAudit(ctx, tx, ev)
	})
}

// TokenByHash returns the token whose secret hashes to hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (account.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+tokenFrom+` WHERE t.hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return account.Token{}, fault.NotFoundf("token not found")
	}
	if err != nil {
		return account.Token{}, fmt.Errorf("get token: %w", err)
	}
	if t.Owner != "" && t.OwnerRole == "" {
		// The owner is gone (the cascade and DeleteAccount prevent it;
		// refuse anyway).
		return account.Token{}, fault.NotFoundf("token not found")
	}
	return t, nil
}

// ListTokens returns every token by name.
func (s *Store) ListTokens(ctx context.Context) ([]account.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+tokenFrom+` ORDER BY t.key COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	ts := []account.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: scan: %w", err)
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return ts, nil
}

// TouchToken records a use of the token.
func (s *Store) TouchToken(ctx context.Context, name string, at time.Time) error {
	what := fmt.Sprintf("touch token %q", name)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_tokens SET last_used = $1 WHERE key = lower($2)`, micros(at), name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return affected(tag, fault.NotFoundf("token %q not found", name))
	})
}

// DeleteToken removes the token.
func (s *Store) DeleteToken(ctx context.Context, name string, ev device.AuditEvent) error {
	what := fmt.Sprintf("delete token %q", name)
	return s.write(ctx, what, func(ctx context.Context, tx pgx.Tx) error {
		ev := ev
		var stored string
		err := tx.QueryRow(ctx, `DELETE FROM api_tokens WHERE key = lower($1) RETURNING name`, name).Scan(&stored)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.NotFoundf("token %q not found", name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		ev.Target = stored
		return insertAudit(ctx, tx, ev)
	})
}

// joinDetail appends more to an audit event's detail.
func joinDetail(detail, more string) string {
	if detail == "" {
		return more
	}
	return detail + "; " + more
}
