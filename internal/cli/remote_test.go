package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/report"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/view"
)

const testToken = "capf_remote_test_token"

// apiServer is a small implementation of the ws9 /api/v1 routes the remote
// CLI calls, over a real device.Service on the data directory's SQLite
// database: what the real API does, without its framework. It maps errors
// once, as an HTTP edge does, with fault.ProblemOf.
type apiServer struct {
	svc *device.Service
}

func (a *apiServer) problem(w http.ResponseWriter, err error) {
	p := fault.ProblemOf(err)
	body := map[string]any{"type": "about:blank", "title": p.Title, "status": p.Status, "detail": p.Detail}
	if p.Field != "" {
		body["errors"] = []map[string]string{{"location": "body." + p.Field, "message": p.Detail}}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}

func (a *apiServer) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// criteria reads the Find Phone query parameters.
func criteria(r *http.Request) (device.Criteria, error) {
	q := r.URL.Query()
	c := device.Criteria{
		Name: q.Get("name"), Description: q.Get("description"), AuthString: q.Get("auth_string"),
		SecurityProfile: q.Get("security_profile"), LSCStatus: q.Get("lsc_status"), Operation: q.Get("operation"),
		Status: q.Get("status"), ExpiresBefore: q.Get("expires_before"), Where: q["where"], Sort: q.Get("sort"),
		Desc: q.Get("desc") == "true", Limit: 50,
	}
	for key, p := range map[string]*int{"limit": &c.Limit, "offset": &c.Offset} {
		if s := q.Get(key); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || (key == "limit" && (n < 1 || n > 1000)) {
				return c, fault.InvalidField(key, "%s %q: out of range", key, s)
			}
			*p = n
		}
	}
	return c, nil
}

// changeOf reads a POST or PATCH /devices body.
func changeOf(r *http.Request) (string, device.Change, error) {
	var b struct {
		Name            string  `json:"name"`
		Description     *string `json:"description"`
		SecurityProfile *string `json:"security_profile"`
		AuthMode        *string `json:"auth_mode"`
		AuthString      *string `json:"auth_string"`
		Operation       *string `json:"operation"`
		Key             *string `json:"key"`
		Deadline        *string `json:"deadline"`
		GenerateString  bool    `json:"generate_string"`
	}
	var c device.Change
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return "", c, fault.Invalidf("body: %v", err)
	}
	c.Description, c.AuthString, c.GenerateString = b.Description, b.AuthString, b.GenerateString
	if b.SecurityProfile != nil {
		p, err := device.ParseSecurityProfile(*b.SecurityProfile)
		if err != nil {
			return "", c, err
		}
		c.SecurityProfile = &p
	}
	if b.AuthMode != nil {
		m, err := device.ParseAuthMode(*b.AuthMode)
		if err != nil {
			return "", c, err
		}
		c.AuthMode = &m
	}
	if b.Operation != nil {
		o, err := device.ParseOperation(*b.Operation)
		if err != nil {
			return "", c, err
		}
		c.Operation = &o
	}
	if b.Key != nil {
		k, err := device.ParseKeySpec(*b.Key)
		if err != nil {
			return "", c, err
		}
		c.Key = &k
	}
	if b.Deadline != nil {
		var t time.Time
		if *b.Deadline != "" {
			var err error
			if t, err = time.Parse(time.RFC3339, *b.Deadline); err != nil {
				return "", c, fault.InvalidField("deadline", "deadline %q: want RFC 3339", *b.Deadline)
			}
		}
		c.Deadline = &t
	}
	return b.Name, c, nil
}

