package cli

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// outsideCA is a CA made in the test: the root (or intermediate) of an
// organisation's PKI that certifies the CAPF.
type outsideCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func ecKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// caTemplate is a CA certificate template valid around now.
func caTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Outside PKI"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
}

// sign makes the certificate tmpl for pub, signed by o (self-signed when o
// is nil, with key).
func sign(t *testing.T, o *outsideCA, tmpl *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	parent, signer := tmpl, key
	if o != nil {
		parent, signer = o.cert, o.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newOutsideRoot(t *testing.T) *outsideCA {
	k := ecKey(t, elliptic.P384())
	return &outsideCA{cert: sign(t, nil, caTemplate("Outside Root"), k.Public(), k), key: k}
}

// writePEM writes certs (and key when not nil) to dir/name and returns its
// path.
func writePEM(t *testing.T, dir, name string, key crypto.Signer, certs ...*x509.Certificate) string {
	t.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		_ = pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// setSnapshot returns the stored CA set, the audit stream and the entries
// of DATA/ca: what a refused command must leave as it was.
func setSnapshot(t *testing.T, data string) string {
	t.Helper()
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListCAs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.ID + " " + string(r.State) + ";")
	}
	if r, ok, err := st.IssuingCA(t.Context()); err != nil {
		t.Fatal(err)
	} else if ok {
		b.WriteString(" issuing " + r.ID + ";")
	}
	b.WriteString(" audit " + big.NewInt(int64(len(evs))).String() + "; ca/")
	es, _ := os.ReadDir(datadir.Dir(data).CA())
	for _, e := range es {
		b.WriteString(" " + e.Name())
	}
	return b.String()
}

// TestCAImportRefusals: every certificate the CA set must not take is
// refused with its own reason, and leaves the set, the audit stream and
// DATA/ca as they were.
func TestCAImportRefusals(t *testing.T) {
	data := initData(t)
	dir := t.TempDir()
	root := newOutsideRoot(t)
	other := newOutsideRoot(t)
	key := ecKey(t, elliptic.P256())
	keyFile := writePEM(t, dir, "key.pem", key)
	good := func(mod func(*x509.Certificate)) *x509.Certificate {
		tmpl := caTemplate("CAPF-imported")
		if mod != nil {
			mod(tmpl)
		}
		return sign(t, root, tmpl, key.Public(), nil)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p521 := ecKey(t, elliptic.P521())
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxCAFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	before := setSnapshot(t, data)
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"expired", []string{writePEM(t, dir, "expired.pem", nil, good(func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
		})), keyFile}, ExitUsage, "is not valid now"},
		{"not yet valid", []string{writePEM(t, dir, "future.pem", nil, good(func(c *x509.Certificate) {
			c.NotBefore = time.Now().Add(time.Hour)
		})), keyFile}, ExitUsage, "is not valid now"},
		{"not a CA", []string{writePEM(t, dir, "leaf.pem", nil, good(func(c *x509.Certificate) {
			c.IsCA, c.KeyUsage = false, x509.KeyUsageDigitalSignature
		})), keyFile}, ExitUsage, "not a CA certificate"},
		{"no keyCertSign", []string{writePEM(t, dir, "nocertsign.pem", nil, good(func(c *x509.Certificate) {
			c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
		})), keyFile}, ExitUsage, "lacks the key usage keyCertSign"},
		{"key mismatch", []string{writePEM(t, dir, "good.pem", nil, good(nil)), writePEM(t, dir, "otherkey.pem", ecKey(t, elliptic.P256()))}, ExitUsage, "is for key " + caset.PublicKeyID(key.Public())},
		{"P-521", []string{writePEM(t, dir, "p521.pem", nil, sign(t, root, caTemplate("CAPF-521"), p521.Public(), nil)), writePEM(t, dir, "p521key.pem", p521)}, ExitUsage, "phones accept"},
		{"chain of another root", []string{writePEM(t, dir, "good2.pem", nil, good(nil)), keyFile, writePEM(t, dir, "other.pem", nil, other.cert)}, ExitUsage, "did not sign"},
		{"garbage certificate", []string{garbage, keyFile}, ExitUsage, "garbage.pem"},
		{"garbage key", []string{writePEM(t, dir, "good3.pem", nil, good(nil)), garbage}, ExitUsage, "garbage.pem"},
		{"missing file", []string{filepath.Join(dir, "none.pem"), keyFile}, ExitUsage, "none.pem"},
		{"oversized chain", []string{writePEM(t, dir, "good5.pem", nil, good(nil)), keyFile, big}, ExitUsage, "is over 1024 KiB"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := run(t, data, append([]string{"ca", "import"}, c.args...)...)
			if code != c.code || !strings.Contains(errOut, c.msg) {
				t.Errorf("exit %d, %q; want exit %d saying %q (%s)", code, errOut, c.code, c.msg, out)
			}
			if after := setSnapshot(t, data); after != before {
				t.Errorf("the set changed: %s, was %s", after, before)
			}
		})
	}
	if _, errOut, code := run(t, data, "ca", "install-signed", writePEM(t, dir, "good4.pem", nil, good(nil))); code != ExitNotFound || !strings.Contains(errOut, "no pending key") {
		t.Errorf("install-signed without a pending key: exit %d: %s", code, errOut)
	}

	// The good one, with its chain: staged, audited, its key in DATA/ca/ID.
	cert := good(nil)
	out, errOut, code := run(t, data, "ca", "import", writePEM(t, dir, "ok.pem", nil, cert), keyFile, writePEM(t, dir, "root.pem", nil, root.cert))
	if code != ExitOK || !strings.Contains(out, "staged ") {
		t.Fatalf("import: exit %d: %s%s", code, out, errOut)
	}
	id, _ := caset.KeyID(cert)
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := st.ListCAs(t.Context())
	evs, _ := st.ListAudit(t.Context(), device.AuditQuery{})
	st.Close()
	if len(recs) != 2 || recs[1].ID != id || recs[1].State != caset.Staged || !bytes.Equal(recs[1].Chain, caset.ChainDER(cert, root.cert)) {
		t.Fatalf("the set after import: %+v, want %s staged with its chain", recs, id)
	}
	if evs[0].Action != caset.AuditImport || evs[0].Target != id {
		t.Errorf("audit: %+v, want ca.import of %s", evs[0], id)
	}
	if fi, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), id, ca.KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the imported key file: %v %v, want mode 0600", err, fi)
	}
	before = setSnapshot(t, data)
	if _, errOut, code := run(t, data, "ca", "import", writePEM(t, dir, "again.pem", nil, cert), keyFile); code != ExitConflict || !strings.Contains(errOut, "in the CA set already") {
		t.Errorf("import twice: exit %d: %s", code, errOut)
	}
	if after := setSnapshot(t, data); after != before {
		t.Errorf("the set changed on a second import: %s, was %s", after, before)
	}
}

