package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/dbdump"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/system"
)

// memDump is a dump held in memory: table -> header and rows, each row
// a map from column to value in a canonical form (booleans as 0/1, JSON
// as text), so dumps of the two backends compare equal.
type memDump struct {
	order   []string
	headers map[string]dbdump.Header
	raw     map[string][][]any
}

func newMemDump() *memDump {
	return &memDump{headers: map[string]dbdump.Header{}, raw: map[string][][]any{}}
}

type memWriter struct {
	d     *memDump
	table string
}

func (w memWriter) Write(row []any) error {
	w.d.raw[w.table] = append(w.d.raw[w.table], slices.Clone(row))
	return nil
}
func (memWriter) Close() error { return nil }

func (d *memDump) sink() dbdump.Sink {
	return func(h dbdump.Header) (dbdump.RowWriter, error) {
		d.order = append(d.order, h.Table)
		d.headers[h.Table] = h
		d.raw[h.Table] = nil
		return memWriter{d, h.Table}, nil
	}
}

// Tables and Open make it a dbdump.Source, through the real encoding.
func (d *memDump) Tables() []string { return d.order }

func (d *memDump) Open(table string) (*dbdump.Reader, io.Closer, error) {
	pr, pw := io.Pipe()
	go func() {
		w, err := dbdump.NewWriter(pw, d.headers[table])
		if err == nil {
			for _, r := range d.raw[table] {
				if err = w.Write(r); err != nil {
					break
				}
			}
			if err == nil {
				err = w.Close()
			}
		}
		pw.CloseWithError(err)
	}()
	r, err := dbdump.NewReader(pr)
	return r, pr, err
}

// canonical returns table -> rows as sorted "col=value" lines.
func (d *memDump) canonical() map[string][]string {
	out := map[string][]string{}
	for _, t := range d.order {
		h := d.headers[t]
		rows := []string{}
		for _, r := range d.raw[t] {
			var cols []string
			for i, c := range h.Columns {
				v := r[i]
				switch x := v.(type) {
				case bool:
					if x {
						v = int64(1)
					} else {
						v = int64(0)
					}
				case []byte:
					v = fmt.Sprintf("%x", x)
				case int32:
					v = int64(x)
				}
				cols = append(cols, fmt.Sprintf("%s=%v", c.Name, v))
			}
			slices.Sort(cols)
			rows = append(rows, strings.Join(cols, " "))
		}
		slices.Sort(rows)
		out[t] = rows
	}
	return out
}

