package apiclient_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/apiclient"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/view"
)

const token = "capf_test_0123456789abcdef"

// contract is an independent implementation of the few /api/v1 routes the
// client calls, as ws9's contract states them: view JSON, status codes,
// problem+json errors, bearer tokens. It keeps the requests it saw.
type contract struct {
	mu       sync.Mutex
	devices  []view.Device
	requests []*http.Request
	bodies   []string
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, detail string, location string) {
	p := map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail}
	if location != "" {
		p["errors"] = []map[string]string{{"location": location, "message": detail}}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

func (c *contract) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices", func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		if limit < 1 || limit > 1000 {
			writeProblem(w, http.StatusUnprocessableEntity, "limit must be 1 to 1000", "query.limit")
			return
		}
		c.mu.Lock()
		all := c.devices
		c.mu.Unlock()
		page := []view.Device{}
		if offset < len(all) {
			page = all[offset:min(len(all), offset+limit)]
		}
		writeJSON(w, http.StatusOK, view.DeviceList{Total: len(all), Devices: page})
	})
	mux.HandleFunc("POST /api/v1/devices", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Name     string  `json:"name"`
			AuthMode *string `json:"auth_mode"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			writeProblem(w, http.StatusBadRequest, "bad JSON", "")
			return
		}
		if b.Name == "SEPEXISTS00000" {
			writeProblem(w, http.StatusConflict, "device SEPEXISTS00000 exists already", "")
			return
		}
		d := view.Device{Name: b.Name, AuthMode: "null", CreatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
		if b.AuthMode != nil {
			d.AuthMode = *b.AuthMode
		}
		writeJSON(w, http.StatusCreated, d)
	})
	mux.HandleFunc("GET /api/v1/devices/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "SEP000000000001" {
			writeProblem(w, http.StatusNotFound, "device "+r.PathValue("name")+" not found", "")
			return
		}
		n, err := strconv.Atoi(r.URL.Query().Get("history"))
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, http.StatusUnprocessableEntity, "validation failed", "query.history")
			return
		}
		h := []view.Attempt{}
		for range n {
			h = append(h, view.Attempt{Remote: "192.0.2.1", Result: "success"})
		}
		writeJSON(w, http.StatusOK, view.DeviceDetail{Device: view.Device{Name: "SEP000000000001"}, History: h, Fetched: []view.Fetched{{Type: "MIC", DER: []byte{1, 2}}}})
	})
	mux.HandleFunc("PATCH /api/v1/devices/{name}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, view.Device{Name: r.PathValue("name"), Operation: "install"})
	})
	mux.HandleFunc("DELETE /api/v1/devices/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/v1/devices/{name}/history", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []view.Attempt{{Remote: "192.0.2.7", Result: "failure", Reason: "wrong authentication string"}})
	})
	mux.HandleFunc("POST /api/v1/import", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "text/csv" {
			writeProblem(w, http.StatusUnsupportedMediaType, "want text/csv", "")
			return
		}
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "bad") {
			writeProblem(w, http.StatusUnprocessableEntity, "line 2: security profile \"bad\": want non-secure, authenticated or encrypted", "line 2")
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"created": 2, "updated": 1, "unchanged": 0})
	})
	mux.HandleFunc("GET /api/v1/report", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("limit") || r.URL.Query().Has("offset") {
			writeProblem(w, http.StatusBadRequest, "the report takes no paging", "")
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		fmt.Fprintf(w, "Device Name\r\nname=%s\r\n", r.URL.Query().Get("name"))
	})
	mux.HandleFunc("GET /api/v1/audit", func(w http.ResponseWriter, r *http.Request) {
		if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err != nil || n < 1 || n > 1000 {
			writeProblem(w, http.StatusUnprocessableEntity, "validation failed", "query.limit")
			return
		}
		writeJSON(w, http.StatusOK, []view.AuditEvent{{ID: 7, Action: "device.create", Target: r.URL.Query().Get("target"), Actor: "api:robot", Changes: []device.FieldChange{{Field: "operation", Old: "none", New: "install"}}}})
	})
	mux.HandleFunc("GET /api/v1/service", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, system.Activation{Active: true})
	})
	mux.HandleFunc("PUT /api/v1/service", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Active bool `json:"active"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		writeJSON(w, http.StatusOK, system.Activation{Active: b.Active, ChangedBy: "api:robot"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.mu.Lock()
		c.requests = append(c.requests, r)
		c.bodies = append(c.bodies, string(body))
		c.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+token {
			writeProblem(w, http.StatusUnauthorized, "an API token or a session is needed", "")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// last returns the last request the server saw and its body.
func (c *contract) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.requests) == 0 {
		t.Fatal("the server saw no request")
	}
	return c.requests[len(c.requests)-1], c.bodies[len(c.bodies)-1]
}

// newClient starts a TLS server with h and returns a client that trusts it.
func newClient(t *testing.T, h http.Handler, o apiclient.Options) *apiclient.Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	o.Server, o.RootCAs = srv.URL, pool
	if o.Token == "" {
		o.Token = token
	}
	c, err := apiclient.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCalls(t *testing.T) {
	ct := &contract{}
	for i := range 2500 {
		ct.devices = append(ct.devices, view.Device{Name: fmt.Sprintf("SEP%012d", i)})
	}
	c := newClient(t, ct.handler(), apiclient.Options{})
	ctx := context.Background()
	deadline := time.Date(2026, 12, 24, 18, 0, 0, 0, time.UTC)

	t.Run("devices/all-pages", func(t *testing.T) {
		l, err := c.Devices(ctx, device.Criteria{Name: "SEP", Where: []string{"status:contains:Fail", "operation:equals:install"}, Sort: "status", Desc: true})
		if err != nil {
			t.Fatal(err)
		}
		if l.Total != 2500 || len(l.Devices) != 2500 || l.Devices[2499].Name != "SEP000000002499" {
			t.Fatalf("got total %d, %d devices", l.Total, len(l.Devices))
		}
		r, _ := ct.last(t)
		q := r.URL.Query()
		if q.Get("name") != "SEP" || !reflect.DeepEqual(q["where"], []string{"status:contains:Fail", "operation:equals:install"}) ||
			q.Get("sort") != "status" || q.Get("desc") != "true" || q.Get("offset") != "2000" || q.Get("limit") != "1000" {
			t.Fatalf("last query %s", r.URL.RawQuery)
		}
	})
	t.Run("devices/page", func(t *testing.T) {
		l, err := c.Devices(ctx, device.Criteria{Limit: 1500, Offset: 100})
		if err != nil {
			t.Fatal(err)
		}
		if l.Total != 2500 || len(l.Devices) != 1500 || l.Devices[0].Name != "SEP000000000100" || l.Devices[1499].Name != "SEP000000001599" {
			t.Fatalf("got total %d, %d devices", l.Total, len(l.Devices))
		}
		if r, _ := ct.last(t); r.URL.Query().Get("limit") != "500" {
			t.Fatalf("last query %s, want limit 500 for the rest", r.URL.RawQuery)
		}
	})
	t.Run("device", func(t *testing.T) {
		d, err := c.Device(ctx, "SEP000000000001", 3)
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "SEP000000000001" || len(d.History) != 3 || len(d.Fetched) != 1 || !bytes.Equal(d.Fetched[0].DER, []byte{1, 2}) {
			t.Fatalf("got %+v", d)
		}
	})
	t.Run("device/all-history", func(t *testing.T) {
		d, err := c.Device(ctx, "SEP000000000001", 0)
		if err != nil || len(d.History) != 1000 {
			t.Fatalf("%v, %d attempts", err, len(d.History))
		}
	})
	t.Run("device/unknown", func(t *testing.T) {
		_, err := c.Device(ctx, "SEP00000000000F", 1)
		if fault.KindOf(err) != fault.NotFound || err.Error() != "device SEP00000000000F not found" {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("report/refuses-paging", func(t *testing.T) {
		if err := c.Report(ctx, io.Discard, device.Criteria{Limit: 5}); fault.KindOf(err) != fault.Invalid {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("audit/all", func(t *testing.T) {
		if _, err := c.Audit(ctx, device.AuditQuery{}); err != nil {
			t.Fatal(err)
		}
		if r, _ := ct.last(t); r.URL.Query().Get("limit") != "1000" {
			t.Fatal(r.URL.RawQuery)
		}
	})
	t.Run("create", func(t *testing.T) {
		mode, desc := device.AuthString, "Lobby"
		d, err := c.CreateDevice(ctx, "SEP000000000009", device.Change{Description: &desc, AuthMode: &mode, GenerateString: true, Deadline: &deadline})
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "SEP000000000009" || d.AuthMode != "string" {
			t.Fatalf("got %+v", d)
		}
		r, body := ct.last(t)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s %s", r.Method, r.Header.Get("Content-Type"))
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"name": "SEP000000000009", "description": "Lobby", "auth_mode": "string", "generate_string": true, "deadline": "2026-12-24T18:00:00Z"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %v, want %v", got, want)
		}
	})
	t.Run("update", func(t *testing.T) {
		op, zero := device.OpInstall, time.Time{}
		d, err := c.UpdateDevice(ctx, "SEP000000000001", device.Change{Operation: &op, Deadline: &zero})
		if err != nil {
			t.Fatal(err)
		}
		if d.Operation != "install" {
			t.Fatalf("got %+v", d)
		}
		r, body := ct.last(t)
		if r.Method != http.MethodPatch || r.URL.Path != "/api/v1/devices/SEP000000000001" || body != `{"operation":"install","deadline":""}` {
			t.Fatalf("%s %s %s", r.Method, r.URL.Path, body)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if err := c.DeleteDevice(ctx, "SEP000000000001"); err != nil {
			t.Fatal(err)
		}
		if r, _ := ct.last(t); r.Method != http.MethodDelete {
			t.Fatal(r.Method)
		}
	})
	t.Run("history", func(t *testing.T) {
		as, err := c.History(ctx, "SEP000000000001", 5)
		if err != nil || len(as) != 1 || as[0].Reason != "wrong authentication string" {
			t.Fatalf("%v %+v", err, as)
		}
		if r, _ := ct.last(t); r.URL.Query().Get("limit") != "5" {
			t.Fatal(r.URL.RawQuery)
		}
	})
	t.Run("import", func(t *testing.T) {
		n, err := c.Import(ctx, strings.NewReader("Device Name\r\nSEP000000000001\r\n"))
		if err != nil || n != (device.ImportCounts{Created: 2, Updated: 1}) {
			t.Fatalf("%v %+v", err, n)
		}
		if _, body := ct.last(t); body != "Device Name\r\nSEP000000000001\r\n" {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("import/bad-row", func(t *testing.T) {
		_, err := c.Import(ctx, strings.NewReader("Device Name,Security Profile\r\nSEP000000000001,bad\r\n"))
		if fault.KindOf(err) != fault.Invalid || err.Error() != `line 2: security profile "bad": want non-secure, authenticated or encrypted` || fault.FieldOf(err) != "line 2" {
			t.Fatalf("got %v (kind %v, field %q)", err, fault.KindOf(err), fault.FieldOf(err))
		}
	})
	t.Run("report", func(t *testing.T) {
		var buf bytes.Buffer
		if err := c.Report(ctx, &buf, device.Criteria{Name: "SEP00"}); err != nil {
			t.Fatal(err)
		}
		if buf.String() != "Device Name\r\nname=SEP00\r\n" {
			t.Fatalf("report %q", buf.String())
		}
	})
	t.Run("audit", func(t *testing.T) {
		evs, err := c.Audit(ctx, device.AuditQuery{Target: "SEP000000000001", Limit: 10})
		if err != nil || len(evs) != 1 || evs[0].Target != "SEP000000000001" || evs[0].Changes[0].New != "install" {
			t.Fatalf("%v %+v", err, evs)
		}
		if r, _ := ct.last(t); r.URL.Query().Get("limit") != "10" {
			t.Fatal(r.URL.RawQuery)
		}
	})
	t.Run("service", func(t *testing.T) {
		a, err := c.Service(ctx)
		if err != nil || !a.Active {
			t.Fatalf("%v %+v", err, a)
		}
		a, err = c.SetService(ctx, false)
		if err != nil || a.Active || a.ChangedBy != "api:robot" {
			t.Fatalf("%v %+v", err, a)
		}
		if r, body := ct.last(t); r.Method != http.MethodPut || body != `{"active":false}` {
			t.Fatalf("%s %s", r.Method, body)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		ct.mu.Lock()
		defer ct.mu.Unlock()
		for _, r := range ct.requests {
			if got := r.Header.Get("Authorization"); got != "Bearer "+token {
				t.Fatalf("%s %s: Authorization %q", r.Method, r.URL.Path, got)
			}
		}
	})
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantKind    fault.Kind
		wantMsg     string
		wantField   string
	}{
		{"unauthorized", 401, "application/problem+json", `{"title":"Unauthorized","status":401,"detail":"an API token or a session is needed"}`, fault.Unauthorized, "an API token or a session is needed", ""},
		{"forbidden", 403, "application/problem+json", `{"title":"Forbidden","status":403,"detail":"the viewer role cannot change anything"}`, fault.Forbidden, "the viewer role cannot change anything", ""},
		{"not-found", 404, "application/problem+json", `{"title":"Not Found","status":404,"detail":"device SEP000000000001 not found"}`, fault.NotFound, "device SEP000000000001 not found", ""},
		{"conflict", 409, "application/problem+json", `{"title":"Conflict","status":409,"detail":"device SEP000000000001 exists already"}`, fault.Conflict, "device SEP000000000001 exists already", ""},
		{"invalid-field", 422, "application/problem+json", `{"title":"Unprocessable Entity","status":422,"detail":"authentication string must be 4 to 10 digits","errors":[{"location":"body.auth_string","message":"authentication string must be 4 to 10 digits"}]}`, fault.Invalid, "authentication string must be 4 to 10 digits", "auth_string"},
		{"invalid-huma", 422, "application/problem+json", `{"title":"Unprocessable Entity","status":422,"detail":"validation failed","errors":[{"location":"query.limit","message":"expected number <= 1000"}]}`, fault.Invalid, "validation failed: query.limit: expected number <= 1000", "limit"},
		{"bad-request", 400, "application/problem+json", `{"title":"Bad Request","status":400,"detail":"request body is not JSON"}`, fault.Invalid, "request body is not JSON", ""},
		{"throttled", 429, "application/problem+json", `{"title":"Too Many Requests","status":429,"detail":"too many attempts; wait 30s"}`, fault.Throttled, "too many attempts; wait 30s", ""},
		{"unavailable", 503, "application/problem+json", `{"title":"Service Unavailable","status":503,"detail":"the database is busy"}`, fault.Unavailable, "the database is busy", ""},
		{"internal", 500, "application/problem+json", `{"title":"Internal Server Error","status":500,"detail":"internal error; see the server log"}`, fault.Internal, "internal error; see the server log", ""},
		{"teapot", 418, "application/problem+json", `{"title":"I'm a teapot","status":418}`, fault.Internal, "I'm a teapot", ""},
		{"html-proxy", 502, "text/html", `<html>bad gateway</html>`, fault.Internal, "answered 502 Bad Gateway", ""},
		{"not-json", 404, "application/problem+json", `not json`, fault.NotFound, "answered 404 Not Found", ""},
		{"huge-problem", 409, "application/problem+json", `{"title":"Conflict","detail":"` + strings.Repeat("x", apiclient.MaxProblemBytes) + `"}`, fault.Conflict, "answered 409 Conflict", ""},
		{"redirect", 302, "text/html", ``, fault.Internal, "redirected", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 302 {
					w.Header().Set("Location", "https://elsewhere.example/")
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}), apiclient.Options{})
			_, err := c.Device(context.Background(), "SEP000000000001", 1)
			if err == nil {
				t.Fatal("no error")
			}
			if fault.KindOf(err) != tt.wantKind || !strings.Contains(err.Error(), tt.wantMsg) || fault.FieldOf(err) != tt.wantField {
				t.Fatalf("got %q (kind %v, field %q), want %q (kind %v, field %q)", err, fault.KindOf(err), fault.FieldOf(err), tt.wantMsg, tt.wantKind, tt.wantField)
			}
			if exact := !strings.HasPrefix(tt.wantMsg, "answered") && tt.name != "redirect"; exact && err.Error() != tt.wantMsg {
				t.Fatalf("message %q, want exactly %q", err, tt.wantMsg)
			}
		})
	}
}

func TestBoundedAnswers(t *testing.T) {
	big := strings.Repeat(" ", 4096)
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/report":
			w.Header().Set("Content-Type", "text/csv")
		default:
			w.Header().Set("Content-Type", "application/json")
		}
		// An answer that never ends: the client must stop reading.
		for {
			if _, err := io.WriteString(w, big); err != nil {
				return
			}
		}
	}), apiclient.Options{MaxJSONBytes: 1 << 20, MaxReportBytes: 1 << 20})
	_, err := c.Audit(context.Background(), device.AuditQuery{})
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Fatalf("audit: %v", err)
	}
	var buf bytes.Buffer
	err = c.Report(context.Background(), &buf, device.Criteria{})
	if err == nil || !strings.Contains(err.Error(), "larger than the limit") || buf.Len() != 1<<20 {
		t.Fatalf("report: %v, %d bytes", err, buf.Len())
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	// The handler answers only when the test ends (release), never on
	// its request's cancellation: an empty answer sent then could reach
	// the client before its deadline on a loaded machine.
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}), apiclient.Options{Timeout: 200 * time.Millisecond})
	defer close(release)
	_, err := c.Audit(context.Background(), device.AuditQuery{})
	if fault.KindOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("got %v", err)
	}
}

