package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/csv"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
	"github.com/capf-server/capf/internal/view"
)

func TestImport(t *testing.T) {
	e := newEnv(t)
	good := "Device Name,Description,Certificate Operation\n" +
		"SEP000000000001,first,install\n" +
		"SEP000000000002,second,\n"
	c := decode[view.ImportCounts](t, e.do(asAdmin, http.MethodPost, Prefix+"/import", good, "text/csv"), http.StatusOK)
	if c != (view.ImportCounts{Created: 2}) {
		t.Errorf("counts %+v, want 2 created", c)
	}
	again := "Device Name,Description\nSEP000000000001,first\nSEP000000000003,third\n"
	c = decode[view.ImportCounts](t, e.do(asAdmin, http.MethodPost, Prefix+"/import", again, "text/csv"), http.StatusOK)
	if c != (view.ImportCounts{Created: 1, Unchanged: 0, Updated: 1}) && c != (view.ImportCounts{Created: 1, Unchanged: 1}) {
		t.Errorf("counts %+v, want 1 created and 1 updated or unchanged", c)
	}

	tests := []struct {
		name, csv string
		line      int
		detail    string
	}{
		{"bad-value", "Device Name,Authentication Mode\nSEP0000000000A1,null\nSEP0000000000A2,psk\n", 3, "psk"},
		{"bad-combination", "Device Name,Authentication Mode,Authentication String\nSEP0000000000A1,null,\nSEP0000000000A2,null,123456\n", 3, "only used By Authentication String"},
		{"duplicate", "Device Name\nSEP0000000000A1\nSEP0000000000A1\n", 3, "twice"},
		{"bad-name", "Device Name\nSEP0000000000A1\n\nSEP12\n", 4, "SEP12"},
		{"empty", "\n", 1, "header"},
		{"syntax", "Device Name,Description\nSEP0000000000A1,\"open\n", 2, "CSV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/import", tt.csv, "text/csv"), http.StatusUnprocessableEntity)
			want := "line " + itoa(int64(tt.line))
			if !strings.HasPrefix(p.Detail, want+":") || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want %q… naming %q", p.Detail, want, tt.detail)
			}
			if locs := p.locations(); !slices.Equal(locs, []string{want}) {
				t.Errorf("locations %v, want [%s]", locs, want)
			}
			if _, err := e.devices.Get(t.Context(), "SEP0000000000A1"); err == nil {
				t.Error("a rejected file imported its good rows")
			}
		})
	}
	problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/import", "", "text/csv"), http.StatusBadRequest)
	huge := "Device Name,Description\n" + strings.Repeat("SEP0000000000A1,"+strings.Repeat("x", 100)+"\n", maxImportBytes/100)
	problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/import", huge, "text/csv"), http.StatusRequestEntityTooLarge)
	if l := decode[view.DeviceList](t, e.do(asViewer, http.MethodGet, Prefix+"/devices", nil), http.StatusOK); l.Total != 3 {
		t.Errorf("%d devices, want 3", l.Total)
	}
}

// TestImportLabelsAndEveryBadRow: a file in the UI's and CallManager's
// words imports; a bad one is 422 naming every bad row (line, column,
// reason) and imports nothing.
func TestImportLabelsAndEveryBadRow(t *testing.T) {
	e := newEnv(t)
	labelled := "Device Name,Security Profile,Authentication Mode,Certificate Operation,Key\n" +
		"SEP0000000000B1,Non Secure,By Null String,Install/Upgrade,RSA 2048\n" +
		"SEP0000000000B2,AUTHENTICATED,By Existing Certificate (precedence to LSC),install / upgrade,EC P-256\n"
	c := decode[view.ImportCounts](t, e.do(asAdmin, http.MethodPost, Prefix+"/import", labelled, "text/csv"), http.StatusOK)
	if c.Created != 2 {
		t.Fatalf("counts %+v, want 2 created", c)
	}
	d := decode[view.DeviceDetail](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/SEP0000000000B2", nil), http.StatusOK)
	if d.AuthMode != "lsc" || d.Key != "ec256" || d.SecurityProfile != "authenticated" || d.Operation != "install" {
		t.Errorf("imported %+v", d.Device)
	}
	bad := "Device Name,Key,Authentication Mode,Authentication String\n" +
		"SEP0000000000C1,RSA 2048,null,\n" +
		"SEP0000000000C2,RSA 2047,null,\n" +
		"SEP0000000000C3,ec256,By Telepathy,\n" +
		"SEP0000000000C4,ec256,null,12\n"
	p := problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/import", bad, "text/csv"), http.StatusUnprocessableEntity)
	if locs := p.locations(); !slices.Equal(locs, []string{"line 3", "line 4", "line 5"}) {
		t.Errorf("locations %v, want lines 3, 4 and 5", locs)
	}
	for _, want := range []string{"line 3: column Key:", "line 4: column Authentication Mode:", "line 5: column Authentication String:", "3 problems; nothing was imported"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q lacks %q", p.Detail, want)
		}
	}
	if _, err := e.devices.Get(t.Context(), "SEP0000000000C1"); err == nil {
		t.Error("a rejected file imported its good row")
	}
}

