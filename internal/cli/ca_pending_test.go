package cli

import (
	"bytes"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// TestCAOfflineOnKEKCluster: on a PostgreSQL cluster with a KEK, `ca csr`
// seals the pending key in the keys table (nothing in DATA/ca), `ca
// status` names it, a second csr and an answer for another key are
// refused and change nothing, install-signed stages the answer with the
// pending key sealed again as the CA's and the pending row gone, and a
// node started on the cluster presents it with its chain once activated.
func TestCAOfflineOnKEKCluster(t *testing.T) {
	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(t.TempDir(), "kek")
	data, dir := t.TempDir(), t.TempDir()
	cl := func(args ...string) (string, string, int) {
		return run(t, data, append([]string{"--db", dsn, "--kek-file", kekFile}, args...)...)
	}
	var initOut bytes.Buffer
	if code := Run(t.Context(), []string{"--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"}, &initOut, &initOut); code != ExitOK {
		t.Fatalf("cluster init: exit %d: %s", code, initOut.String())
	}
	keyIDs := func() string {
		t.Helper()
		st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ks, err := st.ListKeys(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, k := range ks {
			ids = append(ids, k.ID)
		}
		return strings.Join(ids, " ")
	}
	if _, errOut, code := cl("ca", "install-signed", filepath.Join(dir, "x.pem")); code != ExitNotFound || !strings.Contains(errOut, "no pending key") {
		t.Errorf("install-signed with no pending key: exit %d: %s", code, errOut)
	}

	out, errOut, code := cl("ca", "csr", "--subject", "CN=CAPF-offline,O=Example", "--key-algorithm", "ec256")
	if code != ExitOK {
		t.Fatalf("csr: exit %d: %s%s", code, out, errOut)
	}
	b, _ := pem.Decode([]byte(out))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("csr printed %q, want a PEM certificate request", out)
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil || req.CheckSignature() != nil {
		t.Fatalf("the request: %v", err)
	}
	pid := caset.PublicKeyID(req.PublicKey)
	if es, _ := os.ReadDir(filepath.Join(data, "ca")); len(es) != 0 {
		t.Errorf("csr on a KEK cluster wrote %d entries into DATA/ca, want the key in the database", len(es))
	}
	if got := keyIDs(); !strings.Contains(got, caset.PendingKeyID) {
		t.Errorf("keys = %s, want %s among them", got, caset.PendingKeyID)
	}
	if _, errOut, code := cl("ca", "csr"); code != ExitConflict || !strings.Contains(errOut, "pending key "+pid) {
		t.Errorf("a second csr: exit %d: %s, want it refused naming %s", code, errOut, pid)
	}
	out, errOut, code = cl("ca", "status", "--json")
	var rows []caStatusRow
	if code != ExitOK || json.Unmarshal([]byte(out), &rows) != nil || rows[len(rows)-1].Role != "pending" || rows[len(rows)-1].ID != pid || rows[len(rows)-1].Subject != "CN=CAPF-offline,O=Example" {
		t.Errorf("ca status --json with a pending key: exit %d: %s%s", code, out, errOut)
	}

	// The outside CA's answer; first for another key: refused, nothing changed.
	root := newOutsideRoot(t)
	answer := func(pub any) *x509.Certificate {
		tmpl := caTemplate(req.Subject.CommonName)
		tmpl.Subject = req.Subject
		return sign(t, root, tmpl, pub, nil)
	}
	stray := ecKey(t, elliptic.P256())
	keysBefore := keyIDs()
	statusBefore, _, _ := cl("ca", "status", "--json")
	_, errOut, code = cl("ca", "install-signed", writePEM(t, dir, "stray.pem", nil, answer(stray.Public()), root.cert))
	if code != ExitUsage || !strings.Contains(errOut, caset.PublicKeyID(stray.Public())) || !strings.Contains(errOut, pid) {
		t.Errorf("install-signed for another key: exit %d: %s, want both key ids named", code, errOut)
	}
	if after, _, _ := cl("ca", "status", "--json"); keyIDs() != keysBefore || after != statusBefore {
		t.Errorf("the refused answer changed the keys (%s, was %s) or the set", keyIDs(), keysBefore)
	}

	capf := answer(req.PublicKey)
	if out, errOut, code := cl("ca", "install-signed", writePEM(t, dir, "capf.pem", nil, capf), writePEM(t, dir, "chain.pem", nil, root.cert)); code != ExitOK {
		t.Fatalf("install-signed: exit %d: %s%s", code, out, errOut)
	}
	id, _ := caset.KeyID(capf)
	if got := keyIDs(); strings.Contains(got, caset.PendingKeyID) || !strings.Contains(got, caKeyPrefix+id) {
		t.Errorf("keys after install-signed = %s, want %s%s and no %s", got, caKeyPrefix, id, caset.PendingKeyID)
	}
	if out, _, _ := cl("ca", "status"); strings.Contains(out, "pending key") || !strings.Contains(out, id) {
		t.Errorf("ca status after install-signed:\n%s", out)
	}
	if _, errOut, code := cl("ca", "install-signed", filepath.Join(dir, "capf.pem"), filepath.Join(dir, "chain.pem")); code != ExitNotFound || !strings.Contains(errOut, "no pending key") {
		t.Errorf("install-signed again: exit %d: %s", code, errOut)
	}
	if out, errOut, code := cl("ca", "activate", id); code != ExitOK {
		t.Fatalf("activate: exit %d: %s%s", code, out, errOut)
	}
	sout, _ := startServe(t, t.TempDir(), "--db", dsn, "--kek-file", kekFile, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	conn, err := tls.Dial("tcp", m[1], &tls.Config{InsecureSkipVerify: true}) // the test compares what it got
	if err != nil {
		t.Fatal(err)
	}
	peers := conn.ConnectionState().PeerCertificates
	conn.Close()
	if len(peers) != 2 || !peers[0].Equal(capf) || !peers[1].Equal(root.cert) {
		t.Errorf("the node presents %d certificates (first %s), want the offline CA's certificate and its root", len(peers), peers[0].Subject)
	}
}
