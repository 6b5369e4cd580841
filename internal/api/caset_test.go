package api

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/caset/casettest"
	"github.com/capf-server/capf/internal/device"
)

// caSetEnv is an API over a real CA set on SQLite: the env's CAPF
// certificate adopted as its first, active CA.
func caSetEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	svc := caset.NewService(e.store, func() time.Time { return testNow })
	if _, err := svc.Adopt(t.Context(), e.cert, "capf", device.CLIActor("test")); err != nil {
		t.Fatal(err)
	}
	e.srv.o.CASet = &caset.Admin{Service: svc, Keys: casettest.Keys{Now: func() time.Time { return testNow.Add(-time.Hour) }}, DefaultAlgorithm: func() ca.KeyAlgorithm { return ca.ECP256 }}
	id, err := caset.KeyID(e.cert)
	if err != nil {
		t.Fatal(err)
	}
	return e, id
}

// caAudit returns the CA set's audit actions, oldest first.
func caAudit(t *testing.T, e *env) []string {
	t.Helper()
	evs, err := e.store.ListAudit(t.Context(), device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(evs[i].Action, "ca.") && evs[i].Action != "ca.export" {
			out = append(out, evs[i].Action+" "+evs[i].Target+" "+evs[i].Actor.String())
		}
	}
	return out
}

// giveCALSC records an LSC issued to a new phone by the CA id (subject).
func giveCALSC(t *testing.T, e *env, name, serial, id, subject string) {
	t.Helper()
	ctx := t.Context()
	d, err := e.devices.Add(ctx, device.CLIActor("test"), device.Device{Name: name, Operation: device.OpInstall}, false)
	if err != nil {
		t.Fatal(err)
	}
	claim, err := e.store.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, Node: "n1", Rev: d.Rev, StartedAt: testNow})
	if err != nil {
		t.Fatal(err)
	}
	year := testNow.Add(365 * 24 * time.Hour)
	if err := e.store.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name, AttemptID: claim.AttemptID, Issuer: subject,
		IssuerKeyID: id, IssuedAt: testNow, NotBefore: testNow, NotAfter: year, DER: []byte(serial)}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.FinishAttempt(ctx, device.Outcome{AttemptID: claim.AttemptID, Node: "n1", Device: name, FinishedAt: testNow,
		Result: device.SuccessStatus(device.OpInstall), Completed: true,
		SetLSC: &device.Certificate{Serial: serial, Issuer: subject, NotBefore: testNow, NotAfter: year, DER: []byte(serial)}}); err != nil {
		t.Fatal(err)
	}
}

// other returns the row of v that is not the CA id.
func other(t *testing.T, v CASetView, id string) caset.Row {
	t.Helper()
	for _, r := range v.CAs {
		if r.ID != id {
			return r
		}
	}
	t.Fatalf("no CA besides %s in %+v", id, v)
	return caset.Row{}
}

func stateOf(v CASetView) map[string]caset.State {
	m := map[string]caset.State{}
	for _, r := range v.CAs {
		m[r.ID] = r.State
	}
	return m
}

// TestCASetLifecycle walks regenerate, activate and retire through the
// API over a real set: each changes the state, writes its audit row under
// the caller's name, and the certificate routes follow the live set.
func TestCASetLifecycle(t *testing.T) {
	e, first := caSetEnv(t)
	v := decode[CASetView](t, e.do(asViewer, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK)
	if len(v.CAs) != 1 || v.CAs[0].ID != first || v.CAs[0].State != caset.Active || v.CAs[0].Subject != e.cert.Subject.String() || v.CAs[0].Phones != 0 {
		t.Fatalf("ca-set = %+v, want the adopted CA active", v)
	}

	v = decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set", map[string]any{"key_algorithm": "ec256"}), http.StatusOK)
	staged := other(t, v, first)
	if len(v.CAs) != 2 || staged.State != caset.Staged {
		t.Fatalf("after regenerate: %+v, want a second CA, staged", v)
	}
	if got := caAudit(t, e); len(got) != 2 || got[1] != "ca.regenerate "+staged.ID+" api:ops" {
		t.Errorf("audit = %q, want ca.regenerate by api:ops", got)
	}
	// Each CA is downloadable; the default is the active one.
	w := e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate/file?format=der&id="+staged.ID, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("download the staged CA: %d %s", w.Code, w.Body)
	}
	c, err := x509.ParseCertificate(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := caset.KeyID(c); id != staged.ID || c.Subject.String() != staged.Subject {
		t.Fatalf("downloaded CA %s (%s), want the staged %s", id, c.Subject, staged.ID)
	}
	if w := e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate/file?format=der", nil); !bytes.Equal(w.Body.Bytes(), e.cert.Raw) {
		t.Errorf("the default download is not the active CA: %d", w.Code)
	}

	v = decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+staged.ID+"/activate", nil), http.StatusOK)
	if st := stateOf(v); st[staged.ID] != caset.Active || st[first] != caset.Retiring {
		t.Fatalf("after activate: %v, want %s active and %s retiring", st, staged.ID, first)
	}
	if got := caAudit(t, e); len(got) != 3 || got[2] != "ca.activate "+staged.ID+" api:ops" {
		t.Errorf("audit = %q, want ca.activate", got)
	}
	d := decode[CAPFCertificate](t, e.do(asViewer, http.MethodGet, Prefix+"/capf-certificate", nil), http.StatusOK)
	if !strings.EqualFold(d.SHA256, staged.SHA256) {
		t.Errorf("GET /capf-certificate SHA-256 %s, want the newly active %s", d.SHA256, staged.SHA256)
	}

	// A phone holds a valid LSC from the retiring CA: retire is refused,
	// naming the count, and changes nothing; force retires it.
	giveCALSC(t, e, "SEP00000000A001", "A001", first, e.cert.Subject.String())
	p := problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+first+"/retire", map[string]any{}), http.StatusConflict)
	if !strings.Contains(p.Detail, "1 phones hold a valid LSC from CA "+first) {
		t.Errorf("refusal %q does not name the phones", p.Detail)
	}
	if v := decode[CASetView](t, e.do(asViewer, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK); stateOf(v)[first] != caset.Retiring || other(t, v, staged.ID).Phones != 1 {
		t.Errorf("after the refusal: %+v, want it retiring with 1 phone", v)
	}
	if got := caAudit(t, e); len(got) != 3 {
		t.Errorf("a refused retire wrote audit: %q", got)
	}
	v = decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+first+"/retire", map[string]any{"force": true}), http.StatusOK)
	if stateOf(v)[first] != caset.Retired {
		t.Errorf("after retire --force: %v", stateOf(v))
	}
	if got := caAudit(t, e); len(got) != 4 || got[3] != "ca.retire "+first+" api:ops" {
		t.Errorf("audit = %q, want ca.retire", got)
	}
}

