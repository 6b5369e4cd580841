package cli

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestResolveDB: the database is --db, else CAPF_DB, else the database
// node setting of capf.json, else the data directory's SQLite; a bad value
// from any of them is refused naming where it came from, never showing a
// password; a password in a capf.json others may read is refused.
func TestResolveDB(t *testing.T) {
	const (
		flagDB = "postgres://capf@flag.example/capf"
		envDB  = "postgres://capf@env.example/capf"
		fileDB = "postgres://capf:s3cret@file.example/capf?sslmode=verify-full"
	)
	file := func(doc string, mode os.FileMode) string {
		dir := t.TempDir()
		if doc != "" {
			p := filepath.Join(dir, "capf.json")
			if err := os.WriteFile(p, []byte(doc), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	withDB := `{"listen": ":3804", "database": "` + fileDB + `"}`
	for _, tc := range []struct {
		name      string
		flag      string
		flagSet   bool
		env       string
		doc       string
		mode      os.FileMode
		want      string
		wantFrom  string // "file": the capf.json path
		wantError string // part of the Invalid error
	}{
		{name: "ok/flag-over-env-and-file", flag: flagDB, flagSet: true, env: envDB, doc: withDB, want: flagDB, wantFrom: "--db"},
		{name: "ok/empty-flag-means-sqlite", flag: "", flagSet: true, env: envDB, doc: withDB, want: "", wantFrom: "--db"},
		{name: "ok/env-over-file", env: envDB, doc: withDB, want: envDB, wantFrom: "CAPF_DB"},
		{name: "ok/file", doc: withDB, want: fileDB, wantFrom: "file"},
		{name: "ok/file-without-password-any-mode", doc: `{"database": "postgres://capf@db/capf"}`, mode: 0o644, want: "postgres://capf@db/capf", wantFrom: "file"},
		{name: "ok/file-empty-database", doc: `{"database": ""}`, want: ""},
		{name: "ok/no-setting", doc: `{"listen": ":3804"}`, want: ""},
		{name: "ok/no-file", want: ""},
		{name: "ok/unparsable-file-left-to-its-readers", doc: `{"database": `, want: ""},
		{name: "fail/flag-not-postgres", flag: "mysql://root:hunter2@db/capf", flagSet: true, wantError: "--db"},
		{name: "fail/env-not-postgres", env: "/var/lib/capf.db", wantError: "CAPF_DB: want a postgres:// URL"},
		{name: "fail/file-not-postgres", doc: `{"database": "sqlite:///var/lib/capf.db"}`, wantError: "capf.json: database: want a postgres:// URL"},
		{name: "fail/file-not-a-string", doc: `{"database": 5432}`, wantError: "capf.json: database: want a postgres:// URL as a string"},
		{name: "fail/file-password-readable-by-others", doc: withDB, mode: 0o644, wantError: "holds the database password and others may read it (mode 0644)"},
		{name: "fail/file-password-readable-by-group", doc: withDB, mode: 0o640, wantError: "chmod 600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mode := tc.mode
			if mode == 0 {
				mode = 0o600
			}
			dir := file(tc.doc, mode)
			getenv := func(k string) string {
				if k == "CAPF_DB" {
					return tc.env
				}
				return ""
			}
			got, err := resolveDB(tc.flag, tc.flagSet, getenv, dir)
			if tc.wantError != "" {
				if err == nil || fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("resolveDB = %+v, %v; want an Invalid error containing %q", got, err, tc.wantError)
				}
				for _, secret := range []string{"s3cret", "hunter2"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("the error shows the password: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantFrom := tc.wantFrom
			if wantFrom == "file" {
				wantFrom = filepath.Join(dir, "capf.json")
			}
			if got.db != tc.want || got.from != wantFrom {
				t.Fatalf("resolveDB = %+v; want %q from %q", got, tc.want, wantFrom)
			}
		})
	}
}

// TestDatabaseNodeSetting: a node whose capf.json names the PostgreSQL
// database runs its commands against it without --db or CAPF_DB; `capf
// config show` lists the setting with its password hidden.
func TestDatabaseNodeSetting(t *testing.T) {
	t.Setenv("CAPF_DB", "")
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "s3cret") // the test cluster trusts the socket: not checked
	withPassword := u.String()
	data := filepath.Join(t.TempDir(), "node")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(`{"database": "`+withPassword+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, data, "migrate"); code != ExitOK {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "capf.db")); err == nil {
		t.Fatal("migrate made a SQLite database although capf.json names PostgreSQL")
	}
	if out, errOut, code := run(t, data, "device", "add", "SEP001122334455", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("device add: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := run(t, data, "--db", dsn, "device", "list")
	if code != ExitOK || !strings.Contains(out, "SEP001122334455") {
		t.Fatalf("device list with --db: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = run(t, data, "config", "show")
	if code != ExitOK || !strings.Contains(out, "database") || !strings.Contains(out, "xxxxx") || strings.Contains(out, "s3cret") {
		t.Fatalf("config show: exit %d; want the database with its password hidden\n%s%s", code, out, errOut)
	}
}

// TestHelpHidesDatabasePassword: --help never prints CAPF_DB, which may
// hold a password (it was the --db flag's shown default).
func TestHelpHidesDatabasePassword(t *testing.T) {
	t.Setenv("CAPF_DB", "postgres://capf:s3cret@db.example/capf")
	for _, args := range [][]string{{"--help"}, {"device", "--help"}, {"serve", "--help"}} {
		out, errOut, code := run(t, t.TempDir(), args...)
		if code != ExitOK || strings.Contains(out+errOut, "s3cret") || !strings.Contains(out, "--db") {
			t.Fatalf("%v: exit %d; want help without the password\n%s%s", args, code, out, errOut)
		}
	}
}
