package api

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/caset/casettest"
	"github.com/capf-server/capf/internal/device"
)

// memVault is the in-memory vault of the test, with the env whose set,
// audit stream and vault a refused request must leave as they were.
type memVault struct {
	*casettest.Vault
	e *env
}

// offlineEnv is caSetEnv with a vault.
func offlineEnv(t *testing.T) (*env, *memVault) {
	t.Helper()
	e, _ := caSetEnv(t)
	v := &memVault{Vault: casettest.NewVault(e.store, func() time.Time { return testNow }), e: e}
	adm := e.srv.o.CASet.(*caset.Admin)
	adm.Vault = v
	return e, v
}

// testCA is a CA made in the test, valid around testNow.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mkCA makes a CA certificate for pub named cn, signed by parent (self-signed
// with key when nil); mod adjusts the template.
func mkCA(t *testing.T, cn string, pub crypto.PublicKey, key crypto.Signer, parent *testCA, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Outside"}},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(30 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	if mod != nil {
		mod(tmpl)
	}
	p, signer := tmpl, key
	if parent != nil {
		p, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newRoot(t *testing.T, cn string) *testCA {
	k := newKey(t)
	return &testCA{cert: mkCA(t, cn, k.Public(), k, nil, nil), key: k}
}

func certPEM(cs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range cs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

func keyPEM(t *testing.T, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// problemOf decodes a problem answer: its detail and the location of its
// first error.
func problemOf(t *testing.T, body string) (detail, location string) {
	t.Helper()
	var p struct {
		Detail string `json:"detail"`
		Errors []struct {
			Location string `json:"location"`
		} `json:"errors"`
	}
	_ = json.Unmarshal([]byte(body), &p)
	if len(p.Errors) > 0 {
		location = p.Errors[0].Location
	}
	return p.Detail, location
}

// snapshot is what a refused request must leave as it was: the set, the
// audit stream and the vault.
func (v *memVault) snapshot(t *testing.T) string {
	t.Helper()
	recs, err := v.e.store.ListCAs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, r := range recs {
		rows = append(rows, r.ID+" "+string(r.State))
	}
	slices.Sort(rows)
	return strings.Join(rows, ";") + "|" + strings.Join(caAudit(t, v.e), ";") + "|" + v.Refs()
}

// TestCAImportAPI: POST /ca-set/import stages a certificate and key made
// elsewhere, audited under the caller; every certificate the set must
// not take is refused naming the field and its reason, and changes
// nothing; the private key is never in an answer, the log or the audit.
func TestCAImportAPI(t *testing.T) {
	e, v := offlineEnv(t)
	root := newRoot(t, "Outside Root")
	other := newRoot(t, "Other Root")
	key := newKey(t)
	good := func(mod func(*x509.Certificate)) *x509.Certificate {
		return mkCA(t, "CAPF-imported", key.Public(), nil, root, mod)
	}
	kp := keyPEM(t, key)
	keyBody := strings.Split(kp, "\n")[1] // a line of the key's base64
	before := v.snapshot(t)
	for _, tc := range []struct {
		name       string
		body       map[string]any
		role       string
		code       int
		field, msg string
	}{
		{"viewer", map[string]any{"certificate": certPEM(good(nil)), "key": kp}, asViewer, http.StatusForbidden, "", ""},
		{"expired", map[string]any{"certificate": certPEM(good(func(c *x509.Certificate) { c.NotAfter = testNow.Add(-time.Minute) })), "key": kp}, asAdmin, http.StatusUnprocessableEntity, "body.certificate", "is not valid now"},
		{"not a CA", map[string]any{"certificate": certPEM(good(func(c *x509.Certificate) { c.IsCA, c.KeyUsage = false, x509.KeyUsageDigitalSignature })), "key": kp}, asAdmin, http.StatusUnprocessableEntity, "body.certificate", "not a CA certificate"},
		{"no keyCertSign", map[string]any{"certificate": certPEM(good(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature })), "key": kp}, asAdmin, http.StatusUnprocessableEntity, "body.certificate", "keyCertSign"},
		{"another key", map[string]any{"certificate": certPEM(good(nil)), "key": keyPEM(t, newKey(t))}, asAdmin, http.StatusUnprocessableEntity, "body.key", "is for key " + caset.PublicKeyID(key.Public())},
		{"chain of another root", map[string]any{"certificate": certPEM(good(nil)), "key": kp, "chain": certPEM(other.cert)}, asAdmin, http.StatusUnprocessableEntity, "body.certificate", "did not sign"},
		{"garbage certificate", map[string]any{"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "key": kp}, asAdmin, http.StatusUnprocessableEntity, "body.certificate", "certificate"},
		{"no certificate", map[string]any{"certificate": "", "key": kp}, asAdmin, http.StatusUnprocessableEntity, "body.certificate", "no certificate given"},
		{"garbage key", map[string]any{"certificate": certPEM(good(nil)), "key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, asAdmin, http.StatusUnprocessableEntity, "body.key", "bad private key"},
		{"no key", map[string]any{"certificate": certPEM(good(nil))}, asAdmin, http.StatusUnprocessableEntity, "body", "property key"},
		{"empty key", map[string]any{"certificate": certPEM(good(nil)), "key": " "}, asAdmin, http.StatusUnprocessableEntity, "body.key", "no key given"},
		{"oversized chain", map[string]any{"certificate": certPEM(good(nil)), "key": kp, "chain": strings.Repeat("A", caset.MaxPEM+1)}, asAdmin, http.StatusUnprocessableEntity, "body.chain", ""},
		{"oversized body", map[string]any{"certificate": certPEM(good(nil)), "key": kp, "chain": strings.Repeat("A", maxCABody)}, asAdmin, http.StatusRequestEntityTooLarge, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(tc.role, http.MethodPost, Prefix+"/ca-set/import", tc.body)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body.String())
			}
			detail, loc := problemOf(t, w.Body.String())
			if loc != tc.field || !strings.Contains(detail, tc.msg) {
				t.Errorf("problem %q at %q, want %q naming %q", detail, loc, tc.field, tc.msg)
			}
			if strings.Contains(w.Body.String(), keyBody) {
				t.Errorf("the answer echoes the private key: %s", w.Body.String())
			}
			if after := v.snapshot(t); after != before {
				t.Errorf("the refused import changed %s, was %s", after, before)
			}
		})
	}

	cert := good(nil)
	id, _ := caset.KeyID(cert)
	w := e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/import", map[string]any{"certificate": certPEM(cert), "key": kp, "chain": certPEM(root.cert)})
	got := decode[CASetView](t, w, http.StatusOK)
	if stateOf(got)[id] != caset.Staged {
		t.Fatalf("after import: %+v, want %s staged", got, id)
	}
	recs, err := e.store.ListCAs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var last caset.Record
	for _, r := range recs {
		if r.ID == id {
			last = r
		}
	}
	if chain, err := x509.ParseCertificates(last.Chain); err != nil || len(chain) != 2 || !chain[1].Equal(root.cert) || last.KeyRef != "ca-"+id {
		t.Errorf("stored chain %v (%v), key ref %s: want the certificate and its root, ca-%s", len(chain), err, last.KeyRef, id)
	}
	if a := caAudit(t, e); a[len(a)-1] != "ca.import "+id+" api:ops" {
		t.Errorf("audit %q, want ca.import by api:ops last", a)
	}
	if v.Refs() != "ca-"+id {
		t.Errorf("vault %q, want the key as ca-%s", v.Refs(), id)
	}
	evs, err := e.store.ListAudit(t.Context(), device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Detail, keyBody) {
			t.Errorf("audit %s holds the private key", ev.Action)
		}
	}
	if strings.Contains(e.logs.String(), keyBody) {
		t.Error("the log holds the private key")
	}
	w = e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/import", map[string]any{"certificate": certPEM(cert), "key": kp})
	if detail, _ := problemOf(t, w.Body.String()); w.Code != http.StatusConflict || !strings.Contains(detail, "in the CA set already") {
		t.Errorf("the same CA again: %d %s", w.Code, w.Body.String())
	}
}

// TestCAOfflineAPI: the offline CA round trip through the API: csr
// returns a request for a CA with the subject asked, GET /ca-set shows the
// pending key, a second csr is refused naming it; install-signed refuses
// a certificate for another key naming both ids and changing nothing,
// then stages the outside CA's answer with its chain; DELETE
// /ca-set/pending discards another pending key. Each change is audited.
func TestCAOfflineAPI(t *testing.T) {
	e, v := offlineEnv(t)
	w := e.do(asViewer, http.MethodPost, Prefix+"/ca-set/csr", map[string]any{"key_algorithm": "ec256"})
	if w.Code != http.StatusForbidden || v.Refs() != "" {
		t.Fatalf("csr as a viewer: %d, vault %q", w.Code, v.Refs())
	}
	w = e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/csr", map[string]any{"subject": "CN=CAPF-offline,BOGUS=x"})
	if _, loc := problemOf(t, w.Body.String()); w.Code != http.StatusUnprocessableEntity || loc != "body.subject" {
		t.Fatalf("csr with a bad subject: %d %s", w.Code, w.Body.String())
	}
	out := decode[CACSRView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/csr", map[string]any{"subject": "CN=CAPF-offline,O=Example,OU=VOICE", "key_algorithm": "ec256"}), http.StatusOK)
	blk, _ := pem.Decode([]byte(out.CSR))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("csr = %q, want a PEM request", out.CSR)
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || req.CheckSignature() != nil || req.Subject.String() != "CN=CAPF-offline,OU=VOICE,O=Example" {
		t.Fatalf("request %v: subject %s", err, req.Subject)
	}
	pid := caset.PublicKeyID(req.PublicKey)
	if out.Pending.ID != pid || out.Pending.Algorithm != "ec256" {
		t.Errorf("pending %+v, want %s ec256", out.Pending, pid)
	}
	if s := decode[CASetView](t, e.do(asViewer, http.MethodGet, Prefix+"/ca-set", nil), http.StatusOK); s.Pending == nil || s.Pending.ID != pid {
		t.Errorf("GET /ca-set pending = %+v, want %s", s.Pending, pid)
	}
	w = e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/csr", nil)
	if detail, _ := problemOf(t, w.Body.String()); w.Code != http.StatusConflict || !strings.Contains(detail, pid) {
		t.Errorf("a second csr: %d %s, want 409 naming %s", w.Code, w.Body.String(), pid)
	}

	root := newRoot(t, "Offline Root")
	answer := mkCA(t, "CAPF-offline", req.PublicKey, nil, root, nil)
	stray := newKey(t)
	wrong := mkCA(t, "CAPF-offline", stray.Public(), nil, root, nil)
	before := v.snapshot(t)
	w = e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/install-signed", map[string]any{"certificate": certPEM(wrong), "chain": certPEM(root.cert)})
	if detail, loc := problemOf(t, w.Body.String()); w.Code != http.StatusUnprocessableEntity || loc != "body.certificate" ||
		!strings.Contains(detail, caset.PublicKeyID(stray.Public())) || !strings.Contains(detail, pid) {
		t.Errorf("install-signed for another key: %d %s, want 422 naming both ids", w.Code, w.Body.String())
	}
	if w := e.do(asViewer, http.MethodPost, Prefix+"/ca-set/install-signed", map[string]any{"certificate": certPEM(answer)}); w.Code != http.StatusForbidden {
		t.Errorf("install-signed as a viewer: %d", w.Code)
	}
	if after := v.snapshot(t); after != before {
		t.Errorf("refused install-signed changed %s, was %s", after, before)
	}
	id, _ := caset.KeyID(answer)
	s := decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/install-signed", map[string]any{"certificate": certPEM(answer), "chain": certPEM(root.cert)}), http.StatusOK)
	if stateOf(s)[id] != caset.Staged || s.Pending != nil {
		t.Fatalf("after install-signed: %+v, want %s staged and no pending key", s, id)
	}
	if v.Refs() != "ca-"+id {
		t.Errorf("vault %q, want the pending key as ca-%s", v.Refs(), id)
	}
	if w := e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/install-signed", map[string]any{"certificate": certPEM(answer)}); w.Code != http.StatusNotFound {
		t.Errorf("install-signed with no pending key: %d %s", w.Code, w.Body.String())
	}

	out = decode[CACSRView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/csr", map[string]any{"key_algorithm": "ec256"}), http.StatusOK)
	if w := e.do(asViewer, http.MethodDelete, Prefix+"/ca-set/pending", nil); w.Code != http.StatusForbidden {
		t.Errorf("discard as a viewer: %d", w.Code)
	}
	if s := decode[CASetView](t, e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/pending", nil), http.StatusOK); s.Pending != nil {
		t.Errorf("after discard: pending %+v", s.Pending)
	}
	if w := e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/pending", nil); w.Code != http.StatusNotFound {
		t.Errorf("discard with none: %d %s", w.Code, w.Body.String())
	}
	a := caAudit(t, e)
	want := []string{"ca.csr " + pid + " api:ops", "ca.install-signed " + id + " api:ops", "ca.csr " + out.Pending.ID + " api:ops", "ca.csr.discard " + out.Pending.ID + " api:ops"}
	if len(a) < len(want) || strings.Join(a[len(a)-len(want):], ";") != strings.Join(want, ";") {
		t.Errorf("audit %q, want it to end with %q", a, want)
	}
}

// TestCAIssuerAPI: an issuing CA through the API: create is refused while
// the active CAPF certificate has path length 0, works under one that
// allows a CA, a second is refused, remove (with force while phones hold
// its LSCs) takes it away; import puts one made elsewhere in place and
// refuses one of another PKI naming why. Viewers change nothing.
func TestCAIssuerAPI(t *testing.T) {
	e, v := offlineEnv(t)
	zk := newKey(t)
	zero := mkCA(t, "CAPF-pathlen-0", zk.Public(), zk, nil, func(c *x509.Certificate) { c.MaxPathLenZero = true })
	zid, _ := caset.KeyID(zero)
	decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/import", map[string]any{"certificate": certPEM(zero), "key": keyPEM(t, zk)}), http.StatusOK)
	decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+zid+"/activate", nil), http.StatusOK)
	before := v.snapshot(t)
	w := e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/issuer", map[string]any{"key_algorithm": "ec256"})
	if detail, _ := problemOf(t, w.Body.String()); w.Code != http.StatusUnprocessableEntity || !strings.Contains(detail, "path length constraint 0") {
		t.Errorf("issuer create under pathlen 0: %d %s", w.Code, w.Body.String())
	}
	if w := e.do(asViewer, http.MethodPost, Prefix+"/ca-set/issuer", nil); w.Code != http.StatusForbidden {
		t.Errorf("issuer create as a viewer: %d", w.Code)
	}
	if after := v.snapshot(t); after != before {
		t.Errorf("refused create changed %s, was %s", after, before)
	}

	ok := newKey(t)
	one := mkCA(t, "CAPF-pathlen-1", ok.Public(), ok, nil, func(c *x509.Certificate) { c.MaxPathLen = 1 })
	oid, _ := caset.KeyID(one)
	decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/import", map[string]any{"certificate": certPEM(one), "key": keyPEM(t, ok)}), http.StatusOK)
	decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/"+oid+"/activate", nil), http.StatusOK)
	s := decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/issuer", map[string]any{"key_algorithm": "ec256", "validity_days": 10}), http.StatusOK)
	if s.Issuing == nil || s.Issuing.ParentID != oid || !s.Issuing.Signing || s.Issuing.NotAfter.Sub(testNow) != 10*24*time.Hour {
		t.Fatalf("issuing after create: %+v, want one below %s, signing, 10 days", s.Issuing, oid)
	}
	iid := s.Issuing.ID
	if !strings.Contains(v.Refs(), caset.IssuingKeyPrefix+iid) {
		t.Errorf("vault %q, want the issuing key", v.Refs())
	}
	w = e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/issuer", nil)
	if detail, _ := problemOf(t, w.Body.String()); w.Code != http.StatusConflict || !strings.Contains(detail, "in place already") {
		t.Errorf("a second issuing CA: %d %s", w.Code, w.Body.String())
	}
	giveCALSC(t, e, "SEP00000000C001", "C001", iid, s.Issuing.Subject)
	if w := e.do(asViewer, http.MethodDelete, Prefix+"/ca-set/issuer?force=true", nil); w.Code != http.StatusForbidden {
		t.Errorf("remove as a viewer: %d", w.Code)
	}
	// Removed while a phone holds its LSC: out of place, but kept as a
	// former issuing CA (with its key) for that phone's LSC.
	s = decode[CASetView](t, e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/issuer", nil), http.StatusOK)
	if s.Issuing != nil || len(s.FormerIssuing) != 1 || s.FormerIssuing[0].ID != iid || s.FormerIssuing[0].Phones != 1 || s.FormerIssuing[0].Signing || s.FormerIssuing[0].RemovedAt.IsZero() {
		t.Fatalf("after remove: issuing %+v, former %+v; want none in place and %s former with 1 phone", s.Issuing, s.FormerIssuing, iid)
	}
	if !strings.Contains(v.Refs(), caset.IssuingKeyPrefix+iid) {
		t.Errorf("vault %q after remove, want the former issuing CA's key kept", v.Refs())
	}
	if w := e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/issuer", nil); w.Code != http.StatusNotFound {
		t.Errorf("a second remove: %d %s", w.Code, w.Body.String())
	}
	// Forgotten: refused while the phone holds its LSC, and to a viewer;
	// an unknown id is 404; forced, it goes with its key.
	if w := e.do(asViewer, http.MethodDelete, Prefix+"/ca-set/issuer/former/"+iid+"?force=true", nil); w.Code != http.StatusForbidden {
		t.Errorf("forget as a viewer: %d", w.Code)
	}
	w = e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/issuer/former/"+iid, nil)
	if detail, _ := problemOf(t, w.Body.String()); w.Code != http.StatusConflict || !strings.Contains(detail, "1 phones") {
		t.Errorf("forget while a phone holds its LSC: %d %s", w.Code, w.Body.String())
	}
	if w := e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/issuer/former/0123456789abcdef?force=true", nil); w.Code != http.StatusNotFound {
		t.Errorf("forget an unknown id: %d %s", w.Code, w.Body.String())
	}
	if s := decode[CASetView](t, e.do(asAdmin, http.MethodDelete, Prefix+"/ca-set/issuer/former/"+iid[:8]+"?force=true", nil), http.StatusOK); len(s.FormerIssuing) != 0 {
		t.Fatalf("after forget: former %+v", s.FormerIssuing)
	}
	if strings.Contains(v.Refs(), caset.IssuingKeyPrefix+iid) {
		t.Errorf("vault %q after forget, want the former issuing CA's key gone", v.Refs())
	}

	// Import: one of another PKI is refused; one signed by the CAPF
	// certificate is put in place.
	ik := newKey(t)
	foreign := mkCA(t, "Foreign Issuing", ik.Public(), nil, newRoot(t, "Foreign"), nil)
	before = v.snapshot(t)
	w = e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/issuer/import", map[string]any{"certificate": certPEM(foreign), "key": keyPEM(t, ik)})
	if detail, loc := problemOf(t, w.Body.String()); w.Code != http.StatusUnprocessableEntity || loc != "body.certificate" || !strings.Contains(detail, "not signed by a CAPF certificate of the set") {
		t.Errorf("issuer import of another PKI: %d %s", w.Code, w.Body.String())
	}
	if after := v.snapshot(t); after != before {
		t.Errorf("refused issuer import changed %s, was %s", after, before)
	}
	mine := mkCA(t, "Imported Issuing", ik.Public(), nil, &testCA{cert: one, key: ok}, func(c *x509.Certificate) { c.MaxPathLenZero = true })
	s = decode[CASetView](t, e.do(asAdmin, http.MethodPost, Prefix+"/ca-set/issuer/import", map[string]any{"certificate": certPEM(mine), "key": keyPEM(t, ik)}), http.StatusOK)
	if mid, _ := caset.KeyID(mine); s.Issuing == nil || s.Issuing.ID != mid {
		t.Fatalf("issuing after import: %+v, want %s", s.Issuing, mid)
	}
	a := caAudit(t, e)
	want := []string{"ca.issuer " + iid + " api:ops", "ca.issuer.remove " + iid + " api:ops", "ca.issuer.forget " + iid + " api:ops", "ca.issuer " + s.Issuing.ID + " api:ops"}
	if strings.Join(a[len(a)-4:], ";") != strings.Join(want, ";") {
		t.Errorf("audit %q, want it to end with %q", a, want)
	}
}
