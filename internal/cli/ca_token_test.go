//go:build cgo

package cli

import (
	"bytes"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
)

// tokenCA makes a CA certificate for an RSA key generated in the SoftHSM2
// token, self-signed in the token, imports it into data's CA set (staged)
// and activates it. It returns the reference, the certificate and its
// PEM file.
func tokenCA(t *testing.T, h *keyreftest.HSM, data, object string) (string, *x509.Certificate, string) {
	t.Helper()
	ref := h.GenerateRSA(t, object, 2048)
	k, err := keyref.LoadString(t.Context(), ref, keyref.Options{Module: h.Module, PINFile: h.PINFile})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	tmpl := caTemplate("CAPF-token")
	tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment // the legacy profile's RSA key exchange
	cert := sign(t, nil, tmpl, k.Public(), k.Signer())
	certFile := writePEM(t, t.TempDir(), "capf-token.pem", nil, cert)
	p11 := []string{"--pkcs11-module", h.Module, "--pin-file", h.PINFile}
	if out, errOut, code := run(t, data, append([]string{"ca", "import", certFile, ref}, p11...)...); code != ExitOK {
		t.Fatalf("ca import: exit %d: %s%s", code, out, errOut)
	}
	id, _ := caset.KeyID(cert)
	if out, errOut, code := run(t, data, "ca", "activate", id); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}
	return ref, cert, certFile
}