func (a *apiServer) handler() http.Handler {
	actor := device.Actor{Kind: device.ActorAPI, Name: "remote-test"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices", func(w http.ResponseWriter, r *http.Request) {
		c, err := criteria(r)
		if err != nil {
			a.problem(w, err)
			return
		}
		now := a.svc.Now()
		q, err := c.Query(now)
		if err != nil {
			a.problem(w, err)
			return
		}
		page, err := a.svc.List(r.Context(), q)
		if err != nil {
			a.problem(w, err)
			return
		}
		a.reply(w, http.StatusOK, view.DeviceList{Total: page.Total, Devices: view.Devices(page.Devices, now)})
	})
	mux.HandleFunc("POST /api/v1/devices", func(w http.ResponseWriter, r *http.Request) {
		name, c, err := changeOf(r)
		if err != nil {
			a.problem(w, err)
			return
		}
		d := device.Device{Name: name}
		c.Apply(&d)
		d, err = a.svc.Add(r.Context(), actor, d, c.GenerateString)
		if err != nil {
			a.problem(w, err)
			return
		}
		a.reply(w, http.StatusCreated, view.DeviceOf(d, a.svc.Now()))
	})
	mux.HandleFunc("GET /api/v1/devices/{name}", func(w http.ResponseWriter, r *http.Request) {
		d, err := a.svc.Get(r.Context(), r.PathValue("name"))
		if err != nil {
			a.problem(w, err)
			return
		}
		n, err := strconv.Atoi(r.URL.Query().Get("history"))
		if err != nil || n < 1 || n > 1000 {
			a.problem(w, fault.InvalidField("history", "history: want 1 to 1000"))
			return
		}
		hist, err := a.svc.History(r.Context(), d.Name, n)
		if err != nil {
			a.problem(w, err)
			return
		}
		fetched, err := a.svc.Fetched(r.Context(), d.Name)
		if err != nil {
			a.problem(w, err)
			return
		}
		a.reply(w, http.StatusOK, view.DeviceDetail{Device: view.DeviceOf(d, a.svc.Now()), History: view.Attempts(hist), Fetched: view.FetchedList(fetched)})
	})
	mux.HandleFunc("PATCH /api/v1/devices/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, c, err := changeOf(r)
		if err != nil {
			a.problem(w, err)
			return
		}
		d, err := a.svc.Change(r.Context(), actor, r.PathValue("name"), c)
		if err != nil {
			a.problem(w, err)
			return
		}
		a.reply(w, http.StatusOK, view.DeviceOf(d, a.svc.Now()))
	})
	mux.HandleFunc("DELETE /api/v1/devices/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := a.svc.Remove(r.Context(), actor, r.PathValue("name")); err != nil {
			a.problem(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/import", func(w http.ResponseWriter, r *http.Request) {
		rows, err := report.ParseImport(http.MaxBytesReader(w, r.Body, 64<<20))
		if err != nil {
			a.problem(w, err)
			return
		}
		n, err := a.svc.Import(r.Context(), actor, report.ImportRows(rows))
		if err != nil {
			a.problem(w, err)
			return
		}
		a.reply(w, http.StatusOK, map[string]int{"created": n.Created, "updated": n.Updated, "unchanged": n.Unchanged})
	})
	mux.HandleFunc("GET /api/v1/report", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("limit") || r.URL.Query().Has("offset") {
			a.problem(w, fault.Invalidf("the report takes no paging"))
			return
		}
		c, err := criteria(r)
		if err != nil {
			a.problem(w, err)
			return
		}
		c.Limit = 0 // the report holds every match
		now := a.svc.Now()
		q, err := c.Query(now)
		if err != nil {
			a.problem(w, err)
			return
		}
		page, err := a.svc.List(r.Context(), q)
		if err != nil {
			a.problem(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		bw := bufio.NewWriter(w)
		_ = report.WriteReport(bw, page.Devices, now)
		_ = bw.Flush()
	})
	mux.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || n < 1 || n > 1000 {
			a.problem(w, fault.InvalidField("limit", "limit: want 1 to 1000"))
			return
		}
		evs, err := a.svc.Audit(r.Context(), device.AuditQuery{Target: r.URL.Query().Get("target"), Limit: n})
		if err != nil {
			a.problem(w, err)
			return
		}
		a.reply(w, http.StatusOK, view.Audit(evs))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			a.problem(w, fault.New(fault.Unauthorized, "an API token or a session is needed"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// apiHandler builds an /api/v1 handler over a device service; it accepts
// the bearer token testToken as an admin called "remote-test".
type apiHandler func(svc *device.Service) http.Handler

// contractAPI is apiServer's handler.
func contractAPI(svc *device.Service) http.Handler { return (&apiServer{svc: svc}).handler() }

// remoteServer serves the API over the database of data on HTTPS and
// returns the arguments that point the CLI at it, and its store.
func remoteServer(t *testing.T, data string, build apiHandler) ([]string, *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewTLSServer(build(device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec(cfg.DefaultKey)})))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--server", srv.URL, "--token", testToken, "--server-ca", caFile}, st
}

// phoneSession records on st what a phone's Install/Upgrade session leaves
// behind: a failed attempt, then a successful one that installs an LSC
// (serial 0A1B2C), and a certificate fetched from the phone.
func phoneSession(t *testing.T, st *sqlite.Store, name string) {
	t.Helper()
	phoneSessionSerial(t, st, name, "0A1B2C")
}

// phoneSessionSerial is phoneSession with the LSC's serial given.
func phoneSessionSerial(t *testing.T, st *sqlite.Store, name, serial string) {
	t.Helper()
	ctx := context.Background()
	d, err := st.GetDevice(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	if _, err := st.RecordAuthFailure(ctx, device.AuthFailure{Attempt: device.Attempt{
		Device: name, Operation: d.Operation, Remote: "192.0.2.10", StartedAt: start, FinishedAt: start.Add(time.Second),
		Result: device.FailedStatus(d.Operation, "wrong authentication string"), Reason: "wrong authentication string", Node: "test",
	}}); err != nil {
		t.Fatal(err)
	}
	if d, err = st.GetDevice(ctx, name); err != nil {
		t.Fatal(err)
	}
	claim, err := st.StartAttempt(ctx, device.Attempt{Device: name, Operation: d.Operation, Remote: "192.0.2.10", StartedAt: start.Add(time.Minute), Node: "test", Rev: d.Rev})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: name, Type: "MIC", FetchedAt: start.Add(time.Minute), DER: []byte{0x30, 0x03, 0x02, 0x01, 0x01}}); err != nil {
		t.Fatal(err)
	}
	lsc := &device.Certificate{Serial: serial, Issuer: "CN=CAPF-test,O=Example", NotBefore: start, NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), DER: []byte{0x30, 0x00}}
	if err := st.FinishAttempt(ctx, device.Outcome{AttemptID: claim.AttemptID, Node: "test", Device: name, FinishedAt: start.Add(2 * time.Minute),
		Result: device.SuccessStatus(d.Operation), AuthMode: "string", SUDI: "verified", Completed: true, SetLSC: lsc}); err != nil {
		t.Fatal(err)
	}
}

