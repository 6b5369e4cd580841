package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// TestCASetCommands: the CA set commands on a data directory no serve has
// run on since the upgrade: the CAPF certificate of before the set is
// adopted as its active CA by the first change; every bad input exits with
// its own code and message and changes nothing (same set, same audit
// stream, no key file left behind); each change is audited.
func TestCASetCommands(t *testing.T) {
	data := initData(t)
	status := func() []caset.Row {
		t.Helper()
		out, errOut, code := run(t, data, "ca", "status", "--json")
		if code != ExitOK {
			t.Fatalf("ca status: exit %d: %s%s", code, out, errOut)
		}
		var rows []caset.Row
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	audit := func() []device.AuditEvent {
		t.Helper()
		st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		evs, err := st.ListAudit(t.Context(), device.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	rows := status()
	if len(rows) != 1 || rows[0].State != "active" {
		t.Fatalf("ca status before any change: %+v, want the CAPF certificate active", rows)
	}
	id1 := rows[0].ID
	before := len(audit())
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ca", "activate"}, ExitUsage, "no staged CAPF certificate"},
		{[]string{"ca", "activate", id1}, ExitConflict, "is active, not staged"},
		{[]string{"ca", "activate", "0123456789abcdef"}, ExitNotFound, "no CAPF certificate with id or serial"},
		{[]string{"ca", "activate", "not-hex"}, ExitUsage, "neither a CA id nor a serial"},
		{[]string{"ca", "retire", id1}, ExitConflict, "is the active CAPF certificate"},
		{[]string{"ca", "retire", "ffff0000ffff"}, ExitNotFound, "no CAPF certificate"},
		{[]string{"ca", "regenerate", "--key-algorithm", "dsa1024"}, ExitUsage, "unknown CAPF key algorithm"},
		{[]string{"ca", "export", "--all", "--der"}, ExitUsage, "--all and --der"},
	} {
		out, errOut, code := run(t, data, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q (%s)", c.args, code, errOut, c.code, c.msg, out)
		}
	}
	// Nothing changed: not even the adoption of the CAPF certificate.
	evs := audit()
	if len(evs) != before {
		t.Fatalf("audit after refused commands: %d new events, newest %+v; want none", len(evs)-before, evs[0])
	}
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ListCAs(t.Context())
	st.Close()
	if err != nil || len(recs) != 0 {
		t.Fatalf("the stored set after refused commands: %+v %v, want it empty", recs, err)
	}
	if es, _ := os.ReadDir(datadir.Dir(data).CA()); len(es) != 2 {
		t.Errorf("DATA/ca holds %d entries after refused commands, want capf.key and capf.pem", len(es))
	}

	out, errOut, code := run(t, data, "ca", "regenerate", "--key-algorithm", "ec256")
	if code != ExitOK {
		t.Fatalf("regenerate: exit %d: %s%s", code, out, errOut)
	}
	rows = status()
	if len(rows) != 2 || rows[1].State != "staged" {
		t.Fatalf("after regenerate: %+v", rows)
	}
	id2 := rows[1].ID
	if fi, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), id2, "capf.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the staged key file: %v %v, want mode 0600", err, fi)
	}
	if out, errOut, code := run(t, data, "ca", "retire", id2[:10]); code != ExitOK || !strings.Contains(out, "retired "+id2) {
		t.Fatalf("retire the staged one by a prefix of its id: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := run(t, data, "ca", "activate", id2); code != ExitConflict || !strings.Contains(errOut, "is retired, not staged") {
		t.Errorf("activate a retired CA: exit %d: %s", code, errOut)
	}
	evs = audit()
	if evs[0].Action != caset.AuditRetire || evs[1].Action != caset.AuditRegenerate || evs[2].Action != caset.AuditAdopt || evs[0].Target != id2 || evs[2].Target != id1 {
		t.Errorf("audit: %+v, want the adoption, the regeneration and the retirement", evs[:3])
	}
	if out, _, _ := run(t, data, "ca", "export", "--all"); strings.Count(out, "BEGIN CERTIFICATE") != 1 {
		t.Errorf("export --all lists a retired certificate:\n%s", out)
	}
}

// TestCASetNeedsSharedKeys: a PostgreSQL node without the cluster's KEK
// keeps its own key files, which other nodes on the database do not
// have; the CA set's commands are refused there, naming the KEK, and
// change nothing.
func TestCASetNeedsSharedKeys(t *testing.T) {
	dsn := pgtest.DSN(t)
	data := t.TempDir()
	for _, args := range [][]string{{"ca", "regenerate"}, {"ca", "activate"}, {"ca", "status"}, {"ca", "retire", "00ff00ff00"}} {
		out, errOut, code := run(t, data, append([]string{"--db", dsn}, args...)...)
		if code != ExitUsage || !strings.Contains(errOut, "--kek-file") {
			t.Errorf("%v on PostgreSQL without a KEK: exit %d: %s%s; want a usage error naming --kek-file", args, code, out, errOut)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(data, "ca")); len(es) != 0 {
		t.Errorf("a refused command wrote %d entries into DATA/ca", len(es))
	}
}