// TestCATokenEnrolment: a CAPF CA whose key is in a PKCS #11 token is
// imported by reference (nothing of the key stored), activated, and real
// serve with --pkcs11-module and --pin-file presents it on TLS and signs
// with it: a phone that trusts only that certificate enrols, and its LSC
// verifies against it (openssl too). The legacy profile's RSA key
// exchange decrypts in the token.
func TestCATokenEnrolment(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	dir := t.TempDir()

	// Without the module or with a bad reference: refused, nothing stored.
	ref0 := h.GenerateRSA(t, "capf-ca-refused", 2048)
	before := setSnapshot(t, data)
	certFile0 := writePEM(t, dir, "c0.pem", nil, caCertForTokenKey(t, h, ref0))
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no-module", []string{certFile0, ref0, "--pin-file", h.PINFile}, "--pkcs11-module"},
		{"missing-object", []string{certFile0, h.Ref("nope"), "--pkcs11-module", h.Module, "--pin-file", h.PINFile}, "holds no key pair"},
		{"other-key", []string{certFile0, h.GenerateRSA(t, "capf-ca-other", 2048), "--pkcs11-module", h.Module, "--pin-file", h.PINFile}, "is for key"},
		{"module-with-file-key", []string{certFile0, writePEM(t, dir, "k.pem", ecKey(t, elliptic.P256())), "--pkcs11-module", h.Module}, "go with a pkcs11: key reference"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, data, append([]string{"ca", "import"}, tt.args...)...)
			if code == ExitOK || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: stderr lacks %q:\n%s", code, tt.want, errOut)
			}
		})
	}
	if after := setSnapshot(t, data); after != before {
		t.Fatalf("a refused import changed the set: %s, was %s", after, before)
	}

	ref, cert, certFile := tokenCA(t, h, data, "capf-ca")
	id, _ := caset.KeyID(cert)
	// The set holds the reference, never key material.
	if _, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), id)); !os.IsNotExist(err) {
		t.Errorf("DATA/ca/%s exists (%v): a token CA has no key files", id, err)
	}
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	st, err := g.openStore(t.Context(), readOnly)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := st.ListCAs(t.Context())
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	var rec caset.Record
	for _, r := range recs {
		if r.ID == id {
			rec = r
		}
	}
	if rec.KeyRef != ref || rec.State != caset.Active {
		t.Fatalf("stored CA %s: key %q, %s; want key %q, active", id, rec.KeyRef, rec.State, ref)
	}

	// The legacy profile's RSA key exchange: the token decrypts.
	cfg, err := g.loadConfig()
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	g.p11 = keyref.Options{Module: h.Module, PINFile: h.PINFile}
	g.tokenKeys = &tokenKeys{}
	defer g.tokenKeys.closeAll()
	issuers, version, err := g.openCAIssuers(t.Context(), st, st, cfg, nil)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	set, err := caset.NewSet(version, issuers)
	if err != nil {
		t.Fatal(err)
	}
	sc, cc := net.Pipe()
	suite := tls.TLS_RSA_WITH_AES_128_GCM_SHA256
	srv := tls.Server(sc, &tls.Config{GetCertificate: set.GetCertificate, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}})
	go func() { _ = srv.HandshakeContext(t.Context()); srv.Close() }()
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	cli := tls.Client(cc, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite},
		InsecureSkipVerify: true, VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			_, err = c.Verify(x509.VerifyOptions{Roots: roots})
			return err
		}})
	if err := cli.HandshakeContext(t.Context()); err != nil {
		t.Fatalf("TLS with RSA key exchange: %v", err)
	}
	cs := cli.ConnectionState()
	cli.Close()
	if cs.CipherSuite != suite || !cs.PeerCertificates[0].Equal(cert) {
		t.Fatalf("suite %s, peer %s: want RSA key exchange with the token CA", tls.CipherSuiteName(cs.CipherSuite), cs.PeerCertificates[0].Subject)
	}

	// A phone that trusts only the token CA enrols against real serve.
	const name = "SEP00AABBCC0011"
	if out, errOut, code := run(t, data, "device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	sout, stop := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "", "--pkcs11-module", h.Module, "--pin-file", h.PINFile)
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	state := filepath.Join(dir, "phone")
	if out, errOut, code := run(t, data, "phone", name, "--server", m[1], "--ca", certFile, "--state", state, "--retries", "0", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("the phone trusting only the token CA: exit %d: %s%s", code, out, errOut)
	}
	// The HSM restarts under the running serve: its sessions and login
	// are gone. The next phone's TLS handshake and LSC are signed in the
	// token again, without a restart of serve.
	h.ForgetSessions(t)
	const second = "SEP00AABBCC0012"
	if out, errOut, code := run(t, data, "device", "add", second, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := run(t, data, "phone", second, "--server", m[1], "--ca", certFile, "--state", filepath.Join(dir, "phone2"), "--retries", "0", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("a phone after the token forgot serve: exit %d: %s%s", code, out, errOut)
	}
	if b, err := exec.Command("openssl", "verify", "-CAfile", certFile, filepath.Join(dir, "phone2", phonesim.FileLSC)).CombinedOutput(); err != nil {
		t.Errorf("openssl verify of the LSC issued after the token forgot serve: %v\n%s", err, b)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exited %d", code)
	}
	lscFile := filepath.Join(state, phonesim.FileLSC)
	if b, err := exec.Command("openssl", "verify", "-CAfile", certFile, lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify of the phone's LSC: %v\n%s", err, b)
	}
	// The check can fail: not against another CA.
	if b, err := exec.Command("openssl", "verify", "-CAfile", writePEM(t, dir, "other.pem", nil, newOutsideRoot(t).cert), lscFile).CombinedOutput(); err == nil {
		t.Errorf("openssl verify accepts the LSC against another CA:\n%s", b)
	}
}

// caCertForTokenKey returns a self-signed CA certificate for the token
// key ref, signed in the token.
func caCertForTokenKey(t *testing.T, h *keyreftest.HSM, ref string) *x509.Certificate {
	t.Helper()
	k, err := keyref.LoadString(t.Context(), ref, keyref.Options{Module: h.Module, PINFile: h.PINFile})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	return sign(t, nil, caTemplate("CAPF-token"), k.Public(), k.Signer())
}

// TestServeCATokenRefused: serve refuses to start when the active CA's
// token key does not open, with an error that names the CA's reference
// and the cause.
func TestServeCATokenRefused(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	ref, _, _ := tokenCA(t, h, data, "capf-ca-serve")
	wrongPIN := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(wrongPIN, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong-pin", []string{"--pkcs11-module", h.Module, "--pin-file", wrongPIN}, "refused the PIN"},
		{"no-module", []string{"--pin-file", h.PINFile}, "--pkcs11-module"},
		{"no-pin-file", []string{"--pkcs11-module", h.Module}, "--pin-file"},
		{"missing-object", []string{"--pkcs11-module", h.Module, "--pin-file", h.PINFile}, "holds no key pair"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "missing-object" {
				deleteTokenKey(t, h, ref)
			}
			out, errOut, code := run(t, data, append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", ""}, tt.args...)...)
			if code == ExitOK || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, ref) {
				t.Fatalf("exit %d: stderr lacks %q or %s:\n%s", code, tt.want, ref, errOut)
			}
			if strings.Contains(out, "listening (phones)") {
				t.Fatalf("serve listened:\n%s", out)
			}
		})
	}
}

