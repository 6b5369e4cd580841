package cli

import (
	"bytes"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/webauth"
)

// TestAdminListenerOfflineCAOnKEKCluster drives the admin listener as
// serve composes it on a PostgreSQL cluster with a KEK (real middleware,
// CSRF, account service, the CLI's vault): an import through the API
// seals its key in the keys table as ca-ID (nothing in DATA/ca); csr
// seals the pending key as ca-pending; an answer for another key is
// refused and changes nothing; install-signed stages the outside CA's
// answer with the pending key sealed again as the CA's (it opens under
// the KEK and is the requested key) and ca-pending gone. Each is audited
// under the browser session's name, and capf ca status agrees.
func TestAdminListenerOfflineCAOnKEKCluster(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	kekFile := filepath.Join(t.TempDir(), "kek")
	data := t.TempDir()
	var initOut bytes.Buffer
	if code := Run(ctx, []string{"--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"}, &initOut, &initOut); code != ExitOK {
		t.Fatalf("cluster init: exit %d: %s", code, initOut.String())
	}
	st, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := &globals{dataDir: data, db: dsn, kekFile: kekFile, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	srv, login := adminListener(t, g, st)
	alice := login("alice", account.RoleAdmin)
	post := func(path string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1"+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", alice.CSRF)
		req.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: alice.ID})
		return send(t, req)
	}
	keyIDs := func() string {
		t.Helper()
		ks, err := st.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range ks {
			ids = append(ids, k.ID)
		}
		return strings.Join(ids, " ")
	}
	pemOf := func(certs ...*x509.Certificate) string {
		var b bytes.Buffer
		for _, c := range certs {
			_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		}
		return b.String()
	}
	dir := t.TempDir()

	// Import: the key is sealed as ca-ID, nothing is written to DATA/ca.
	root := newOutsideRoot(t)
	ik := ecKey(t, elliptic.P256())
	imported := sign(t, root, caTemplate("CAPF-imported"), ik.Public(), nil)
	keyPEM, err := os.ReadFile(writePEM(t, dir, "ik.pem", ik))
	if err != nil {
		t.Fatal(err)
	}
	if code, out := post("/ca-set/import", map[string]string{"certificate": pemOf(imported), "key": string(keyPEM), "chain": pemOf(root.cert)}); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, out)
	}
	importedID, _ := caset.KeyID(imported)
	if got := keyIDs(); !strings.Contains(got, caKeyPrefix+importedID) {
		t.Errorf("keys after import = %s, want %s%s", got, caKeyPrefix, importedID)
	}

	// csr: the pending key is sealed as ca-pending.
	code, out := post("/ca-set/csr", map[string]string{"subject": "CN=CAPF-offline,O=Example", "key_algorithm": "ec256"})
	if code != http.StatusOK {
		t.Fatalf("csr: %d %s", code, out)
	}
	var csr struct {
		CSR     string        `json:"csr"`
		Pending caset.Pending `json:"pending"`
	}
	if err := json.Unmarshal([]byte(out), &csr); err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode([]byte(csr.CSR))
	if b == nil {
		t.Fatalf("csr answered %s", out)
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil || req.CheckSignature() != nil {
		t.Fatalf("the request: %v", err)
	}
	pid := caset.PublicKeyID(req.PublicKey)
	if got := keyIDs(); !strings.Contains(got, caset.PendingKeyID) || csr.Pending.ID != pid || !strings.Contains(csr.Pending.Where, "sealed in the database") {
		t.Errorf("keys after csr = %s, pending %+v; want %s sealed", got, csr.Pending, caset.PendingKeyID)
	}
	if es, _ := os.ReadDir(filepath.Join(data, "ca")); len(es) != 0 {
		t.Errorf("the API wrote %d entries into DATA/ca on a KEK cluster, want the keys in the database", len(es))
	}

	// An answer for another key is refused and changes nothing.
	before := keyIDs()
	stray := ecKey(t, elliptic.P256())
	if code, out := post("/ca-set/install-signed", map[string]string{"certificate": pemOf(sign(t, root, caTemplate("CAPF-offline"), stray.Public(), nil))}); code != http.StatusUnprocessableEntity || !strings.Contains(out, pid) {
		t.Errorf("install-signed for another key: %d %s", code, out)
	}
	if got := keyIDs(); got != before {
		t.Errorf("the refused install-signed changed the keys: %s, was %s", got, before)
	}

	answer := sign(t, root, caTemplate("CAPF-offline"), req.PublicKey, nil)
	if code, out := post("/ca-set/install-signed", map[string]string{"certificate": pemOf(answer), "chain": pemOf(root.cert)}); code != http.StatusOK {
		t.Fatalf("install-signed: %d %s", code, out)
	}
	id, _ := caset.KeyID(answer)
	if got := keyIDs(); strings.Contains(got, caset.PendingKeyID) || !strings.Contains(got, caKeyPrefix+id) {
		t.Errorf("keys after install-signed = %s, want %s%s and no %s", got, caKeyPrefix, id, caset.PendingKeyID)
	}
	k, err := kek.Load(kekFile)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := keys.NewService(st, k, nil).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := ms[caKeyPrefix+id]; m.Key == nil || caset.PublicKeyID(m.Key.Public()) != pid {
		t.Errorf("the staged CA's sealed key does not open as the requested key")
	}
	if m := ms[caKeyPrefix+importedID]; m.Key == nil || caset.PublicKeyID(m.Key.Public()) != caset.PublicKeyID(ik.Public()) {
		t.Errorf("the imported CA's sealed key does not open as the key given")
	}
	all, err := st.ListAudit(ctx, device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, ev := range all {
		if strings.HasPrefix(ev.Action, "ca.") && ev.Action != caset.AuditAdopt {
			evs = append(evs, ev.Action+" "+ev.Target+" "+ev.Actor.String())
		}
		if strings.Contains(ev.Detail, strings.Split(string(keyPEM), "\n")[1]) {
			t.Errorf("audit %s holds the private key", ev.Action)
		}
	}
	want := []string{"ca.install-signed " + id + " web:alice", "ca.csr " + pid + " web:alice", "ca.import " + importedID + " web:alice"}
	if strings.Join(evs, ";") != strings.Join(want, ";") {
		t.Errorf("audit %q, want %q", evs, want)
	}
	if out, errOut, code := run(t, data, "--db", dsn, "--kek-file", kekFile, "ca", "status"); code != ExitOK || !strings.Contains(out, id) || !strings.Contains(out, importedID) || strings.Contains(out, "pending key") {
		t.Errorf("ca status: exit %d: %s%s", code, out, errOut)
	}
}
