// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the test cluster that $CAPF_TEST_POSTGRES names (see
// scripts/pg-test-cluster.sh), dropped when the test ends. Without that
// variable a test skips, except in CI (CI set), where it fails, so that a
// missing PostgreSQL cannot pass unnoticed. Only tests import it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable that holds the DSN of the test
// cluster, a role that may create schemas and roles.
const EnvDSN = "CAPF_TEST_POSTGRES"

// ClusterDSN returns the DSN of the test cluster itself, or skips t (fails
// it in CI) when there is none.
func ClusterDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: scripts/test.sh starts a PostgreSQL test cluster (scripts/pg-test-cluster.sh)", EnvDSN)
		}
		t.Skipf("%s is not set: no PostgreSQL test cluster (eval \"$(scripts/pg-test-cluster.sh start)\" starts one)", EnvDSN)
	}
	return dsn
}

// Exec runs sql on the test cluster as its superuser.
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, ClusterDSN(t))
	if err != nil {
		t.Fatalf("pgtest: connect to the test cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Name returns a new random identifier with prefix, safe to use unquoted.
func Name(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// DSN returns a DSN of a new, empty schema of the test cluster, first in
// the search path of every connection made with it, and drops the schema
// when t ends. Skips t (fails it in CI) when there is no test cluster.
func DSN(t testing.TB) string {
	t.Helper()
	base := ClusterDSN(t)
	schema := Name("capft_")
	Exec(t, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { Exec(t, "DROP SCHEMA "+schema+" CASCADE") })
	return WithParam(t, base, "search_path", schema)
}

// WithParam returns dsn, a postgres:// URL, with the query parameter key
// set to value.
func WithParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// PasswordRole creates a login role with password, a member of capf_pw,
// whose password the test cluster checks (scripts/pg-test-cluster.sh puts
// "local all +capf_pw scram-sha-256" first in pg_hba.conf), and drops it
// when t ends. It returns the role's name.
func PasswordRole(t testing.TB, password string) string {
	t.Helper()
	// Tests of several packages may create capf_pw at once: a concurrent
	// CREATE ROLE fails with unique_violation rather than duplicate_object.
	Exec(t, `DO $$BEGIN CREATE ROLE capf_pw NOLOGIN;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$`)
	role := Name("capf_pw")
	Exec(t, "CREATE ROLE "+role+" LOGIN PASSWORD '"+strings.ReplaceAll(password, "'", "''")+"' IN ROLE capf_pw")
	t.Cleanup(func() { Exec(t, "DROP ROLE "+role) })
	return role
}