// deleteTokenKey deletes the key pair ref names from the token.
func deleteTokenKey(t *testing.T, h *keyreftest.HSM, ref string) {
	t.Helper()
	r, err := keyref.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: h.Module, TokenLabel: h.Token, Pin: keyreftest.PIN})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kp, err := c.FindKeyPair(nil, []byte(r.Object))
	if err != nil || kp == nil {
		t.Fatalf("find %s: %v", ref, err)
	}
	if err := kp.Delete(); err != nil {
		t.Fatal(err)
	}
}

// TestCARegenerateInToken: ca regenerate --key makes the CAPF certificate
// of a key pair already in the token, signed there, staged with only the
// reference stored; activated, the set opens it and its LSCs verify
// against that certificate (openssl too). Wrong uses are refused and
// change nothing.
func TestCARegenerateInToken(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	dir := t.TempDir()
	ref := h.GenerateECDSA(t, "capf-regen", elliptic.P256())
	p11 := []string{"--pkcs11-module", h.Module, "--pin-file", h.PINFile}
	before := setSnapshot(t, data)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"file-key", append([]string{"--key", filepath.Join(dir, "k.pem")}, p11...), "want a key in a PKCS #11 token"},
		{"with-algorithm", append([]string{"--key", ref, "--key-algorithm", "ec256"}, p11...), "uses the token's"},
		{"module-without-key", p11, "go with --key"},
		{"wrong-curve", append([]string{"--key", h.GenerateECDSA(t, "capf-regen-p521", elliptic.P521())}, p11...), "phones accept"},
		{"no-module", []string{"--key", ref, "--pin-file", h.PINFile}, "--pkcs11-module"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, data, append([]string{"ca", "regenerate"}, tt.args...)...)
			if code == ExitOK || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: stderr lacks %q:\n%s", code, tt.want, errOut)
			}
		})
	}
	if after := setSnapshot(t, data); after != before {
		t.Fatalf("a refused regenerate changed the set: %s, was %s", after, before)
	}
	out, errOut, code := run(t, data, append([]string{"ca", "regenerate", "--key", ref}, p11...)...)
	if code != ExitOK {
		t.Fatalf("ca regenerate --key: exit %d: %s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`staged ([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no staged id in %q", out)
	}
	if _, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), m[1])); !os.IsNotExist(err) {
		t.Errorf("DATA/ca/%s exists (%v): a token CA has no key files", m[1], err)
	}
	if out, errOut, code := run(t, data, "ca", "activate", m[1]); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}
	// Commands that only read the active certificate need no token.
	if out, errOut, code := run(t, data, "ca", "show"); code != ExitOK || !strings.Contains(out, "PKCS #11 token, "+ref) {
		t.Errorf("ca show: exit %d: %s%s, want the token reference as its key's place", code, out, errOut)
	}
	exported, errOut, code := run(t, data, "ca", "export")
	if code != ExitOK {
		t.Fatalf("ca export: exit %d: %s", code, errOut)
	}
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, p11: keyref.Options{Module: h.Module, PINFile: h.PINFile}, tokenKeys: &tokenKeys{}}
	defer g.tokenKeys.closeAll()
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
	capf := set.Active().Certificate()
	if got := mustKeyID(capf); got != m[1] {
		t.Fatalf("active CA %s, want %s", got, m[1])
	}
	for _, iss := range set.Issuers() {
		if iss.ID == m[1] && iss.KeyRef != ref {
			t.Errorf("stored key %q, want %q", iss.KeyRef, ref)
		}
	}
	if c, err := x509.ParseCertificate(pemBlock(t, exported)); err != nil || !c.Equal(capf) {
		t.Errorf("ca export printed another certificate than the active one (%v)", err)
	}
	if err := capf.CheckSignatureFrom(capf); err != nil {
		t.Fatalf("the CAPF certificate is not self-signed: %v", err)
	}
	phone := ecKey(t, elliptic.P256())
	lsc, err := set.Issue(t.Context(), ca.IssueRequest{DeviceName: "SEP001122334466", PublicKey: phone.Public()})
	if err != nil {
		t.Fatal(err)
	}
	capfFile := writePEM(t, dir, "capf.pem", nil, capf)
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, writePEM(t, dir, "lsc.pem", nil, lsc.Certificate)).CombinedOutput(); err != nil {
		t.Errorf("openssl verify of the LSC: %v\n%s", err, b)
	}
}