// TestCAOfflineRoundTrip: capf ca csr makes a pending key and a request
// for a CA certificate; the outside CA (made in the test, with an
// intermediate) signs it; a certificate for another key is refused naming
// both key ids; install-signed stages the answer with its chain; once
// activated, TLS sends the chain (a client trusting only the root
// verifies it) and the LSCs it issues pass `openssl verify -CAfile ROOT
// -untrusted CAPF.pem`.
func TestCAOfflineRoundTrip(t *testing.T) {
	data := initData(t)
	dir := t.TempDir()
	root := newOutsideRoot(t)
	ik := ecKey(t, elliptic.P384())
	inter := &outsideCA{cert: sign(t, root, caTemplate("Outside Issuing"), ik.Public(), nil), key: ik}

	out, errOut, code := run(t, data, "ca", "csr", "--subject", "CN=CAPF-offline,O=Example,OU=VOICE", "--key-algorithm", "ec256")
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
	if req.Subject.CommonName != "CAPF-offline" || len(req.Subject.Organization) != 1 {
		t.Errorf("requested subject %s", req.Subject)
	}
	// openssl reads what an outside CA reads: CA:TRUE and keyCertSign requested.
	csrFile := filepath.Join(dir, "capf.csr")
	if err := os.WriteFile(csrFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command("openssl", "req", "-in", csrFile, "-noout", "-text", "-verify").CombinedOutput()
	if err != nil || !strings.Contains(string(text), "CA:TRUE") || !strings.Contains(string(text), "Certificate Sign") {
		t.Fatalf("openssl req: %v\n%s", err, text)
	}
	if _, errOut, code := run(t, data, "ca", "csr"); code != ExitConflict || !strings.Contains(errOut, "pending key "+caset.PublicKeyID(req.PublicKey)) {
		t.Errorf("a second csr: exit %d: %s, want it refused naming the pending key", code, errOut)
	}
	if out, errOut, code := run(t, data, "ca", "status"); code != ExitOK || !strings.Contains(out, "pending key: "+caset.PublicKeyID(req.PublicKey)) {
		t.Errorf("ca status with a pending key: exit %d: %s%s, want it named", code, out, errOut)
	}

	// The outside CA answers; first with a certificate for another key.
	answer := func(pub crypto.PublicKey) *x509.Certificate {
		tmpl := caTemplate(req.Subject.CommonName)
		tmpl.Subject = req.Subject
		return sign(t, inter, tmpl, pub, nil)
	}
	stray := ecKey(t, elliptic.P256())
	before := setSnapshot(t, data)
	_, errOut, code = run(t, data, "ca", "install-signed", writePEM(t, dir, "stray.pem", nil, answer(stray.Public())), writePEM(t, dir, "chain.pem", nil, root.cert, inter.cert))
	if code != ExitUsage || !strings.Contains(errOut, caset.PublicKeyID(stray.Public())) || !strings.Contains(errOut, caset.PublicKeyID(req.PublicKey)) {
		t.Errorf("install-signed for another key: exit %d: %s, want both key ids named", code, errOut)
	}
	if after := setSnapshot(t, data); after != before {
		t.Errorf("the set changed: %s, was %s", after, before)
	}
	capf := answer(req.PublicKey)
	out, errOut, code = run(t, data, "ca", "install-signed", writePEM(t, dir, "capf.pem", nil, capf), filepath.Join(dir, "chain.pem"))
	if code != ExitOK {
		t.Fatalf("install-signed: exit %d: %s%s", code, out, errOut)
	}
	id, _ := caset.KeyID(capf)
	if _, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), pendingCADir)); !os.IsNotExist(err) {
		t.Errorf("the pending key is still there after install-signed: %v", err)
	}
	if out, errOut, code := run(t, data, "ca", "activate", id); code != ExitOK {
		t.Fatalf("activate: exit %d: %s%s", code, out, errOut)
	}

	// Open the set as serve does.
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cfg, err := g.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.openStore(t.Context(), readOnly)
	if err != nil {
		t.Fatal(err)
	}
	issuers, version, err := g.openCAIssuers(t.Context(), st, st, cfg, nil)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	set, err := caset.NewSet(version, issuers)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustKeyID(set.Active().Certificate()); got != id {
		t.Fatalf("active CA %s, want %s", got, id)
	}

	// TLS sends the chain: a client that trusts only the root verifies it.
	roots := x509.NewCertPool()
	roots.AddCert(root.cert)
	sc, cc := net.Pipe()
	srv := tls.Server(sc, &tls.Config{GetCertificate: set.GetCertificate})
	go func() { _ = srv.HandshakeContext(t.Context()); srv.Close() }()
	cli := tls.Client(cc, &tls.Config{InsecureSkipVerify: true})
	if err := cli.HandshakeContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	peers := cli.ConnectionState().PeerCertificates
	cli.Close()
	inters := x509.NewCertPool()
	for _, c := range peers[1:] {
		inters.AddCert(c)
	}
	if len(peers) != 3 {
		t.Errorf("TLS sent %d certificates, want the CAPF certificate, the intermediate and the root", len(peers))
	}
	if _, err := peers[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters}); err != nil {
		t.Errorf("the TLS chain does not verify against the root: %v", err)
	}

	// An LSC of the active CA passes openssl verify -CAfile ROOT -untrusted CAPF.pem.
	phone := ecKey(t, elliptic.P256())
	lsc, err := set.Issue(t.Context(), ca.IssueRequest{DeviceName: "SEP001122334455", PublicKey: phone.Public()})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := writePEM(t, dir, "root-only.pem", nil, root.cert)
	untrusted := writePEM(t, dir, "capf-chain.pem", nil, capf, inter.cert)
	lscFile := writePEM(t, dir, "lsc.pem", nil, lsc.Certificate)
	if b, err := exec.Command("openssl", "verify", "-CAfile", rootFile, "-untrusted", untrusted, lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify: %v\n%s", err, b)
	}
	// And not against another root: the check can fail.
	if b, err := exec.Command("openssl", "verify", "-CAfile", writePEM(t, dir, "other-root.pem", nil, newOutsideRoot(t).cert), "-untrusted", untrusted, lscFile).CombinedOutput(); err == nil {
		t.Errorf("openssl verify accepts the LSC against another root:\n%s", b)
	}

	// A phone that trusts only the outside root enrols against real serve,
	// and its LSC verifies the same way.
	const name = "SEP00AABBCCDDEE"
	if out, errOut, code := run(t, data, "device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	sout, _ := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	state := filepath.Join(dir, "phone")
	if out, errOut, code := run(t, data, "phone", name, "--server", m[1], "--ca", rootFile, "--state", state, "--retries", "0", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("the phone trusting only the outside root: exit %d: %s%s", code, out, errOut)
	}
	if b, err := exec.Command("openssl", "verify", "-CAfile", rootFile, "-untrusted", untrusted, filepath.Join(state, phonesim.FileLSC)).CombinedOutput(); err != nil {
		t.Errorf("openssl verify of the phone's LSC: %v\n%s", err, b)
	}
}