// fill writes one of everything that travels: devices with history, an
// issuance, an account whose name has capitals and a token it owns, a
// service token, the service state, a campaign, fleet parameters and
// audit events; and what does not travel: a browser session.
func fill(t *testing.T, st Store) {
	t.Helper()
	ctx := t.Context()
	at := time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC)
	actor := device.CLIActor("test")
	for _, name := range []string{"SEP000000000001", "SEP000000000002", "CSFJDOE"} {
		if err := st.CreateDevice(ctx, device.Device{Name: name, Description: "désk " + name, AuthMode: device.AuthString, AuthString: "12345", Operation: device.OpInstall, CreatedAt: at, UpdatedAt: at},
			device.AuditEvent{At: at, Actor: actor, Action: "device.add", Target: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddCA(ctx, caset.Record{ID: "ab12", State: caset.Active, Chain: []byte{0x30, 0x03, 9, 8, 7}, KeyRef: "capf.key", CreatedAt: at, ChangedAt: at},
		nil, device.AuditEvent{At: at, Actor: actor, Action: caset.AuditAdopt, Target: "ab12"}); err != nil {
		t.Fatal(err)
	}
	// A former issuing CA (put in place, then taken out of it) and the one
	// in place.
	if err := st.PutIssuingCA(ctx, caset.IssuingRecord{ID: "ef56", ParentID: "ab12", Chain: []byte{0x30, 0x03, 3, 2, 1}, KeyRef: "issuing-ef56", CreatedAt: at},
		nil, device.AuditEvent{At: at, Actor: actor, Action: caset.AuditIssuer, Target: "ef56"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RetireIssuingCA(ctx, "ef56", at.Add(time.Minute), device.AuditEvent{At: at, Actor: actor, Action: caset.AuditIssuerRemove, Target: "ef56"}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutIssuingCA(ctx, caset.IssuingRecord{ID: "cd34", ParentID: "ab12", Chain: []byte{0x30, 0x03, 6, 5, 4}, KeyRef: "issuing-cd34", CreatedAt: at},
		nil, device.AuditEvent{At: at, Actor: actor, Action: caset.AuditIssuer, Target: "cd34"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveCRL(ctx, lsc.CRL{IssuerKeyID: "ab12", Number: 3, ThisUpdate: at, NextUpdate: at.Add(7 * 24 * time.Hour), DER: []byte{0x30, 0x03, 1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	claim, err := st.StartAttempt(ctx, device.Attempt{Device: "SEP000000000001", Operation: device.OpInstall, AuthMode: "string", Remote: "127.0.0.9:5000", StartedAt: at, Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordIssuance(ctx, device.Issuance{Serial: "0A1B", Device: "SEP000000000001", AttemptID: claim.AttemptID, Issuer: "CN=CAPF", IssuedAt: at, NotBefore: at, NotAfter: at.AddDate(5, 0, 0), DER: []byte{0x30, 0x82, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: "SEP000000000002", Type: "MIC", FetchedAt: at, DER: []byte{0x30, 0}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordReset(ctx, device.Reset{Device: "SEP000000000002", At: at, Actor: "web:Alice", Reason: "the PBX refused the NOTIFY"}, device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAccount(ctx, account.Account{Name: "Alice", Role: account.RoleAdmin, CreatedAt: at, UpdatedAt: at}, "$argon2id$hash", device.AuditEvent{At: at, Actor: actor, Action: "account.add", Target: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, account.Token{Name: "Deploy", Role: account.RoleViewer, CreatedAt: at, CreatedBy: "web:Alice", Owner: "Alice"}, "hash1", device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, account.Token{Name: "svc", Role: account.RoleAdmin, CreatedAt: at, CreatedBy: "cli"}, "hash2", device.AuditEvent{}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSession(ctx, account.StoredSession{IDHash: "s1", Account: "Alice", CSRF: "c", CreatedAt: at, LastSeen: at, ExpiresAt: at.Add(time.Hour)}, at.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.SetServiceState(ctx, system.ServiceState{Active: false, ChangedAt: at, ChangedBy: "cli:test"}, device.AuditEvent{At: at, Actor: actor, Action: "service.deactivate"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateFleetParameters(ctx, func(system.FleetParameters) (system.FleetChange, error) {
		return system.FleetChange{Set: map[string]json.RawMessage{"retry_delay": json.RawMessage(`"2s"`), "sudi_verification": json.RawMessage(`"required"`)}, MarkImported: true}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ScheduleCampaign(ctx, device.Campaign{CreatedAt: at, Actor: "cli:test", Operation: device.OpInstall, Search: "SEP"}, device.Query{}, actor,
		func(old device.Device) (device.Device, error) { old.Operation = device.OpInstall; return old, nil }); err != nil {
		t.Fatal(err)
	}
}

// dumpOf dumps o and checks that every table is classified.
func dumpOf(t *testing.T, o Options) *memDump {
	t.Helper()
	d := newMemDump()
	schema, err := Dump(t.Context(), o, t.TempDir(), d.sink())
	if err != nil {
		t.Fatalf("dump %s: %v", Describe(o), err)
	}
	if want := SchemaVersionOf(Backend(o)); schema != want {
		t.Errorf("dump of %s: schema %d, want %d", Backend(o), schema, want)
	}
	for _, table := range d.order {
		if _, ok := dbdump.Classify(table); !ok {
			t.Errorf("the %s table %s is not classified in dbdump.Tables: add it as Travel (a backup carries it) or NodeLocal (it describes the running nodes), with why", Backend(o), table)
		}
		if class, _ := dbdump.Classify(table); class == dbdump.NodeLocal {
			t.Errorf("the dump holds the node-local table %s", table)
		}
	}
	return d
}

func sqliteOptions(t *testing.T) Options {
	return Options{DataDir: t.TempDir(), Mode: Create}
}

// TestDumpRestoreAcrossBackends: a SQLite database dumped and restored
// into PostgreSQL, dumped again and restored into a new SQLite database,
// gives the same rows in every table each time (booleans and JSON in
// either backend's form), and the stores read the restored data back:
// the account keeps its capitals, the token its owner.
func TestDumpRestoreAcrossBackends(t *testing.T) {
	ctx := context.Background()
	src := sqliteOptions(t)
	st, err := Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, st)
	st.Close()
	first := dumpOf(t, src)
	for _, table := range first.order {
		if len(first.raw[table]) == 0 && table != "keys" {
			t.Errorf("fill left the table %s empty, so the round trip does not check it: add a row to fill() in internal/store/dump_test.go", table)
		}
	}

	pg := Options{DB: pgtest.DSN(t), Mode: Create}
	if err := Restore(ctx, pg, first, false); err != nil {
		t.Fatalf("restore into PostgreSQL: %v", err)
	}
	second := dumpOf(t, pg)
	if diff := compareDumps(first.canonical(), second.canonical()); diff != "" {
		t.Fatalf("SQLite -> PostgreSQL changed the data:\n%s", diff)
	}
	if err := Restore(ctx, pg, first, false); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second restore into the database: %v; want a refusal saying it is not empty", err)
	}
	if err := Restore(ctx, pg, first, true); err != nil {
		t.Errorf("a forced restore over the database: %v", err)
	}

	back := sqliteOptions(t)
	if err := Restore(ctx, back, second, false); err != nil {
		t.Fatalf("restore into SQLite: %v", err)
	}
	third := dumpOf(t, back)
	if diff := compareDumps(first.canonical(), third.canonical()); diff != "" {
		t.Fatalf("PostgreSQL -> SQLite changed the data:\n%s", diff)
	}
	if err := Restore(ctx, back, second, false); err == nil {
		t.Errorf("a restore into a SQLite directory that holds capf.db succeeded")
	}

	for _, o := range []Options{pg, back} {
		o.Mode = ReadWrite
		st, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		toks, err := st.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var owner string
		for _, tk := range toks {
			if tk.Name == "Deploy" {
				owner = tk.Owner
			}
		}
		if !strings.EqualFold(owner, "Alice") || len(toks) != 2 {
			t.Errorf("%s: tokens %+v; want Deploy owned by Alice and svc", Backend(o), toks)
		}
		if ss, err := st.GetServiceState(ctx); err != nil || ss.Active {
			t.Errorf("%s: service state %+v %v; want inactive", Backend(o), ss, err)
		}
		if _, err := st.GetSession(ctx, "s1"); err == nil {
			t.Errorf("%s: a browser session travelled", Backend(o))
		}
		// New rows continue after the restored ids.
		if err := st.AppendAudit(ctx, device.AuditEvent{At: time.Now(), Actor: device.CLIActor("test"), Action: "after.restore"}); err != nil {
			t.Errorf("%s: append after restore: %v", Backend(o), err)
		}
		if err := st.RecordIssuance(ctx, device.Issuance{Serial: "0C", Device: "CSFJDOE", IssuedAt: time.Now()}); err != nil {
			t.Errorf("%s: issuance after restore: %v", Backend(o), err)
		}
		st.Close()
	}
}

func compareDumps(a, b map[string][]string) string {
	var out []string
	for t, rows := range a {
		other, ok := b[t]
		if !ok {
			out = append(out, "table "+t+" missing")
			continue
		}
		if !slices.Equal(rows, other) {
			out = append(out, fmt.Sprintf("table %s:\n  - %s\n  + %s", t, strings.Join(rows, "\n  - "), strings.Join(other, "\n  + ")))
		}
	}
	for t := range b {
		if _, ok := a[t]; !ok {
			out = append(out, "table "+t+" added")
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// TestDumpIsOneSnapshot: while a writer keeps adding devices, each with
// its audit event in the same transaction, every dump holds exactly as
// many devices as device.add events, on both backends: the tables are
// read as of one instant (devices are dumped before audit_events, so a
// dump that read each table at its own time would hold more events).
func TestDumpIsOneSnapshot(t *testing.T) {
	backends := map[string]func(t *testing.T) Options{
		"sqlite":   func(t *testing.T) Options { return sqliteOptions(t) },
		"postgres": func(t *testing.T) Options { return Options{DB: pgtest.DSN(t), Mode: Create} },
	}
	for name, opts := range backends {
		t.Run(name, func(t *testing.T) {
			o := opts(t)
			st, err := Open(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				at := time.Now().UTC()
				for i := 0; ; i++ {
					if ctx.Err() != nil {
						done <- nil
						return
					}
					n := fmt.Sprintf("SEP%012X", i)
					if err := st.CreateDevice(ctx, device.Device{Name: n, CreatedAt: at, UpdatedAt: at},
						device.AuditEvent{At: at, Actor: device.CLIActor("test"), Action: "device.add", Target: n}); err != nil && ctx.Err() == nil {
						done <- err
						return
					}
				}
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("writer: %v", err)
				}
			}()
			for round := 0; round < 3; round++ {
				d := dumpOf(t, o)
				devices := len(d.raw["devices"])
				h := d.headers["audit_events"]
				adds := 0
				for _, r := range d.raw["audit_events"] {
					if r[h.Index("action")] == "device.add" {
						adds++
					}
				}
				if devices != adds {
					t.Fatalf("round %d: the dump holds %d devices and %d device.add events", round, devices, adds)
				}
				t.Logf("round %d: %d devices", round, devices)
			}
		})
	}
}