func TestWrongContentType(t *testing.T) {
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>login</html>")
	}), apiclient.Options{})
	if _, err := c.Audit(context.Background(), device.AuditQuery{}); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("audit: %v", err)
	}
	if err := c.Report(context.Background(), io.Discard, device.Criteria{}); err == nil || !strings.Contains(err.Error(), "not text/csv") {
		t.Fatalf("report: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name, server, token, want string
	}{
		{"http", "http://capf.example:8443", token, "want an https address"},
		{"no-scheme", "capf.example:8443", token, "want an https address"},
		{"userinfo", "https://admin:pw@capf.example:8443", token, "want an https address"},
		{"query", "https://capf.example:8443/?x=1", token, "want an https address"},
		{"no-token", "https://capf.example:8443", "", "an API token is needed"},
		{"token-newline", "https://capf.example:8443", "abc\ndef", "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apiclient.New(apiclient.Options{Server: tt.server, Token: tt.token})
			if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want Invalid %q", err, tt.want)
			}
		})
	}
}

// testCA is a small CA and a server certificate for 127.0.0.1 it issued,
// as the admin listener's DATA/admin-tls holds them.
func testCA(t *testing.T) (caPEM []byte, server tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CAPF admin CA (test)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

func TestTLS(t *testing.T) {
	caPEM, serverCert := testCA(t)
	ct := &contract{}
	start := func(t *testing.T, maxVersion uint16) string {
		srv := httptest.NewUnstartedServer(ct.handler())
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	pool, err := apiclient.CertPool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		maxVersion uint16
		roots      bool
		want       string // "" for success
	}{
		{"custom-ca", 0, true, ""},
		{"tls12", tls.VersionTLS12, true, ""},
		{"system-roots", 0, false, "not trusted"},
		{"tls11-refused", tls.VersionTLS11, true, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := apiclient.Options{Server: start(t, tt.maxVersion), Token: token}
			if tt.roots {
				o.RootCAs = pool
			}
			c, err := apiclient.New(o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Service(context.Background())
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || fault.KindOf(err) != fault.Unavailable):
				t.Fatalf("got %v, want Unavailable %q", err, tt.want)
			}
		})
	}
	if _, err := apiclient.CertPool([]byte("not a certificate")); !errors.Is(err, fault.ErrInvalid) {
		t.Fatalf("CertPool of garbage: %v", err)
	}
}

func TestServerAddressForms(t *testing.T) {
	ct := &contract{}
	srv := httptest.NewTLSServer(ct.handler())
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	for _, server := range []string{srv.URL, srv.URL + "/", srv.URL + "/api/v1", srv.URL + "/api/v1/"} {
		t.Run(server, func(t *testing.T) {
			c, err := apiclient.New(apiclient.Options{Server: server, Token: token, RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Service(context.Background()); err != nil {
				t.Fatal(err)
			}
			if r, _ := ct.last(t); r.URL.Path != "/api/v1/service" {
				t.Fatalf("path %s", r.URL.Path)
			}
		})
	}
}