// clearRemoteEnv keeps the developer's CAPF_SERVER and friends out of a test.
func clearRemoteEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"CAPF_SERVER", "CAPF_TOKEN", "CAPF_SERVER_CA"} {
		t.Setenv(k, "")
	}
}

// TestRemoteOutputIsLocalOutput runs each command once on the data
// directory and once through the API of a server on the same database,
// and holds the two outputs and exit codes equal byte for byte.
func TestRemoteOutputIsLocalOutput(t *testing.T) { compareLocalRemote(t, contractAPI) }

// compareLocalRemote runs each command once on the data directory and once
// through the API build makes, over the same database, and holds the two
// outputs and exit codes equal byte for byte. A command that changes
// something runs on a device of its own each time (A locally, B remotely),
// and its output is compared with the names swapped.
func compareLocalRemote(t *testing.T, build apiHandler) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, st := remoteServer(t, data, build)
	const a, b = "CSFALPHA", "CSFBRAVO" // as long as each other, so tables line up alike
	dir := t.TempDir()
	badCSV := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(badCSV, []byte("Device Name,Security Profile,Authentication Mode\r\nSEP000000000C01,non-secure,null\r\nSEP000000000C02,secure-ish,null\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	comboCSV := filepath.Join(dir, "combo.csv")
	if err := os.WriteFile(comboCSV, []byte("Device Name,Security Profile,Authentication Mode,Authentication String\r\nSEP000000000C01,authenticated,string,1234\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	goodCSV := func(name string) string {
		p := filepath.Join(dir, name+".csv")
		if err := os.WriteFile(p, []byte("Device Name,Description\r\n"+name+"1,Imported\r\n"+name+"2,\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		args  func(dev string) []string // dev is A locally, B remotely
		same  bool                      // the same arguments both ways (a read)
		setup func()                    // before the command
	}{
		{"add", func(d string) []string {
			return []string{"device", "add", d, "--description", "Lobby", "--auth-mode", "string", "--auth-string", "123456", "--operation", "install", "--key", "ec256", "--deadline", "2030-06-01T12:00:00Z"}
		}, false, nil},
		{"add-json", func(d string) []string {
			return []string{"device", "add", d + "J", "--security-profile", "encrypted", "--json"}
		}, false, nil},
		{"add-again", func(d string) []string { return []string{"device", "add", d} }, false, nil},
		{"add-bad-combination", func(d string) []string {
			return []string{"device", "add", d + "X", "--security-profile", "authenticated", "--auth-mode", "string", "--auth-string", "1234"}
		}, false, nil},
		{"list-after-session", func(string) []string { return []string{"device", "list"} }, true, func() { phoneSession(t, st, a); phoneSession(t, st, b) }},
		{"show-after-session", func(string) []string { return []string{"device", "show", a} }, true, nil},
		{"show-json-after-session", func(string) []string { return []string{"device", "show", b, "--json"} }, true, nil},
		{"show-history-1", func(string) []string { return []string{"device", "show", b, "--history", "1"} }, true, nil},
		{"set", func(d string) []string {
			return []string{"device", "set", d, "--description", "Front desk", "--operation", "delete", "--auth-string", "123456", "--deadline", "none"}
		}, false, nil},
		{"set-json", func(d string) []string { return []string{"device", "set", d, "--key", "rsa4096", "--json"} }, false, nil},
		{"set-nothing", func(d string) []string { return []string{"device", "set", d} }, false, nil},
		{"set-unknown", func(string) []string { return []string{"device", "set", "CSFNOBODY", "--operation", "install"} }, false, nil},
		{"show", func(string) []string { return []string{"device", "show", a} }, true, nil},
		{"show-json", func(string) []string { return []string{"device", "show", b, "--json", "--history", "0"} }, true, nil},
		{"show-lowercase", func(string) []string { return []string{"device", "show", strings.ToLower(a)} }, true, nil},
		{"show-unknown", func(string) []string { return []string{"device", "show", "CSFNOBODY"} }, true, nil},
		{"show-empty-name", func(string) []string { return []string{"device", "show", ""} }, true, nil},
		{"rm-empty-name", func(string) []string { return []string{"device", "rm", " "} }, true, nil},
		{"show-bad-name", func(string) []string { return []string{"device", "show", "PHONE"} }, true, nil},
		{"list", func(string) []string { return []string{"device", "list"} }, true, nil},
		{"list-json", func(string) []string { return []string{"device", "list", "--json", "--sort", "description", "--desc"} }, true, nil},
		{"list-filter", func(string) []string {
			return []string{"device", "list", "--name", "CSF", "--where", "operation:equals:delete", "--limit", "1"}
		}, true, nil},
		{"list-bad-where", func(string) []string { return []string{"device", "list", "--where", "colour:equals:red"} }, true, nil},
		{"report", func(string) []string { return []string{"report", "csv"} }, true, nil},
		{"report-filter", func(string) []string { return []string{"report", "csv", "--security-profile", "encrypted"} }, true, nil},
		{"import", func(d string) []string { return []string{"device", "import", goodCSV(d)} }, false, nil},
		{"import-bad-row", func(string) []string { return []string{"device", "import", badCSV} }, true, nil},
		{"import-bad-combination", func(string) []string { return []string{"device", "import", comboCSV} }, true, nil},
		{"audit", func(string) []string { return []string{"audit", "--device", a, "--json"} }, true, nil},
		{"rm", func(d string) []string { return []string{"device", "rm", d + "J"} }, false, nil},
		{"rm-unknown", func(string) []string { return []string{"device", "rm", "CSFNOBODY"} }, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			lout, lerr, lcode := run(t, data, tt.args(a)...)
			dev := b
			if tt.same {
				dev = a
			}
			rout, rerr, rcode := run(t, data, append(append([]string(nil), remote...), tt.args(dev)...)...)
			if !tt.same {
				rout, rerr = strings.ReplaceAll(rout, b, a), strings.ReplaceAll(rerr, b, a)
				if strings.Contains(tt.name, "json") {
					lout, rout = withoutTimes(t, lout), withoutTimes(t, rout)
				}
			}
			if lcode != rcode || lout != rout || lerr != rerr {
				t.Fatalf("local: exit %d\n%s%s\nremote: exit %d\n%s%s", lcode, lout, lerr, rcode, rout, rerr)
			}
			if lout+lerr == "" {
				t.Fatal("no output to compare")
			}
		})
	}
	// The reads above compared what the two writes made: the remote writes
	// went through the API as its token.
	out, _, _ := run(t, data, "audit", "--device", b)
	if !strings.Contains(out, "api:remote-test") || !strings.Contains(out, "device.update") {
		t.Fatalf("the remote changes are not audited as the token:\n%s", out)
	}
}

// withoutTimes drops the created_at and updated_at fields of a JSON device,
// which differ between two devices made one after the other.
func withoutTimes(t *testing.T, s string) string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, `"created_at"`) && !strings.Contains(line, `"updated_at"`) {
			out = append(out, line)
		}
	}
	if len(out) == len(strings.Split(s, "\n")) {
		t.Fatalf("no times in %s", s)
	}
	return strings.Join(out, "\n")
}

