package webui_test

import (
	"bytes"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/caset/casettest"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// caSetEnv is a UI over a real CA set on SQLite: the env's CAPF
// certificate adopted as its first, active CA; the served trust file
// lists that one only.
func caSetEnv(t *testing.T) (*env, *caset.Admin, string) {
	t.Helper()
	adm := &caset.Admin{Keys: casettest.Keys{Now: func() time.Time { return testNow.Add(-time.Hour) }}, DefaultAlgorithm: func() ca.KeyAlgorithm { return ca.ECP256 }}
	e := newEnv(t, func(o *webui.Options) { o.CASet = adm })
	adm.Service = caset.NewService(e.store, func() time.Time { return testNow })
	adm.Listed = func() ([][]byte, string, error) { return [][]byte{e.cert.Raw}, "/data/trust/ITLFile.tlv", nil }
	if _, err := adm.Service.Adopt(t.Context(), e.cert, "capf", device.CLIActor("test")); err != nil {
		t.Fatal(err)
	}
	id, err := caset.KeyID(e.cert)
	if err != nil {
		t.Fatal(err)
	}
	return e, adm, id
}

// caStates returns the state of every CA, and the id of one that is not
// skip.
func caStates(t *testing.T, adm *caset.Admin, skip string) (map[string]caset.State, string) {
	t.Helper()
	ov, err := adm.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m, other := map[string]caset.State{}, ""
	for _, r := range ov.CAs {
		m[r.ID] = r.State
		if r.ID != skip {
			other = r.ID
		}
	}
	return m, other
}

// caActions returns the CA set's audit lines, oldest first.
func caActions(t *testing.T, e *env) []string {
	t.Helper()
	evs, err := e.devices.Audit(t.Context(), device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if a := evs[i].Action; a == caset.AuditAdopt || a == caset.AuditRegenerate || a == caset.AuditActivate || a == caset.AuditRetire {
			out = append(out, a+" "+evs[i].Target+" "+evs[i].Actor.String())
		}
	}
	return out
}

// giveCALSC records a valid LSC issued to a new phone by the CA id.
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

// TestCASetPage: the page shows the live set — every CA with its state,
// phones and trust-file listing — and the active CA in detail; a viewer
// sees it without the forms, an administrator with them.
func TestCASetPage(t *testing.T) {
	e, adm, first := caSetEnv(t)
	giveCALSC(t, e, "SEP00000000A001", "A001", first, e.cert.Subject.String())
	if _, _, err := adm.Regenerate(t.Context(), "ec256", device.CLIActor("test")); err != nil {
		t.Fatal(err)
	}
	_, second := caStates(t, adm, first)

	w := e.get("/security/certificate", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="ca-`+first+`"`, `id="ca-`+second+`"`, `<td class="ca-state">active</td>`, `<td class="ca-state">staged</td>`,
		`<td class="ca-phones">1</td>`, `<td class="ca-trust">listed</td>`, `<td class="ca-trust">not listed</td>`,
		"/data/trust/ITLFile.tlv", "/security/certificate/file?format=pem&amp;id="+second, "CAPF-test")
	wantNoBody(t, w, `id="ca-regenerate-form"`, `id="activate-`, `id="retire-`)

	w = e.get("/security/certificate", "admin")
	wantBody(t, w, `id="ca-regenerate-form"`, `<option value="ec384">ec384</option>`, `id="activate-`+second+`"`, `id="retire-`+second+`"`)
	wantNoBody(t, w, `id="activate-`+first+`"`, `id="retire-`+first+`"`)

	// The download of one CA, by id; the default is the active one.
	w = e.get("/security/certificate/file?format=der&id="+second, "viewer")
	wantStatus(t, w, http.StatusOK)
	if c, err := x509.ParseCertificate(w.Body.Bytes()); err != nil || mustID(t, c) != second {
		t.Errorf("downloaded %v (%v), want CA %s", c, err, second)
	}
	if w := e.get("/security/certificate/file?format=der", "viewer"); !bytes.Equal(w.Body.Bytes(), e.cert.Raw) {
		t.Error("the default download is not the active CA")
	}
}

func mustID(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	id, err := caset.KeyID(c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCASetActions: regenerate, activate and retire from the page each
// change the set and write their audit line under the administrator's
// name; retire asks for confirmation first, names the phones holding the
// CA's LSCs, and is refused without force while there are some.
func TestCASetActions(t *testing.T) {
	e, adm, first := caSetEnv(t)
	giveCALSC(t, e, "SEP00000000A001", "A001", first, e.cert.Subject.String())

	wantRedirect(t, e.post("/security/certificate/regenerate", "admin", url.Values{"key_algorithm": {"ec384"}}), "/security/certificate")
	st, second := caStates(t, adm, first)
	if len(st) != 2 || st[second] != caset.Staged {
		t.Fatalf("after regenerate: %v", st)
	}
	if c, _ := adm.Certificate(t.Context(), second); c == nil || c.PublicKeyAlgorithm != x509.ECDSA || c.PublicKey == nil {
		t.Errorf("the regenerated CA %v is not the ECDSA one asked for", c)
	}

	wantRedirect(t, e.post("/security/certificate/activate", "admin", url.Values{"id": {second}}), "/security/certificate")
	if st, _ = caStates(t, adm, first); st[second] != caset.Active || st[first] != caset.Retiring {
		t.Fatalf("after activate: %v", st)
	}
	w := e.get("/security/certificate", "viewer")
	wantBody(t, w, `id="cert-subject">`+mustCert(t, adm, second).Subject.String())

	// The first post only asks.
	w = e.post("/security/certificate/retire", "admin", url.Values{"id": {first}})
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="confirm-ca-retire-form"`, "1 phones hold a valid LSC from it", "Without force, retiring it is refused")
	if st, _ = caStates(t, adm, first); st[first] != caset.Retiring {
		t.Fatalf("the confirmation page changed the set: %v", st)
	}
	// Confirmed without force: refused, naming the count.
	w = e.post("/security/certificate/retire", "admin", url.Values{"id": {first}, "confirm": {"yes"}})
	wantStatus(t, w, http.StatusConflict)
	wantBody(t, w, "1 phones hold a valid LSC from CA "+first)
	if st, _ = caStates(t, adm, first); st[first] != caset.Retiring {
		t.Fatalf("a refused retire changed the set: %v", st)
	}
	w = e.post("/security/certificate/retire", "admin", url.Values{"id": {first}, "force": {"yes"}})
	wantBody(t, w, "Force is checked", `name="force" value="yes"`)
	wantRedirect(t, e.post("/security/certificate/retire", "admin", url.Values{"id": {first}, "force": {"yes"}, "confirm": {"yes"}}), "/security/certificate")
	if st, _ = caStates(t, adm, first); st[first] != caset.Retired {
		t.Fatalf("after retire with force: %v", st)
	}
	want := []string{"ca.adopt " + first + " cli:test", "ca.regenerate " + second + " web:alice", "ca.activate " + second + " web:alice", "ca.retire " + first + " web:alice"}
	if got := caActions(t, e); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func mustCert(t *testing.T, adm *caset.Admin, id string) *x509.Certificate {
	t.Helper()
	c, err := adm.Certificate(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A bad action, a viewer's and a forged one are refused with a specific
// message and change nothing.
func TestCASetRefusedActions(t *testing.T) {
	e, adm, first := caSetEnv(t)
	ctx, actor := t.Context(), device.CLIActor("test")
	if _, _, err := adm.Regenerate(ctx, "", actor); err != nil {
		t.Fatal(err)
	}
	_, second := caStates(t, adm, first)
	if _, _, err := adm.Activate(ctx, second, actor); err != nil {
		t.Fatal(err)
	}
	if _, _, err := adm.Retire(ctx, first, false, actor); err != nil {
		t.Fatal(err)
	}
	before, _ := caStates(t, adm, "")
	audit := caActions(t, e)
	for _, tt := range []struct {
		name, as, path string
		form           url.Values
		status         int
		detail         string
	}{
		{"activate-retired", "admin", "/security/certificate/activate", url.Values{"id": {first}}, http.StatusConflict, "CA " + first + " is retired, not staged"},
		{"retire-active", "admin", "/security/certificate/retire", url.Values{"id": {second}, "force": {"yes"}, "confirm": {"yes"}}, http.StatusConflict, "is the active CAPF certificate"},
		{"unknown-id", "admin", "/security/certificate/retire", url.Values{"id": {"deadbeefdeadbeef"}, "confirm": {"yes"}}, http.StatusNotFound, "no CAPF certificate with id or serial deadbeefdeadbeef"},
		{"unknown-id-confirm", "admin", "/security/certificate/retire", url.Values{"id": {"deadbeefdeadbeef"}}, http.StatusNotFound, "no CAPF certificate with id deadbeefdeadbeef"},
		{"too-long-id", "admin", "/security/certificate/activate", url.Values{"id": {strings.Repeat("a", 200)}}, http.StatusUnprocessableEntity, "longer than 128"},
		{"bad-algorithm", "admin", "/security/certificate/regenerate", url.Values{"key_algorithm": {"rsa1024"}}, http.StatusUnprocessableEntity, `unknown CAPF key algorithm &#34;rsa1024&#34;`},
		{"viewer-regenerate", "viewer", "/security/certificate/regenerate", url.Values{}, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-activate", "viewer", "/security/certificate/activate", url.Values{"id": {first}}, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-retire", "viewer", "/security/certificate/retire", url.Values{"id": {second}, "confirm": {"yes"}, "force": {"yes"}}, http.StatusForbidden, "victor has the viewer role"},
		{"csrf-regenerate", "admin", "/security/certificate/regenerate", url.Values{webauth.CSRFField: {"wrong"}}, http.StatusForbidden, "anti-forgery token"},
		{"csrf-retire", "admin", "/security/certificate/retire", url.Values{"id": {second}, "force": {"yes"}, "confirm": {"yes"}, webauth.CSRFField: {"wrong"}}, http.StatusForbidden, "anti-forgery token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.post(tt.path, tt.as, tt.form)
			wantStatus(t, w, tt.status)
			wantBody(t, w, tt.detail)
			if after, _ := caStates(t, adm, ""); len(after) != len(before) || after[first] != before[first] || after[second] != before[second] {
				t.Errorf("the set changed: %v, was %v", after, before)
			}
			if got := caActions(t, e); len(got) != len(audit) {
				t.Errorf("audit grew: %q", got)
			}
		})
	}
}
