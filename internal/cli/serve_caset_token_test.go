//go:build cgo

package cli

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/webauth"
)

// TestAdminListenerTokenCA drives the admin listener as serve composes it,
// on a node given a PKCS #11 module and PIN file (SoftHSM2): the API
// stages a new CAPF certificate whose key is a key pair in the token (the
// set stores the reference, DATA/ca holds nothing), the web UI offers the
// field and creates an issuing CA in the token. A key file of the host, a
// key the token lacks, a key with a key algorithm, and a node without a
// module are refused, changing nothing.
func TestAdminListenerTokenCA(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	ctx := t.Context()
	st, err := sqlite.Open(ctx, datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, p11: keyref.Options{Module: h.Module, PINFile: h.PINFile}}
	srv, login := adminListener(t, g, st)
	alice := login("alice", account.RoleAdmin)
	post := func(srv *httptest.Server, path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", alice.CSRF)
		req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
		return send(t, req)
	}
	records := func() []caset.Record {
		t.Helper()
		recs, err := st.ListCAs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	caRef := h.GenerateRSA(t, "api-capf", 2048)
	for _, bad := range []struct {
		name  string
		body  map[string]string
		code  int
		want  string
		field bool // the problem names body.key
	}{
		{"key-file", map[string]string{"key": filepath.Join(data, "ca", "capf.key")}, http.StatusUnprocessableEntity, "want a key pair in the node's PKCS #11 token", true},
		{"missing-object", map[string]string{"key": h.Ref("nope")}, http.StatusNotFound, "holds no key pair", false},
		{"with-algorithm", map[string]string{"key": caRef, "key_algorithm": "ec256"}, http.StatusUnprocessableEntity, "give one of them", true},
		{"pin-in-reference", map[string]string{"key": caRef + ";pin-value=1234"}, http.StatusUnprocessableEntity, "pin-value is refused", true},
	} {
		t.Run(bad.name, func(t *testing.T) {
			if code, out := post(srv, "/ca-set", bad.body); code != bad.code || !strings.Contains(out, bad.want) || bad.field != strings.Contains(out, "body.key") {
				t.Fatalf("regenerate with %v: %d %s; want %d saying %q (about body.key: %v)", bad.body, code, out, bad.code, bad.want, bad.field)
			}
		})
	}
	if n := len(records()); n != 1 {
		t.Fatalf("refused requests changed the set: %d CAs", n)
	}

	// The API stages a CA whose key stays in the token.
	if code, out := post(srv, "/ca-set", map[string]string{"key": caRef}); code != http.StatusOK {
		t.Fatalf("regenerate in the token: %d %s", code, out)
	}
	var staged caset.Record
	for _, r := range records() {
		if r.State == caset.Staged {
			staged = r
		}
	}
	if staged.KeyRef != caRef {
		t.Fatalf("staged CA %s: key %q, want the reference %q", staged.ID, staged.KeyRef, caRef)
	}
	if _, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), staged.ID)); !os.IsNotExist(err) {
		t.Errorf("DATA/ca/%s exists (%v): a token CA has no key files", staged.ID, err)
	}
	cert, err := staged.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if k, err := keyref.LoadString(ctx, caRef, g.p11); err != nil {
		t.Fatal(err)
	} else {
		if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
			t.Errorf("the staged certificate is not for the token's key")
		}
		_ = k.Close()
	}
	if out, _, _ := run(t, data, "audit", "--limit", "3"); !strings.Contains(out, "ca.regenerate") || !strings.Contains(out, "alice") {
		t.Errorf("the regenerate is not audited as alice:\n%s", out)
	}

	// The web UI offers the token and makes an issuing CA in it, signed by
	// the active CAPF certificate (path length 1, made at init).
	page := func(srv *httptest.Server) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/security/certificate", nil)
		req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
		_, out := send(t, req)
		return out
	}
	if out := page(srv); !strings.Contains(out, `id="issuer-create-key"`) || !strings.Contains(out, `id="regenerate-key"`) {
		t.Fatalf("the certificate page offers no key in the HSM")
	}
	issuingRef := h.GenerateECDSA(t, "ui-issuing", elliptic.P256())
	form := url.Values{"key": {issuingRef}, webauth.CSRFField: {alice.CSRF}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/security/certificate/issuer", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
	if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, `id="issuing-phones"`) {
		t.Fatalf("issuer create in the token from the UI: %d\n%s", code, out)
	}
	if r, ok, err := st.IssuingCA(ctx); err != nil || !ok || r.KeyRef != issuingRef {
		t.Fatalf("issuing CA: %+v %v %v; want key %q", r, ok, err, issuingRef)
	}

	// Certificates made elsewhere for token keys: a CAPF certificate through
	// the API (one for another key is refused on the key), then, with the
	// issuing CA removed, an issuing CA from the web UI.
	pemOf := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	importRef := h.GenerateRSA(t, "api-import", 2048)
	otherCert := caCertForTokenKey(t, h, h.GenerateRSA(t, "api-import-other", 2048))
	if code, out := post(srv, "/ca-set/import", map[string]string{"certificate": pemOf(otherCert), "key": importRef}); code != http.StatusUnprocessableEntity || !strings.Contains(out, "body.key") {
		t.Fatalf("import of another key's certificate with a token key: %d %s", code, out)
	}
	importCert := caCertForTokenKey(t, h, importRef)
	if code, out := post(srv, "/ca-set/import", map[string]string{"certificate": pemOf(importCert), "key": importRef}); code != http.StatusOK {
		t.Fatalf("import for a token key: %d %s", code, out)
	}
	importID := mustKeyID(importCert)
	found := false
	for _, r := range records() {
		found = found || (r.ID == importID && r.KeyRef == importRef && r.State == caset.Staged)
	}
	if !found {
		t.Fatalf("the imported CA %s is not staged with the reference %s: %+v", importID, importRef, records())
	}
	del, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/v1/ca-set/issuer", nil)
	del.Header.Set("X-CSRF-Token", alice.CSRF)
	del.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
	if code, out := send(t, del); code != http.StatusOK {
		t.Fatalf("remove the issuing CA: %d %s", code, out)
	}
	active, err := ca.Load(ca.Options{Dir: datadir.Dir(data).CA()})
	if err != nil {
		t.Fatal(err)
	}
	issRef := h.GenerateECDSA(t, "ui-issuing-import", elliptic.P256())
	ik, err := keyref.LoadString(ctx, issRef, g.p11)
	if err != nil {
		t.Fatal(err)
	}
	issTmpl := caTemplate("UI Token Issuing")
	issTmpl.MaxPathLenZero = true
	issCert := sign(t, &outsideCA{cert: active.Certificate(), key: active.Signer()}, issTmpl, ik.Public(), nil)
	_ = ik.Close()
	form = url.Values{"certificate": {pemOf(issCert)}, "key": {issRef}, webauth.CSRFField: {alice.CSRF}}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/security/certificate/issuer/import", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
	if code, out := send(t, req); code != http.StatusOK || !strings.Contains(out, `id="issuing-phones"`) {
		t.Fatalf("issuer import for a token key from the UI: %d\n%s", code, out)
	}
	if r, ok, err := st.IssuingCA(ctx); err != nil || !ok || r.KeyRef != issRef {
		t.Fatalf("issuing CA after the import: %+v %v %v; want key %q", r, ok, err, issRef)
	}

	// A node without a module offers no field and refuses the key.
	plain := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	srv2, _ := adminListener(t, plain, st)
	if out := page(srv2); strings.Contains(out, `id="regenerate-key"`) {
		t.Errorf("a node without a module offers a key in the HSM")
	}
	if code, out := post(srv2, "/ca-set", map[string]string{"key": h.GenerateRSA(t, "api-capf-2", 2048)}); code != http.StatusUnprocessableEntity || !strings.Contains(out, "opens no PKCS #11 token") {
		t.Fatalf("regenerate in a token on a node without a module: %d %s", code, out)
	}
	if n := len(records()); n != 3 {
		t.Fatalf("the refusal changed the set: %d CAs", n)
	}
}