func TestReport(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"SEP000000000001", "SEP000000000002"} {
		decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": n, "description": "=cmd()", "auth_mode": "string", "auth_string": "4321"}), http.StatusCreated)
	}
	w := e.do(asAdmin, http.MethodGet, Prefix+"/report", nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") ||
		!strings.Contains(w.Header().Get("Content-Disposition"), `filename="capf-report.csv"`) {
		t.Fatalf("GET /report: %d %v", w.Code, w.Header())
	}
	var want bytes.Buffer
	ds, err := e.devices.List(t.Context(), device.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if err := report.WriteReport(&want, ds.Devices, testNow); err != nil {
		t.Fatal(err)
	}
	if w.Body.String() != want.String() {
		t.Errorf("report differs from `capf report csv`'s:\n%s\nwant\n%s", w.Body, &want)
	}
	recs, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil || len(recs) != 3 || !slices.Equal(recs[0], report.ReportColumns()) {
		t.Fatalf("report %q: %v", recs, err)
	}
	// Filtered like GET /devices.
	w = e.do(asViewer, http.MethodGet, Prefix+"/report?name=SEP000000000002", nil)
	if recs, _ := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll(); len(recs) != 2 || recs[1][0] != "SEP000000000002" {
		t.Errorf("filtered report %q", recs)
	}
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/report?sort=colour", nil), http.StatusUnprocessableEntity)
	// The report is accepted back and changes nothing.
	c := decode[view.ImportCounts](t, e.do(asAdmin, http.MethodPost, Prefix+"/import", want.String(), "text/csv"), http.StatusOK)
	if c != (view.ImportCounts{Unchanged: 2}) {
		t.Errorf("re-import of the report: %+v, want 2 unchanged", c)
	}
}

func TestCAPFCertificate(t *testing.T) {
	e := newEnv(t)
	d := decode[CAPFCertificate](t, e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate", nil), http.StatusOK)
	want, err := ca.Describe(e.cert)
	if err != nil {
		t.Fatal(err)
	}
	if d != CAPFCertificate(want) {
		t.Errorf("description %+v, want %+v", d, want)
	}
	hashName, err := ca.HashFileName(e.cert)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		format, mediaType, filename string
		pem                         bool
	}{
		{"", mediaPEM, "capf.pem", true},
		{"pem", mediaPEM, "capf.pem", true},
		{"der", mediaDER, "capf.der", false},
		{"hash", mediaPEM, hashName, true},
	}
	for _, tt := range tests {
		t.Run("format-"+tt.format, func(t *testing.T) {
			w := e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate/file?format="+tt.format, nil)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != tt.mediaType ||
				w.Header().Get("Content-Disposition") != `attachment; filename="`+tt.filename+`"` {
				t.Fatalf("%d %v", w.Code, w.Header())
			}
			der := w.Body.Bytes()
			if tt.pem {
				b, rest := pem.Decode(der)
				if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
					t.Fatalf("not one PEM certificate: %q", der)
				}
				der = b.Bytes
			}
			c, err := x509.ParseCertificate(der)
			if err != nil || !c.Equal(e.cert) {
				t.Errorf("the file is not the CAPF certificate: %v", err)
			}
		})
	}
	if !strings.HasSuffix(hashName, ".0") || len(hashName) != 10 {
		t.Errorf("hash name %q", hashName)
	}
	p := problem(t, e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate/file?format=p12", nil), http.StatusUnprocessableEntity)
	if locs := p.locations(); len(locs) != 1 || locs[0] != "query.format" {
		t.Errorf("locations %v", locs)
	}

	// Every download is in the audit stream, with who and which file; the
	// refused one is not.
	evs, err := e.store.ListAudit(t.Context(), device.AuditQuery{Target: device.CAExportTarget})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(e.cert.Raw)
	wantFiles := []string{hashName, "capf.der", "capf.pem", "capf.pem"} // newest first
	if len(evs) != len(wantFiles) {
		t.Fatalf("%d %s events, want %d: %+v", len(evs), device.AuditCAExport, len(wantFiles), evs)
	}
	for i, ev := range evs {
		if ev.Action != device.AuditCAExport || ev.Actor.Name == "" || !strings.Contains(ev.Detail, "as "+wantFiles[i]+",") ||
			!strings.Contains(ev.Detail, hex.EncodeToString(sum[:])) {
			t.Errorf("event %d: %s by %s: %q, want %s", i, ev.Action, ev.Actor, ev.Detail, wantFiles[i])
		}
	}
	// A download whose audit cannot be written is refused.
	e.store.Close()
	if w := e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate/file", nil); w.Code < 500 || strings.Contains(w.Body.String(), "BEGIN CERTIFICATE") {
		t.Errorf("download without an audit: %d %q, want a 5xx without the file", w.Code, w.Body.String())
	}
}

