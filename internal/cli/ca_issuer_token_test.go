//go:build cgo

package cli

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// issuerRoot imports and activates, in data, a CAPF certificate (key in a
// file) that allows one CA below it, and returns it with its PEM file.
func issuerRoot(t *testing.T, data, dir string) (*outsideCA, string) {
	t.Helper()
	rk := ecKey(t, elliptic.P256())
	tmpl := caTemplate("CAPF-with-token-issuer")
	tmpl.MaxPathLen = 1
	root := &outsideCA{cert: sign(t, nil, tmpl, rk.Public(), rk), key: rk}
	capfFile := writePEM(t, dir, "capf.pem", nil, root.cert)
	if out, errOut, code := run(t, data, "ca", "import", capfFile, writePEM(t, dir, "capf.key", rk)); code != ExitOK {
		t.Fatalf("ca import: exit %d: %s%s", code, out, errOut)
	}
	id, _ := caset.KeyID(root.cert)
	if out, errOut, code := run(t, data, "ca", "activate", id); code != ExitOK {
		t.Fatalf("ca activate: exit %d: %s%s", code, out, errOut)
	}
	return root, capfFile
}

// tokenPublic returns the public key of the token key ref.
func tokenPublic(t *testing.T, h *keyreftest.HSM, ref string) crypto.PublicKey {
	t.Helper()
	k, err := keyref.LoadString(t.Context(), ref, keyref.Options{Module: h.Module, PINFile: h.PINFile})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	return k.Public()
}