// TestCAImportOnKEKCluster: on PostgreSQL with the keys under a KEK, an
// imported CA's key is sealed in the database with the set's row: a node
// started with only the DSN and the KEK file opens it, and once it is
// activated presents it on TLS with its chain. (The offline CA there:
// TestCAOfflineOnKEKCluster.)
func TestCAImportOnKEKCluster(t *testing.T) {
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
	root := newOutsideRoot(t)
	key := ecKey(t, elliptic.P256())
	cert := sign(t, root, caTemplate("CAPF-imported"), key.Public(), nil)
	if out, errOut, code := cl("ca", "import", writePEM(t, dir, "capf.pem", nil, cert, root.cert), writePEM(t, dir, "capf.key", key)); code != ExitOK {
		t.Fatalf("import: exit %d: %s%s", code, out, errOut)
	}
	id, _ := caset.KeyID(cert)
	if out, errOut, code := cl("ca", "activate", id); code != ExitOK {
		t.Fatalf("activate: exit %d: %s%s", code, out, errOut)
	}
	if es, _ := os.ReadDir(filepath.Join(data, "ca")); len(es) != 0 {
		t.Errorf("import on a KEK cluster wrote %d entries into DATA/ca, want the key in the database", len(es))
	}
	sout, _ := startServe(t, t.TempDir(), "--db", dsn, "--kek-file", kekFile, "--listen", "127.0.0.1:0", "--admin-listen", "")
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	conn, err := tls.Dial("tcp", m[1], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	peers := conn.ConnectionState().PeerCertificates
	conn.Close()
	if len(peers) != 2 || !peers[0].Equal(cert) || !peers[1].Equal(root.cert) {
		t.Errorf("the node presents %d certificates (first %s), want the imported CAPF certificate and its root", len(peers), peers[0].Subject)
	}
}
