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
	"github.com/capf-server/capf/internal/kek"
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
	// A pending key can be discarded, to start over.
	if out, errOut, code := cl("ca", "csr"); code != ExitOK {
		t.Fatalf("a new csr: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := cl("ca", "csr", "--discard"); code != ExitOK || !strings.Contains(out, "discarded the pending key") {
		t.Fatalf("csr --discard: exit %d: %s%s", code, out, errOut)
	}
	if got := keyIDs(); strings.Contains(got, caset.PendingKeyID) {
		t.Errorf("keys after the discard = %s", got)
	}
	if _, errOut, code := cl("ca", "csr", "--discard"); code != ExitNotFound || !strings.Contains(errOut, "no pending key") {
		t.Errorf("a second discard: exit %d: %s", code, errOut)
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

// TestCAKeysBesideTheSetRestoreAcrossBackends: the issuing CA, a former
// issuing CA and the offline CA's pending key travel in a backup from
// SQLite into a PostgreSQL cluster (sealed under its KEK as issuing-ID and
// ca-pending) and back into SQLite (as DATA/ca/issuing-ID and
// DATA/ca/pending): each side's ca status names all three, and a node on
// the cluster signs with the issuing CA and opens the former one's key.
func TestCAKeysBesideTheSetRestoreAcrossBackends(t *testing.T) {
	data, dir := initData(t), t.TempDir()
	rk := ecKey(t, elliptic.P256())
	rootTmpl := caTemplate("CAPF-restore")
	rootTmpl.MaxPathLen = 1
	root := &outsideCA{cert: sign(t, nil, rootTmpl, rk.Public(), rk), key: rk}
	rootID, _ := caset.KeyID(root.cert)
	for _, args := range [][]string{
		{"ca", "import", writePEM(t, dir, "capf.pem", nil, root.cert), writePEM(t, dir, "capf.key", rk)},
		{"ca", "activate", rootID},
		{"ca", "issuer", "create", "--key-algorithm", "ec256"},
		{"ca", "issuer", "remove"}, // kept as a former issuing CA
		{"ca", "issuer", "create", "--key-algorithm", "ec256"},
		{"ca", "csr", "--key-algorithm", "ec256"},
	} {
		if out, errOut, code := run(t, data, args...); code != ExitOK {
			t.Fatalf("%v: exit %d: %s%s", args, code, out, errOut)
		}
	}
	var formerID string
	status := func(args ...string) (issuing, pending string) {
		t.Helper()
		out, errOut, code := run(t, args[0], append(args[1:], "ca", "status", "--json")...)
		var rows []caStatusRow
		if code != ExitOK || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("ca status: exit %d: %s%s", code, out, errOut)
		}
		former := ""
		for _, r := range rows {
			switch r.Role {
			case "issuing":
				issuing = r.ID + " " + r.ParentID + " " + string(r.State)
			case "pending":
				pending = r.ID
			case "former-issuing":
				former = r.ID
			}
		}
		if formerID == "" {
			formerID = former
		} else if former != formerID {
			t.Errorf("%v: former issuing CA %q, want %q", args, former, formerID)
		}
		return issuing, pending
	}
	wantIssuing, wantPending := status(data)
	if !strings.HasSuffix(wantIssuing, rootID+" signing") || wantPending == "" || formerID == "" {
		t.Fatalf("before the backup: issuing %q, pending %q, former %q", wantIssuing, wantPending, formerID)
	}
	archive := filepath.Join(dir, "backup.tar")
	if out, errOut, code := run(t, data, "backup", "--out", archive); code != ExitOK {
		t.Fatalf("backup: exit %d: %s%s", code, out, errOut)
	}

	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(dir, "kek")
	if _, err := kek.Generate(kekFile, nil); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run(t, t.TempDir(), "--db", dsn, "--kek-file", kekFile, "restore", archive); code != ExitOK {
		t.Fatalf("restore into PostgreSQL: exit %d: %s%s", code, out, errOut)
	}
	if is, p := status(t.TempDir(), "--db", dsn, "--kek-file", kekFile); is != wantIssuing || p != wantPending {
		t.Errorf("on the cluster: issuing %q, pending %q; want %q, %q", is, p, wantIssuing, wantPending)
	}
	_, serveLog, stop := startServeLogs(t, t.TempDir(), "--db", dsn, "--kek-file", kekFile, "--listen", "127.0.0.1:0", "--admin-listen", "")
	if !strings.Contains(serveLog.String(), "LSCs are signed by the issuing CA") || strings.Contains(serveLog.String(), "former issuing CA's key does not open") {
		t.Errorf("the cluster node does not sign with the restored issuing CA, or cannot open the former one's key:\n%s", serveLog.String())
	}
	stop()

	pgArchive := filepath.Join(dir, "pg.tar")
	if out, errOut, code := run(t, t.TempDir(), "--db", dsn, "--kek-file", kekFile, "backup", "--out", pgArchive); code != ExitOK {
		t.Fatalf("backup of PostgreSQL: exit %d: %s%s", code, out, errOut)
	}
	back := filepath.Join(t.TempDir(), "back")
	if out, errOut, code := run(t, back, "--kek-file", kekFile, "restore", pgArchive); code != ExitOK {
		t.Fatalf("restore into SQLite: exit %d: %s%s", code, out, errOut)
	}
	currentID, _, _ := strings.Cut(wantIssuing, " ")
	for _, sub := range []string{issuingCADir + "-" + currentID, issuingCADir + "-" + formerID, pendingCADir} {
		if _, err := os.Stat(filepath.Join(back, "ca", sub, "capf.key")); err != nil {
			t.Errorf("the restore into SQLite wrote no DATA/ca/%s key: %v", sub, err)
		}
	}
	if is, p := status(back); is != wantIssuing || p != wantPending {
		t.Errorf("back on SQLite: issuing %q, pending %q; want %q, %q", is, p, wantIssuing, wantPending)
	}
}

// TestCACSRDiscard: on SQLite, csr --discard removes DATA/ca/pending with
// its audit line, refuses when there is none, and another csr can follow.
func TestCACSRDiscard(t *testing.T) {
	data := initData(t)
	if out, errOut, code := run(t, data, "ca", "csr", "--discard"); code != ExitNotFound {
		t.Errorf("discard with none: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "ca", "csr", "--discard", "--subject", "CN=x"); code != ExitUsage {
		t.Errorf("discard with a subject: exit %d: %s%s", code, out, errOut)
	}
	for i := 0; i < 2; i++ {
		if out, errOut, code := run(t, data, "ca", "csr", "--key-algorithm", "ec256"); code != ExitOK {
			t.Fatalf("csr %d: exit %d: %s%s", i, code, out, errOut)
		}
		if out, errOut, code := run(t, data, "ca", "csr", "--discard"); code != ExitOK {
			t.Fatalf("discard %d: exit %d: %s%s", i, code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(data, "ca", pendingCADir)); !os.IsNotExist(err) {
			t.Errorf("DATA/ca/pending after the discard: %v", err)
		}
	}
	if out, _, _ := run(t, data, "audit", "--limit", "1"); !strings.Contains(out, caset.AuditCSRDiscard) {
		t.Errorf("the newest audit line is not %s:\n%s", caset.AuditCSRDiscard, out)
	}
}
