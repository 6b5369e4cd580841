package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// TestMigrationTokenOwner upgrades a database of schema 6 holding tokens
// from before owners existed: a token made from a web session goes to its
// account, or is revoked (and audited) when the account is gone; one made
// with another token inherits that token's owner; CLI tokens, and tokens
// made with them, stay service tokens.
func TestMigrationTokenOwner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "capf.db")
	db, err := sql.Open("sqlite", dsn(path, 5*time.Second, true))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY,
		name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version > 6 {
			break
		}
		if err := applyMigration(ctx, db, m, len(ms)); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO accounts (name, role, password_hash, created_at, updated_at) VALUES ('Alice', 'admin', 'x', 0, 0)`,
		`INSERT INTO api_tokens (name, hash, role, created_at, created_by) VALUES ('web-alice', 'h1', 'admin', 0, 'web:alice')`,
		`INSERT INTO api_tokens (name, hash, role, created_at, created_by) VALUES ('web-bob', 'h2', 'admin', 0, 'web:bob')`,
		`INSERT INTO api_tokens (name, hash, role, created_at, created_by) VALUES ('child', 'h3', 'admin', 0, 'api:web-alice')`,
		`INSERT INTO api_tokens (name, hash, role, created_at, created_by) VALUES ('cli', 'h4', 'admin', 0, 'cli:root')`,
		`INSERT INTO api_tokens (name, hash, role, created_at, created_by) VALUES ('from-cli', 'h5', 'viewer', 0, 'api:cli')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		hash, owner string
		service     bool
	}{
		{"h1", "Alice", false},
		{"h3", "Alice", false},
		{"h4", "", true},
		{"h5", "", true},
	}
	for _, tt := range tests {
		tok, err := s.TokenByHash(ctx, tt.hash)
		if err != nil {
			t.Fatalf("TokenByHash(%s): %v", tt.hash, err)
		}
		if tok.Owner != tt.owner || tok.Service != tt.service || (tt.owner != "" && tok.OwnerRole != account.RoleAdmin) {
			t.Errorf("%s after the migration: owner %q (role %q), service %v; want %q, %v", tok.Name, tok.Owner, tok.OwnerRole, tok.Service, tt.owner, tt.service)
		}
	}
	if _, err := s.TokenByHash(ctx, "h2"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("token of a removed account after the migration: err = %v, want NotFound", err)
	}
	evs, err := s.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Action != account.AuditTokenRevoke || evs[0].Target != "web-bob" || evs[0].Actor.String() != "system:migration" ||
		time.Since(evs[0].At) > time.Hour || time.Since(evs[0].At) < 0 {
		t.Errorf("audit after the migration = %+v, want one token.revoke of web-bob by system:migration, now", evs)
	}
}