// A device's history and the certificates Troubleshoot fetched, as a
// phone session records them in the store.
func TestHistoryAndTroubleshootCertificates(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	decode[view.Device](t, e.do(asAdmin, http.MethodPost, Prefix+"/devices", map[string]any{"name": phone, "operation": "troubleshoot"}), http.StatusCreated)
	d, err := e.store.GetDevice(ctx, phone)
	if err != nil {
		t.Fatal(err)
	}
	claim, err := e.store.StartAttempt(ctx, device.Attempt{Device: phone, Operation: device.OpTroubleshoot, AuthMode: "null", Remote: "198.51.100.9", StartedAt: testNow, Node: "n1", Rev: d.Rev})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SaveFetchedCertificate(ctx, device.FetchedCertificate{Device: phone, Type: "MIC", FetchedAt: testNow, DER: e.cert.Raw}); err != nil {
		t.Fatal(err)
	}
	done := device.SuccessStatus(device.OpTroubleshoot)
	if err := e.store.FinishAttempt(ctx, device.Outcome{AttemptID: claim.AttemptID, Node: "n1", Device: phone, FinishedAt: testNow.Add(time.Second), Result: done, AuthMode: "null", Completed: true}); err != nil {
		t.Fatal(err)
	}

	h := decode[[]view.Attempt](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+strings.ToLower(phone)+"/history?limit=5", nil), http.StatusOK)
	if len(h) != 1 || h[0].Result != done || h[0].Remote != "198.51.100.9" || h[0].FinishedAt == nil {
		t.Errorf("history %+v", h)
	}
	detail := decode[view.DeviceDetail](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone, nil), http.StatusOK)
	if len(detail.History) != 1 || len(detail.Fetched) != 1 || detail.Status != done {
		t.Errorf("detail %+v", detail)
	}
	fs := decode[[]view.Fetched](t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/certificates", nil), http.StatusOK)
	if len(fs) != 1 || fs[0].Type != "MIC" || !bytes.Equal(fs[0].DER, e.cert.Raw) {
		t.Fatalf("certificates %+v", fs)
	}
	for _, format := range []string{"pem", "der"} {
		w := e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/certificates/0?format="+format, nil)
		if w.Code != http.StatusOK || w.Header().Get("Content-Disposition") != `attachment; filename="`+phone+`-mic-0.`+format+`"` {
			t.Fatalf("%s: %d %v", format, w.Code, w.Header())
		}
		der := w.Body.Bytes()
		if format == "pem" {
			b, _ := pem.Decode(der)
			if b == nil {
				t.Fatalf("not PEM: %q", der)
			}
			der = b.Bytes
		}
		if c, err := x509.ParseCertificate(der); err != nil || !c.Equal(e.cert) {
			t.Errorf("%s: not the fetched certificate: %v", format, err)
		}
	}
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/certificates/1", nil), http.StatusNotFound)
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/"+phone+"/certificates/-1", nil), http.StatusUnprocessableEntity)
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/SEP0000000000AA/certificates", nil), http.StatusNotFound)
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/devices/SEP0000000000AA/history", nil), http.StatusNotFound)
}
