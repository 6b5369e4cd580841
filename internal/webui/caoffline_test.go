package webui_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"html"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/caset/casettest"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webauth"
)

// offlineEnv is caSetEnv with a vault.
func offlineEnv(t *testing.T) (*env, *caset.Admin, *casettest.Vault) {
	t.Helper()
	e, adm, _ := caSetEnv(t)
	v := casettest.NewVault(e.store, func() time.Time { return testNow })
	adm.Vault = v
	return e, adm, v
}

// auditOf returns every audit line of the CA set's offline actions,
// oldest first.
func auditOf(t *testing.T, e *env) []string {
	t.Helper()
	evs, err := e.devices.Audit(t.Context(), device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		if a := evs[i].Action; strings.HasPrefix(a, "ca.") && a != caset.AuditAdopt {
			out = append(out, a+" "+evs[i].Target+" "+evs[i].Actor.String())
		}
	}
	return out
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// outsideCert makes a CA certificate for pub valid around testNow,
// signed by parent/parentKey (self-signed when parent is nil).
func outsideCert(t *testing.T, cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Outside"}},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(30 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	if mod != nil {
		mod(tmpl)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pemCert(cs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range cs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

func pemKey(t *testing.T, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// TestCAOfflinePage: an administrator makes a certificate signing request
// from the page (shown to copy and downloadable), sees the pending key
// with Discard, installs the outside CA's answer (one for another key is
// refused naming both ids and changes nothing), imports a certificate and
// key, and creates, removes and imports an issuing CA; each is audited
// under the administrator's name. A viewer sees the pending key but none
// of the forms, and cannot download the request.
func TestCAOfflinePage(t *testing.T) {
	e, adm, v := offlineEnv(t)
	w := e.get("/security/certificate", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="ca-csr-form"`, `id="ca-import-form"`, `id="ca-issuer-form"`, `id="ca-issuer-import-form"`, `id="pending-none"`)
	w = e.get("/security/certificate", "viewer")
	wantNoBody(t, w, `id="ca-csr-form"`, `id="ca-import-form"`, `id="ca-issuer-form"`, `id="ca-issuer-import-form"`)

	w = e.post("/security/certificate/csr", "admin", url.Values{"subject": {"CN=CAPF-offline,O=Example"}, "key_algorithm": {"ec256"}})
	wantStatus(t, w, http.StatusOK)
	body := html.UnescapeString(w.Body.String())
	start := strings.Index(body, "-----BEGIN CERTIFICATE REQUEST-----")
	end := strings.Index(body, "-----END CERTIFICATE REQUEST-----")
	if start < 0 || end < start {
		t.Fatalf("the page shows no request:\n%s", body)
	}
	blk, _ := pem.Decode([]byte(body[start : end+len("-----END CERTIFICATE REQUEST-----")]))
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || req.CheckSignature() != nil || req.Subject.CommonName != "CAPF-offline" {
		t.Fatalf("the request shown: %v", err)
	}
	pid := caset.PublicKeyID(req.PublicKey)
	wantBody(t, w, `id="pending-id">`+pid, `href="/security/certificate/pending.csr"`)

	w = e.get("/security/certificate/pending.csr", "admin")
	wantStatus(t, w, http.StatusOK)
	if cd := w.Header().Get("Content-Disposition"); cd != `attachment; filename="capf.csr"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if b, _ := pem.Decode(w.Body.Bytes()); b == nil {
		t.Error("the download is no PEM request")
	} else if again, err := x509.ParseCertificateRequest(b.Bytes); err != nil || caset.PublicKeyID(again.PublicKey) != pid || again.Subject.String() != req.Subject.String() {
		t.Errorf("the downloaded request is not for the pending key: %v", err)
	}
	wantStatus(t, e.get("/security/certificate/pending.csr", "viewer"), http.StatusForbidden)
	w = e.get("/security/certificate", "viewer")
	wantBody(t, w, `id="pending-id" class="mono">`+pid)
	wantNoBody(t, w, `id="ca-install-form"`, `id="ca-discard-form"`, `id="download-csr"`)
	wantBody(t, e.get("/security/certificate", "admin"), `id="ca-install-form"`, `id="ca-discard-form"`, `id="download-csr"`)

	rk := ecKey(t)
	root := outsideCert(t, "Outside Root", rk.Public(), nil, rk, nil)
	stray := ecKey(t)
	w = e.post("/security/certificate/install-signed", "admin", url.Values{"certificate": {pemCert(outsideCert(t, "CAPF-offline", stray.Public(), root, rk, nil))}})
	wantStatus(t, w, http.StatusUnprocessableEntity)
	wantBody(t, w, caset.PublicKeyID(stray.Public()), pid)
	if p, _ := v.Pending(t.Context()); p == nil || p.ID != pid {
		t.Fatalf("the refused install changed the pending key: %+v", p)
	}
	answer := outsideCert(t, "CAPF-offline", req.PublicKey, root, rk, nil)
	wantRedirect(t, e.post("/security/certificate/install-signed", "admin", url.Values{"certificate": {pemCert(answer)}, "chain": {pemCert(root)}}), "/security/certificate")
	id := mustID(t, answer)
	if st, _ := caStates(t, adm, ""); st[id] != caset.Staged {
		t.Fatalf("after install-signed: %v", st)
	}
	wantBody(t, e.get("/security/certificate", "admin"), `id="pending-none"`, `id="ca-`+id+`"`)

	// Another request, discarded.
	wantStatus(t, e.post("/security/certificate/csr", "admin", url.Values{"key_algorithm": {"ec256"}}), http.StatusOK)
	p2, _ := v.Pending(t.Context())
	wantRedirect(t, e.post("/security/certificate/pending/discard", "admin", nil), "/security/certificate")
	if p, _ := v.Pending(t.Context()); p != nil {
		t.Fatalf("after discard: %+v", p)
	}

	// Import a CAPF certificate that allows a CA below it, activate it,
	// create an issuing CA, remove it, import one.
	ik := ecKey(t)
	one := outsideCert(t, "CAPF-pathlen-1", ik.Public(), nil, ik, func(c *x509.Certificate) { c.MaxPathLen = 1 })
	oid := mustID(t, one)
	wantRedirect(t, e.post("/security/certificate/import", "admin", url.Values{"certificate": {pemCert(one)}, "key": {pemKey(t, ik)}}), "/security/certificate")
	wantRedirect(t, e.post("/security/certificate/activate", "admin", url.Values{"id": {oid}}), "/security/certificate")
	wantRedirect(t, e.post("/security/certificate/issuer", "admin", url.Values{"key_algorithm": {"ec256"}, "validity_days": {"30"}}), "/security/certificate")
	ov, err := adm.Status(t.Context())
	if err != nil || ov.Issuing == nil || ov.Issuing.ParentID != oid {
		t.Fatalf("after issuer create: %v %+v", err, ov.Issuing)
	}
	created := ov.Issuing.ID
	wantBody(t, e.get("/security/certificate", "admin"), `id="ca-issuer-remove-form"`)
	wantRedirect(t, e.post("/security/certificate/issuer/remove", "admin", nil), "/security/certificate")
	wantBody(t, e.get("/security/certificate", "admin"), `id="forget-`+created+`"`) // kept, still trusted for its LSCs, and forgettable
	wantRedirect(t, e.post("/security/certificate/issuer/forget", "admin", url.Values{"id": {created}}), "/security/certificate")
	if ov, _ := adm.Status(t.Context()); len(ov.FormerIssuing) != 0 {
		t.Fatalf("after forget: %+v", ov.FormerIssuing)
	}
	xk := ecKey(t)
	mine := outsideCert(t, "Imported Issuing", xk.Public(), one, ik, func(c *x509.Certificate) { c.MaxPathLenZero = true })
	wantRedirect(t, e.post("/security/certificate/issuer/import", "admin", url.Values{"certificate": {pemCert(mine)}, "key": {pemKey(t, xk)}}), "/security/certificate")
	if ov, _ := adm.Status(t.Context()); ov.Issuing == nil || ov.Issuing.ID != mustID(t, mine) {
		t.Fatalf("after issuer import: %+v", ov.Issuing)
	}
	want := []string{"ca.csr " + pid + " web:alice", "ca.install-signed " + id + " web:alice", "ca.csr " + p2.ID + " web:alice", "ca.csr.discard " + p2.ID + " web:alice",
		"ca.import " + oid + " web:alice", "ca.activate " + oid + " web:alice", "ca.issuer " + created + " web:alice", "ca.issuer.remove " + created + " web:alice", "ca.issuer.forget " + created + " web:alice", "ca.issuer " + mustID(t, mine) + " web:alice"}
	if got := auditOf(t, e); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCAOfflineRefused: a viewer's and a forged post to every new form
// are refused, bad input names its reason; none changes the set, the
// audit stream or the keys, and a refused key is never shown back.
func TestCAOfflineRefused(t *testing.T) {
	e, adm, v := offlineEnv(t)
	k := ecKey(t)
	good := outsideCert(t, "CAPF-imported", k.Public(), nil, k, nil)
	expired := outsideCert(t, "CAPF-expired", k.Public(), nil, k, func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Minute) })
	keyText := pemKey(t, k)
	keyLine := strings.Split(keyText, "\n")[1]
	importForm := url.Values{"certificate": {pemCert(good)}, "key": {keyText}}
	before, _ := caStates(t, adm, "")
	audit := auditOf(t, e)
	for _, tt := range []struct {
		name, as, path string
		form           url.Values
		status         int
		detail         string
	}{
		{"viewer-import", "viewer", "/security/certificate/import", importForm, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-csr", "viewer", "/security/certificate/csr", url.Values{}, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-install", "viewer", "/security/certificate/install-signed", url.Values{"certificate": {pemCert(good)}}, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-discard", "viewer", "/security/certificate/pending/discard", url.Values{}, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-issuer", "viewer", "/security/certificate/issuer", url.Values{}, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-issuer-import", "viewer", "/security/certificate/issuer/import", importForm, http.StatusForbidden, "victor has the viewer role"},
		{"viewer-issuer-remove", "viewer", "/security/certificate/issuer/remove", url.Values{"force": {"yes"}}, http.StatusForbidden, "victor has the viewer role"},
		{"csrf-import", "admin", "/security/certificate/import", url.Values{"certificate": {pemCert(good)}, "key": {keyText}, webauth.CSRFField: {"wrong"}}, http.StatusForbidden, "anti-forgery token"},
		{"csrf-csr", "admin", "/security/certificate/csr", url.Values{webauth.CSRFField: {"wrong"}}, http.StatusForbidden, "anti-forgery token"},
		{"expired", "admin", "/security/certificate/import", url.Values{"certificate": {pemCert(expired)}, "key": {keyText}}, http.StatusUnprocessableEntity, "is not valid now"},
		{"another-key", "admin", "/security/certificate/import", url.Values{"certificate": {pemCert(good)}, "key": {pemKey(t, ecKey(t))}}, http.StatusUnprocessableEntity, "is for key " + caset.PublicKeyID(k.Public())},
		{"garbage-key", "admin", "/security/certificate/import", url.Values{"certificate": {pemCert(good)}, "key": {"-----BEGIN PRIVATE KEY-----\n" + keyLine + "\n-----END PRIVATE KEY-----\n"}}, http.StatusUnprocessableEntity, "bad private key"},
		{"no-certificate", "admin", "/security/certificate/import", url.Values{"key": {keyText}}, http.StatusUnprocessableEntity, "no certificate given"},
		{"oversized-chain", "admin", "/security/certificate/import", url.Values{"certificate": {pemCert(good)}, "key": {keyText}, "chain": {strings.Repeat("A", caset.MaxPEM+1)}}, http.StatusUnprocessableEntity, "is over 64 KiB"},
		{"bad-subject", "admin", "/security/certificate/csr", url.Values{"subject": {"CN=x,BOGUS=y"}}, http.StatusUnprocessableEntity, "unknown subject attribute"},
		{"no-pending", "admin", "/security/certificate/install-signed", url.Values{"certificate": {pemCert(good)}}, http.StatusNotFound, "no pending key"},
		{"discard-none", "admin", "/security/certificate/pending/discard", url.Values{}, http.StatusNotFound, "no pending key"},
		{"bad-validity", "admin", "/security/certificate/issuer", url.Values{"validity_days": {"-3"}}, http.StatusUnprocessableEntity, "number of days"},
		{"issuer-not-signed", "admin", "/security/certificate/issuer/import", importForm, http.StatusUnprocessableEntity, "not signed by a CAPF certificate of the set"},
		{"remove-none", "admin", "/security/certificate/issuer/remove", url.Values{}, http.StatusNotFound, "no issuing CA is in place"},
		{"forget-none", "admin", "/security/certificate/issuer/forget", url.Values{"id": {"0123456789abcdef"}}, http.StatusNotFound, "no former issuing CA"},
		{"forget-no-id", "admin", "/security/certificate/issuer/forget", url.Values{}, http.StatusUnprocessableEntity, "give its id"},
		{"viewer-issuer-forget", "viewer", "/security/certificate/issuer/forget", url.Values{"id": {"0123456789abcdef"}}, http.StatusForbidden, "victor has the viewer role"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{}
			for k, vs := range tt.form { // e.post adds the principal's token
				form[k] = vs
			}
			w := e.post(tt.path, tt.as, form)
			wantStatus(t, w, tt.status)
			wantBody(t, w, tt.detail)
			if strings.Contains(w.Body.String(), keyLine) {
				t.Error("the answer shows the private key")
			}
			if after, _ := caStates(t, adm, ""); len(after) != len(before) {
				t.Errorf("the set changed: %v, was %v", after, before)
			}
			if got := auditOf(t, e); len(got) != len(audit) {
				t.Errorf("audit grew: %q", got)
			}
			if refs := v.Refs(); refs != "" { // no key, none pending
				t.Errorf("keys changed: %q", refs)
			}
		})
	}
}
