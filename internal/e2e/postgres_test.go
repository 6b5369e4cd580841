package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/cli"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestServeOnPostgres runs the real binary with CAPF_DB naming a
// PostgreSQL database: serve starts, the admin commands reach the same
// database, and a simulated phone enrols; the device, its attempt and its
// issuance are in PostgreSQL, and the data directory holds no SQLite
// database.
func TestServeOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := capfBinary(t)
	data := t.TempDir()
	b := startBinaryEnv(t, bin, data, false, "CAPF_DB="+dsn)
	run := func(args ...string) string {
		t.Helper()
		out, err := b.run(bin, args...)
		if err != nil {
			t.Fatalf("capf %s: %v\n%s\nserver: %s", strings.Join(args, " "), err, out, b.stderr)
		}
		return out
	}
	name := newPhoneName()
	run("device", "add", name, "--auth-mode", "string", "--auth-string", "80442", "--operation", "install", "--key", "ec256")
	out := run("phone", "--server", b.addr, "--ca", filepath.Join(data, "ca", "capf.pem"), name, "--auth-string", "80442", "--json")
	var res struct {
		EndReason *uint8 `json:"end_reason"`
		Installed *struct {
			Serial string `json:"serial"`
		} `json:"installed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.EndReason == nil || *res.EndReason != 1 || res.Installed == nil {
		t.Fatalf("capf phone: %s (%v)", out, err)
	}
	if show := run("device", "show", name); !strings.Contains(show, "Upgrade Success") {
		t.Fatalf("device show:\n%s", show)
	}

	// What the server wrote is in PostgreSQL.
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.GetDevice(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if d.LSC == nil || !strings.EqualFold(d.LSC.Serial, res.Installed.Serial) {
		t.Errorf("device in PostgreSQL: LSC %+v, want serial %s", d.LSC, res.Installed.Serial)
	}
	is, err := st.ListIssuances(t.Context(), name)
	if err != nil || len(is) != 1 {
		t.Errorf("issuances in PostgreSQL: %d (%v), want 1", len(is), err)
	}
	as, err := st.ListAttempts(t.Context(), name, 0)
	if err != nil || len(as) != 1 || as[0].FinishedAt.IsZero() {
		t.Errorf("attempts in PostgreSQL: %+v (%v), want one, closed", as, err)
	}
	if _, err := os.Stat(filepath.Join(data, "capf.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("capf.db in the data directory of a PostgreSQL node: %v", err)
	}
}

// TestServeBadDatabase: serve with a database it cannot use (nothing
// answers, a wrong password, a schema newer than the binary, not a
// postgres URL) exits with an error that names the cause, and leaves the
// data directory uncreated.
func TestServeBadDatabase(t *testing.T) {
	cluster := pgtest.ClusterDSN(t)
	// The test cluster checks the password of this role.
	role := pgtest.PasswordRole(t, "right-password")
	u, err := url.Parse(cluster)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "wrong-password")
	wrongPassword := u.String()

	newer := pgtest.DSN(t)
	st, err := postgres.Open(t.Context(), newer, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	pgtest.Exec(t, "INSERT INTO "+searchPath(t, newer)+".schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)")

	cases := []struct{ name, db, want string }{
		{"unreachable", "postgres://capf:secret-password@127.0.0.1:1/capf?sslmode=disable&connect_timeout=5", "unreachable"},
		{"wrong-password", wrongPassword, "refused the credentials"},
		{"newer-schema", newer, "newer than this binary supports"},
		{"not-postgres", "mysql://capf@localhost/capf", "want a postgres:// URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			var out, errOut bytes.Buffer
			code := cli.Run(context.Background(), []string{"--data", data, "--db", c.db, "serve", "--listen", "127.0.0.1:0"}, &out, &errOut)
			if code == 0 {
				t.Fatalf("serve exited 0:\n%s", out.String())
			}
			if !strings.Contains(errOut.String(), c.want) {
				t.Errorf("stderr = %q, want it to say %q", errOut.String(), c.want)
			}
			for _, secret := range []string{"secret-password", "wrong-password"} {
				if strings.Contains(errOut.String()+out.String(), secret) {
					t.Errorf("the output shows the password: %s", errOut.String())
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data directory after the failed start: %v, want none", err)
			}
		})
	}
}

// searchPath returns the search_path parameter of a pgtest DSN: its schema.
func searchPath(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("search_path")
}

// TestInitAndAdminOnPostgres: capf init with --db creates the data
// directory's files but no SQLite database and migrates PostgreSQL; the
// admin commands then work against PostgreSQL with --db, and refuse a
// data directory with no database without it.
func TestInitAndAdminOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	data := filepath.Join(t.TempDir(), "data")
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--data", data}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := run("--db", dsn, "init")
	if code != 0 {
		t.Fatalf("init: exit %d: %s%s", code, out, errOut)
	}
	if !regexp.MustCompile(`created +database +postgres://`).MatchString(out) {
		t.Errorf("init did not report the PostgreSQL database as created:\n%s", out)
	}
	if out, _, _ := run("--db", dsn, "init"); !regexp.MustCompile(`kept +database +postgres://`).MatchString(out) {
		t.Errorf("a second init did not report the PostgreSQL database as kept:\n%s", out)
	}
	// A database init cannot open leaves no data directory behind.
	other := filepath.Join(t.TempDir(), "other")
	var o, e bytes.Buffer
	if code := cli.Run(context.Background(), []string{"--data", other, "--db", "postgres://capf@127.0.0.1:1/capf?sslmode=disable", "init"}, &o, &e); code == 0 || !strings.Contains(e.String(), "unreachable") {
		t.Errorf("init with an unreachable database: exit %d: %s%s", code, o.String(), e.String())
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data directory after the failed init: %v, want none", err)
	}
	if _, err := os.Stat(filepath.Join(data, "capf.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("capf.db after init --db: %v", err)
	}
	name := newPhoneName()
	if out, errOut, code := run("--db", dsn, "device", "add", name, "--operation", "install", "--auth-mode", "null"); code != 0 {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	out, errOut, code = run("--db", dsn, "device", "list")
	if code != 0 || !strings.Contains(out, name) {
		t.Fatalf("device list: exit %d: %s%s", code, out, errOut)
	}
	// Without --db the same directory has no SQLite database to show.
	if out, _, code := run("device", "list"); code == 0 {
		t.Errorf("device list without --db listed the SQLite database of a PostgreSQL node:\n%s", out)
	}
	if out, errOut, code := run("--db", dsn, "migrate", "--dry-run"); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("migrate --dry-run: exit %d: %s%s", code, out, errOut)
	}
}