func TestRemoteFlags(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, _ := remoteServer(t, data, contractAPI)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		want     string
	}{
		{"fail/trust", nil, append(remote, "trust", "show", "x.tlv"), ExitUsage, "capf trust show does not work through a server's admin API"},
		{"fail/init", nil, []string{"--server", "https://capf.example:8443", "init"}, ExitUsage, "capf init does not work through a server's admin API"},
		{"fail/ca", nil, []string{"--token", "x", "ca", "show"}, ExitUsage, "--token is for the device, report csv, audit, service, cert, campaign and config show/set commands"},
		{"fail/config-validate", nil, []string{"--server-ca", notPEM, "config", "validate"}, ExitUsage, "capf config validate does not work through"},
		{"fail/phone-token", nil, []string{"--token", "x", "phone", "--server", "127.0.0.1:3804", "SEP000000000001"}, ExitUsage, "capf phone does not work through"},
		{"ok/env-server-ignored-by-local-command", map[string]string{"CAPF_SERVER": "https://capf.example:8443"}, []string{"config", "validate"}, ExitOK, ": ok"},
		{"fail/no-token", nil, []string{"--server", "https://capf.example:8443", "device", "list"}, ExitUsage, "--server needs an API token"},
		{"fail/token-without-server", nil, []string{"--token", "x", "device", "list"}, ExitUsage, "need --server"},
		{"ok/env-token-and-ca-without-server-is-local", map[string]string{"CAPF_TOKEN": "x", "CAPF_SERVER_CA": notPEM}, []string{"device", "list"}, ExitOK, "0 of 0 devices"},
		{"fail/http", nil, []string{"--server", "http://capf.example:8443", "--token", "x", "device", "list"}, ExitUsage, "want an https address"},
		{"fail/ca-not-pem", nil, append(append([]string(nil), remote[:4]...), "--server-ca", notPEM, "device", "list"), ExitUsage, "no PEM certificate"},
		{"fail/ca-missing", nil, append(append([]string(nil), remote[:4]...), "--server-ca", notPEM+".gone", "device", "list"), ExitUsage, "--server-ca"},
		{"fail/untrusted", nil, append(append([]string(nil), remote[:4]...), "device", "list"), ExitFailure, "not trusted"},
		{"fail/wrong-token", nil, []string{"--server", remote[1], "--token", "wrong", "--server-ca", remote[5], "device", "list"}, ExitFailure, "an API token or a session is needed"},
		{"ok/env", map[string]string{"CAPF_SERVER": remote[1], "CAPF_TOKEN": testToken, "CAPF_SERVER_CA": remote[5]}, []string{"device", "list"}, ExitOK, "0 of 0 devices"},
		{"fail/report-paging", nil, append(remote, "report", "csv", "--limit", "1"), ExitUsage, "limit and offset work only on a local report"},
		{"ok/help", nil, append(remote, "help", "serve"), ExitOK, "Usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			out, errOut, code := run(t, data, tt.args...)
			if code != tt.wantCode || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.wantCode, tt.want, out, errOut)
			}
		})
	}
}

// TestRemoteReportFileKeptOnFailure: a report that cannot be made leaves
// the file -o names as it was.
func TestRemoteReportFileKeptOnFailure(t *testing.T) {
	clearRemoteEnv(t)
	data := initData(t)
	remote, _ := remoteServer(t, data, contractAPI)
	path := filepath.Join(t.TempDir(), "report.csv")
	if err := os.WriteFile(path, []byte("earlier report\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--server", remote[1], "--token", "wrong", "--server-ca", remote[5], "report", "csv", "-o", path}
	if _, _, code := run(t, data, args...); code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "earlier report\n" {
		t.Fatalf("the report file became %q (%v)", b, err)
	}
	args[3] = testToken
	if _, errOut, code := run(t, data, args...); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), "Device Name,") {
		t.Fatalf("the report file is %q (%v)", b, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