// A bad action is refused with a specific problem and changes nothing;
// a viewer may change nothing.
func TestCASetRefusals(t *testing.T) {
	e, first := caSetEnv(t)
	v := decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set", nil), http.StatusOK) // the body is optional
	second := other(t, v, first).ID
	decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+second+"/activate", nil), http.StatusOK)
	decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+first+"/retire", nil), http.StatusOK)
	before := decode[CASetView](t, e.do(asAdmin, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK)
	audit := caAudit(t, e)

	for _, tt := range []struct {
		name, as, method, path string
		body                   any
		status                 int
		detail                 string
	}{
		{"activate-retired", asAdmin, http.MethodPost, "/ca-set/" + first + "/activate", nil, http.StatusConflict, "CA " + first + " is retired, not staged"},
		{"activate-active", asAdmin, http.MethodPost, "/ca-set/" + second + "/activate", nil, http.StatusConflict, "is active, not staged"},
		{"retire-active", asAdmin, http.MethodPost, "/ca-set/" + second + "/retire", map[string]any{}, http.StatusConflict, "is the active CAPF certificate"},
		{"retire-retired", asAdmin, http.MethodPost, "/ca-set/" + first + "/retire", map[string]any{"force": true}, http.StatusConflict, "retired already"},
		{"unknown-id", asAdmin, http.MethodPost, "/ca-set/deadbeefdeadbeef/retire", map[string]any{}, http.StatusNotFound, "no CAPF certificate with id or serial deadbeefdeadbeef"},
		{"not-hex", asAdmin, http.MethodPost, "/ca-set/zz/activate", nil, http.StatusUnprocessableEntity, "neither a CA id nor a serial"},
		{"bad-algorithm", asAdmin, http.MethodPost, "/ca-set", map[string]any{"key_algorithm": "rsa1024"}, http.StatusUnprocessableEntity, "key_algorithm"},
		{"unknown-download", asViewer, http.MethodGet, "/capf-certificate/file?id=deadbeefdeadbeef", nil, http.StatusNotFound, "no CAPF certificate"},
		{"viewer-regenerate", asViewer, http.MethodPost, "/ca-set", map[string]any{}, http.StatusForbidden, ""},
		{"viewer-activate", asViewer, http.MethodPost, "/ca-set/" + first + "/activate", nil, http.StatusForbidden, ""},
		{"viewer-retire", asViewer, http.MethodPost, "/ca-set/" + second + "/retire", map[string]any{"force": true}, http.StatusForbidden, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := problem(t, e.do(tt.as, tt.method, Prefix+tt.path, tt.body), tt.status)
			if !strings.Contains(p.Detail+" "+strings.Join(p.locations(), " "), tt.detail) {
				t.Errorf("detail %q (%v), want %q", p.Detail, p.locations(), tt.detail)
			}
			after := decode[CASetView](t, e.do(asAdmin, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK)
			if len(after.CAs) != len(before.CAs) || stateOf(after)[first] != caset.Retired || stateOf(after)[second] != caset.Active {
				t.Errorf("the set changed: %v", stateOf(after))
			}
			if got := caAudit(t, e); len(got) != len(audit) {
				t.Errorf("audit grew: %q", got)
			}
		})
	}
}