// TestCATokenOnKEKCluster: on PostgreSQL with the keys under a KEK, a CA
// whose key is in the token is stored as its reference alone (no row in
// the keys table, nothing in DATA/ca), and a node started with the DSN,
// the KEK file and the token's module and PIN presents it on TLS once it
// is activated.
func TestCATokenOnKEKCluster(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(t.TempDir(), "kek")
	data := t.TempDir()
	cl := func(args ...string) (string, string, int) {
		return run(t, data, append([]string{"--db", dsn, "--kek-file", kekFile}, args...)...)
	}
	var initOut bytes.Buffer
	if code := Run(t.Context(), []string{"--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"}, &initOut, &initOut); code != ExitOK {
		t.Fatalf("cluster init: exit %d: %s", code, initOut.String())
	}
	ref := h.GenerateRSA(t, "capf-cluster", 2048)
	p11 := []string{"--pkcs11-module", h.Module, "--pin-file", h.PINFile}
	out, errOut, code := cl(append([]string{"ca", "regenerate", "--key", ref}, p11...)...)
	if code != ExitOK {
		t.Fatalf("ca regenerate --key on a KEK cluster: exit %d: %s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`staged ([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no staged id in %q", out)
	}
	if out, errOut, code := cl("ca", "activate", m[1]); code != ExitOK {
		t.Fatalf("activate: exit %d: %s%s", code, out, errOut)
	}
	if es, _ := os.ReadDir(filepath.Join(data, "ca")); len(es) != 0 {
		t.Errorf("a token CA on a KEK cluster wrote %d entries into DATA/ca", len(es))
	}
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ks, err := st.ListKeys(t.Context())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if strings.Contains(k.ID, m[1]) {
			t.Errorf("the keys table holds %s for the token CA", k.ID)
		}
	}
	sout, _ := startServe(t, t.TempDir(), append([]string{"--db", dsn, "--kek-file", kekFile, "--listen", "127.0.0.1:0", "--admin-listen", ""}, p11...)...)
	a := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if a == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	conn, err := tls.Dial("tcp", a[1], &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	peers := conn.ConnectionState().PeerCertificates
	conn.Close()
	if got := mustKeyID(peers[0]); got != m[1] {
		t.Errorf("the node presents CA %s (%s), want the token CA %s", got, peers[0].Subject, m[1])
	}
}

// pemBlock returns the DER of the first PEM block of s.
func pemBlock(t *testing.T, s string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM in %q", s)
	}
	return b.Bytes
}