// storedIssuing returns the issuing CA record data's database holds.
func storedIssuing(t *testing.T, data string) (caset.IssuingRecord, bool) {
	t.Helper()
	st, err := sqlite.OpenReadOnly(t.Context(), datadir.Dir(data).DB(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, ok, err := st.IssuingCA(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

// TestCAIssuerInToken: an issuing CA whose key is in a PKCS #11 token is
// imported by reference (the record holds the reference, nothing goes
// into DATA/ca/issuing), real serve with --pkcs11-module and --pin-file
// signs a phone's LSC with it in the token, and the LSC verifies with
// openssl under the CAPF certificate through the issuing CA. Bad input is
// refused with its own message and changes nothing; serve without the
// token's module refuses to start, naming the reference. ca issuer
// create --key makes the certificate of a token key pair, signed by the
// active CAPF certificate.
func TestCAIssuerInToken(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	dir := t.TempDir()
	root, capfFile := issuerRoot(t, data, dir)

	ref := h.GenerateECDSA(t, "issuing-ca", elliptic.P256())
	pub := tokenPublic(t, h, ref)
	issuing := sign(t, root, caTemplate("Token Issuing"), pub, nil)
	issuingFile := writePEM(t, dir, "issuing.pem", nil, issuing)
	other := h.GenerateECDSA(t, "issuing-ca-other", elliptic.P256())
	leafTmpl := caTemplate("Not a CA")
	leafTmpl.IsCA, leafTmpl.KeyUsage = false, x509.KeyUsageDigitalSignature
	notCA := writePEM(t, dir, "notca.pem", nil, sign(t, root, leafTmpl, pub, nil))
	foreign := writePEM(t, dir, "foreign.pem", nil, sign(t, newOutsideRoot(t), caTemplate("Foreign Issuing"), pub, nil))
	wrongPIN := filepath.Join(dir, "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fileKey := writePEM(t, dir, "issuing.key", ecKey(t, elliptic.P256()))
	mod, pin := []string{"--pkcs11-module", h.Module}, []string{"--pin-file", h.PINFile}
	p11 := append(append([]string{}, mod...), pin...)
	before := setSnapshot(t, data)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"fail/wrong-pin", append([]string{issuingFile, ref, "--pin-file", wrongPIN}, mod...), ExitFailure, "refused the PIN"},
		{"fail/not-the-keys-certificate", append([]string{issuingFile, other}, p11...), ExitUsage, caset.PublicKeyID(tokenPublic(t, h, other))},
		{"fail/not-a-ca", append([]string{notCA, ref}, p11...), ExitUsage, "not a CA certificate"},
		{"fail/another-pki", append([]string{foreign, ref}, p11...), ExitUsage, "not signed by a CAPF certificate of the set"},
		{"fail/no-module", append([]string{issuingFile, ref}, pin...), ExitUsage, "give the vendor's module with --pkcs11-module"},
		{"fail/missing-object", append([]string{issuingFile, h.Ref("no-such-issuing")}, p11...), ExitNotFound, "holds no key pair"},
		{"fail/module-with-file-key", append([]string{issuingFile, fileKey}, mod...), ExitUsage, "go with a pkcs11: key reference"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, data, append([]string{"ca", "issuer", "import"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d (want %d): stderr lacks %q:\n%s", code, tt.code, tt.want, errOut)
			}
		})
	}
	if after := setSnapshot(t, data); after != before {
		t.Fatalf("a refused import changed %s, was %s", after, before)
	}

	out, errOut, code := run(t, data, append([]string{"ca", "issuer", "import", issuingFile, ref}, p11...)...)
	if code != ExitOK || !strings.Contains(out, "in a PKCS #11 token, "+ref) {
		t.Fatalf("issuer import of a token key: exit %d: %s%s", code, out, errOut)
	}
	issuingID, _ := caset.KeyID(issuing)
	if r, ok := storedIssuing(t, data); !ok || r.ID != issuingID || r.KeyRef != ref {
		t.Fatalf("stored issuing CA %+v (%v): want %s with the key reference %s", r, ok, issuingID, ref)
	}
	if _, err := os.Stat(filepath.Join(datadir.Dir(data).CA(), issuingCADir)); !os.IsNotExist(err) {
		t.Errorf("DATA/ca/issuing exists (%v): a token issuing CA has no key files", err)
	}

	// serve without the token's module refuses, naming the reference.
	if _, errOut, code := run(t, data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", ""); code == ExitOK || !strings.Contains(errOut, ref) || !strings.Contains(errOut, "--pkcs11-module") {
		t.Errorf("serve without the module: exit %d: %s", code, errOut)
	}

	// A phone enrols against real serve; its LSC is signed in the token.
	const name = "SEP00AABBCC0022"
	if out, errOut, code := run(t, data, "device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	sout, stop := startServe(t, data, append([]string{"--listen", "127.0.0.1:0", "--admin-listen", ""}, p11...)...)
	m := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if m == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	state := filepath.Join(dir, "phone")
	if out, errOut, code := run(t, data, "phone", name, "--server", m[1], "--ca", capfFile, "--state", state, "--retries", "0", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("enrol: exit %d: %s%s", code, out, errOut)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exited %d", code)
	}
	lscFile := filepath.Join(state, phonesim.FileLSC)
	lsc := readCert(t, lscFile)
	if !bytes.Equal(lsc.RawIssuer, issuing.RawSubject) || lsc.CheckSignatureFrom(issuing) != nil {
		t.Fatalf("the LSC is issued by %s, want the token issuing CA %s", lsc.Issuer, issuing.Subject)
	}
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, "-untrusted", issuingFile, lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -CAfile capf.pem -untrusted issuing.pem: %v\n%s", err, b)
	}
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, lscFile).CombinedOutput(); err == nil {
		t.Errorf("openssl verify accepts the LSC without its issuing CA:\n%s", b)
	}

	// ca issuer create --key: the certificate of a token key pair.
	if out, errOut, code := run(t, data, "ca", "issuer", "remove", "--force"); code != ExitOK {
		t.Fatalf("issuer remove: exit %d: %s%s", code, out, errOut)
	}
	big := h.GenerateRSA(t, "issuing-ca-1024", 1024)
	before = setSnapshot(t, data)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/short-rsa", append([]string{"--key", big}, p11...), "phones accept RSA of 2048 to 4096 bits"},
		{"fail/with-algorithm", append([]string{"--key", other, "--key-algorithm", "ec256"}, p11...), "uses the token's key pair"},
		{"fail/file-key", append([]string{"--key", fileKey}, p11...), "want a key in a PKCS #11 token"},
		{"fail/wrong-pin", append([]string{"--key", other, "--pin-file", wrongPIN}, mod...), "refused the PIN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, data, append([]string{"ca", "issuer", "create"}, tt.args...)...)
			if code == ExitOK || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d: stderr lacks %q:\n%s", code, tt.want, errOut)
			}
		})
	}
	if after := setSnapshot(t, data); after != before {
		t.Fatalf("a refused create changed %s, was %s", after, before)
	}
	if out, errOut, code := run(t, data, append([]string{"ca", "issuer", "create", "--key", other}, p11...)...); code != ExitOK {
		t.Fatalf("issuer create --key: exit %d: %s%s", code, out, errOut)
	}
	exported, errOut, code := run(t, data, "ca", "issuer", "export")
	if code != ExitOK {
		t.Fatalf("issuer export: exit %d: %s", code, errOut)
	}
	made, err := x509.ParseCertificate(pemBlock(t, exported))
	if err != nil {
		t.Fatal(err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if !made.PublicKey.(equaler).Equal(tokenPublic(t, h, other)) || made.CheckSignatureFrom(root.cert) != nil || !made.IsCA {
		t.Fatalf("issuer create --key made %s (issued by %s): want a CA certificate for the token key, signed by the CAPF certificate", made.Subject, made.Issuer)
	}
	madeID, _ := caset.KeyID(made)
	if r, ok := storedIssuing(t, data); !ok || r.ID != madeID || r.KeyRef != other {
		t.Fatalf("stored issuing CA %+v (%v): want %s with the key reference %s", r, ok, madeID, other)
	}
}

// TestCAIssuerTokenOnKEKCluster: on PostgreSQL with the keys under a KEK,
// an issuing CA whose key is in the token is stored as its reference
// alone (no row in the keys table, nothing in DATA/ca), and a node started
// with the DSN, the KEK file and the token's module and PIN signs LSCs
// with it.
func TestCAIssuerTokenOnKEKCluster(t *testing.T) {
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
	ref := h.GenerateECDSA(t, "issuing-cluster", elliptic.P256())
	p11 := []string{"--pkcs11-module", h.Module, "--pin-file", h.PINFile}
	out, errOut, code := cl(append([]string{"ca", "issuer", "create", "--key", ref}, p11...)...)
	if code != ExitOK || !strings.Contains(out, "in a PKCS #11 token, "+ref) {
		t.Fatalf("ca issuer create --key on a KEK cluster: exit %d: %s%s", code, out, errOut)
	}
	if es, _ := os.ReadDir(filepath.Join(data, "ca")); len(es) != 0 {
		t.Errorf("a token issuing CA on a KEK cluster wrote %d entries into DATA/ca", len(es))
	}
	st, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, ok, err := st.IssuingCA(t.Context())
	if err != nil || !ok || r.KeyRef != ref {
		st.Close()
		t.Fatalf("stored issuing CA %+v (%v, %v): want the key reference %s", r, ok, err, ref)
	}
	ks, err := st.ListKeys(t.Context())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if strings.HasPrefix(k.ID, caset.IssuingKeyPrefix) {
			t.Errorf("the keys table holds %s for the token issuing CA", k.ID)
		}
	}
	issuing, err := r.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	capf, errOut, code := cl("ca", "export")
	if code != ExitOK {
		t.Fatalf("ca export: exit %d: %s", code, errOut)
	}
	dir := t.TempDir()
	capfFile := filepath.Join(dir, "capf.pem")
	if err := os.WriteFile(capfFile, []byte(capf), 0o644); err != nil {
		t.Fatal(err)
	}
	const name = "SEP00AABBCC0033"
	if out, errOut, code := cl("device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", "ec256"); code != ExitOK {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	sout, stop := startServe(t, t.TempDir(), append([]string{"--db", dsn, "--kek-file", kekFile, "--listen", "127.0.0.1:0", "--admin-listen", ""}, p11...)...)
	a := regexp.MustCompile(`listening \(phones\): (\S+)`).FindStringSubmatch(sout.String())
	if a == nil {
		t.Fatalf("no phone address in:\n%s", sout.String())
	}
	state := filepath.Join(dir, "phone")
	if out, errOut, code := run(t, t.TempDir(), "phone", name, "--server", a[1], "--ca", capfFile, "--state", state, "--retries", "0", "--auth-mode", "null"); code != ExitOK {
		t.Fatalf("enrol: exit %d: %s%s", code, out, errOut)
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exited %d", code)
	}
	lscFile := filepath.Join(state, phonesim.FileLSC)
	if lsc := readCert(t, lscFile); lsc.CheckSignatureFrom(issuing) != nil {
		t.Fatalf("the LSC is issued by %s, want the token issuing CA %s", lsc.Issuer, issuing.Subject)
	}
	if b, err := exec.Command("openssl", "verify", "-CAfile", capfFile, "-untrusted", writePEM(t, dir, "issuing.pem", nil, issuing), lscFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -CAfile capf.pem -untrusted issuing.pem: %v\n%s", err, b)
	}
}

// TestCAIssuerUnderTokenCAPF: with the active CAPF certificate's key in
// the token, ca issuer create signs the issuing CA there when given the
// module and PIN, and without them is refused, changing nothing.
func TestCAIssuerUnderTokenCAPF(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	data := initData(t)
	ref, capf, _ := tokenCA(t, h, data, "capf-ca-issuer")
	before := setSnapshot(t, data)
	if _, errOut, code := run(t, data, "ca", "issuer", "create", "--key-algorithm", "ec256"); code == ExitOK || !strings.Contains(errOut, ref) || !strings.Contains(errOut, "--pkcs11-module") {
		t.Fatalf("issuer create without the token: exit %d: %s", code, errOut)
	}
	if after := setSnapshot(t, data); after != before {
		t.Fatalf("a refused create changed %s, was %s", after, before)
	}
	if out, errOut, code := run(t, data, "ca", "issuer", "create", "--key-algorithm", "ec256", "--pkcs11-module", h.Module, "--pin-file", h.PINFile); code != ExitOK {
		t.Fatalf("issuer create: exit %d: %s%s", code, out, errOut)
	}
	exported, errOut, code := run(t, data, "ca", "issuer", "export")
	if code != ExitOK {
		t.Fatalf("issuer export: exit %d: %s", code, errOut)
	}
	made, err := x509.ParseCertificate(pemBlock(t, exported))
	if err != nil {
		t.Fatal(err)
	}
	if err := made.CheckSignatureFrom(capf); err != nil {
		t.Fatalf("the issuing CA %s is not signed by the token CAPF certificate: %v", made.Subject, err)
	}
	// The command closed the CAPF key it opened: a token still logged in
	// by a key left open would take any PIN in this process.
	wrongPIN := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(wrongPIN, []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := keyref.LoadString(t.Context(), ref, keyref.Options{Module: h.Module, PINFile: wrongPIN}); !errors.Is(err, keyref.ErrWrongPIN) {
		if k != nil {
			k.Close()
		}
		t.Fatalf("a wrong PIN after ca issuer create: %v, want %v (the command left the token logged in)", err, keyref.ErrWrongPIN)
	}
}
