package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/cli"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/wire"
)

// TestClusterIssuingCA: on PostgreSQL with the keys under a KEK, an
// issuing CA imported by one command (below a CAPF certificate that
// allows one) is taken by both running nodes within seconds, without a
// restart: a phone enrolling on the other node gets an LSC signed by the
// issuing CA that openssl verifies under the CAPF certificate through the
// issuing CA, while TLS keeps presenting the CAPF certificate. An issuing
// CA of another PKI, and a second one, are refused and change nothing.
// Removed (refused while a phone holds its LSC, unless forced), both nodes
// sign with the CAPF certificate again.
func TestClusterIssuingCA(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek")
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"); code != 0 {
		t.Fatalf("cluster init: exit %d: %s%s", code, out, errOut)
	}
	a := startKeysNode(t, dsn, kekFile)
	b := startKeysNode(t, dsn, kekFile)
	run := func(args ...string) (string, string, int) {
		return capfRun(append([]string{"--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile}, args...)...)
	}
	cl := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("capf %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	write := func(name string, typ string, der []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyFile := func(name string, k crypto.Signer) string {
		t.Helper()
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}

	// A CAPF certificate that allows one CA below it, imported and
	// activated on the running cluster.
	capf, capfKey := issuingPKICA(t, "CAPF with issuer", nil, nil, 1)
	capfPEM := write("capf.pem", "CERTIFICATE", capf.Raw)
	cl("ca", "import", capfPEM, keyFile("capf.key", capfKey))
	var rows []caRow
	if err := json.Unmarshal([]byte(cl("ca", "status", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	cl("ca", "activate", rows[len(rows)-1].ID)
	deadline := time.Now().Add(10 * time.Second)
	for !tlsLeaf(t, a.phones).Equal(capf) || !tlsLeaf(t, b.phones).Equal(capf) {
		if time.Now().After(deadline) {
			t.Fatal("the nodes do not present the activated CAPF certificate 10 s later")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Refused, nothing stored: another PKI's CA, a key that is not its.
	other, otherKey := issuingPKICA(t, "Other root", nil, nil, 1)
	foreign, foreignKey := issuingPKICA(t, "Foreign issuing", other, otherKey, 0)
	issuing, issuingKey := issuingPKICA(t, "Issuing CA", capf, capfKey, 0)
	issuingPEM := write("issuing.pem", "CERTIFICATE", issuing.Raw)
	statusBefore := cl("ca", "status", "--json")
	for _, tc := range []struct{ name, cert, key, want string }{
		{"another PKI", write("foreign.pem", "CERTIFICATE", foreign.Raw), keyFile("foreign.key", foreignKey), "not signed by a CAPF certificate of the set"},
		{"another key", issuingPEM, keyFile("stray.key", foreignKey), "nothing was stored"},
	} {
		if _, errOut, code := run("ca", "issuer", "import", tc.cert, tc.key); code != cli.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("issuer import of %s: exit %d: %s, want refused naming %q", tc.name, code, errOut, tc.want)
		}
	}
	if after := cl("ca", "status", "--json"); after != statusBefore {
		t.Errorf("the refused imports changed ca status:\n%s\nwas\n%s", after, statusBefore)
	}

	// The issuing CA, imported by a command: both nodes take it.
	cl("ca", "issuer", "import", issuingPEM, keyFile("issuing.key", issuingKey))
	imported := time.Now()
	const taken = "LSCs are signed by the issuing CA"
	for !strings.Contains(a.errOut.String(), taken) || !strings.Contains(b.errOut.String(), taken) {
		if time.Since(imported) > 10*time.Second {
			t.Fatalf("the nodes did not take the issuing CA 10 s after its import:\n%s\n%s", a.errOut, b.errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("both nodes sign with the issuing CA %v after its import", time.Since(imported).Round(10*time.Millisecond))
	if _, errOut, code := run("ca", "issuer", "import", issuingPEM, filepath.Join(dir, "issuing.key")); code != cli.ExitConflict || !strings.Contains(errOut, "in place already") {
		t.Errorf("a second issuing CA: exit %d: %s", code, errOut)
	}

	// A phone enrolling on the other node: its LSC comes from the issuing
	// CA, TLS still presents the CAPF certificate.
	name := newPhoneName()
	cl("device", "add", name, "--operation", "install", "--key", "ec256")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	phoneState := t.TempDir()
	res, err := phonesim.Run(ctx, phonesim.Options{Server: b.phones, Trust: []*x509.Certificate{capf}, DeviceName: name, StateDir: phoneState,
		RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
		t.Fatalf("phone on node b: %+v %v", res, err)
	}
	if !issuedBy(res.Installed, issuing) {
		t.Fatalf("the LSC is issued by %s, want the issuing CA %s", res.Installed.Issuer, issuing.Subject)
	}
	if !tlsLeaf(t, b.phones).Equal(capf) {
		t.Error("node b no longer presents the CAPF certificate on TLS")
	}
	var status []struct {
		caRow
		Role   string `json:"role"`
		Parent string `json:"parent_id"`
	}
	if err := json.Unmarshal([]byte(cl("ca", "status", "--json")), &status); err != nil {
		t.Fatal(err)
	}
	capfID, issuingID := fmt.Sprintf("%x", capf.SubjectKeyId), fmt.Sprintf("%x", issuing.SubjectKeyId)
	if n := len(status); n < 2 || status[n-1].Role != "issuing" || status[n-1].ID != issuingID || status[n-1].Parent != capfID ||
		status[n-1].State != "signing" || status[n-1].Phones != 1 || status[n-2].Role != "capf" || status[n-2].ID != capfID {
		t.Errorf("ca status --json after the enrolment: %+v, want the issuing CA %s below %s, signing, 1 phone, last", status, issuingID, capfID)
	}
	// Removed while the phone holds its LSC (below): both nodes sign with
	// the CAPF certificate again, without a restart, and keep trusting it.
	if out := cl("ca", "issuer", "export"); out != string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuing.Raw})) {
		t.Errorf("ca issuer export = %q, want the issuing CA's PEM", out)
	}
	if out := cl("ca", "status"); !strings.Contains(out, "issuing CA: "+issuingID) || !strings.Contains(out, "below the CAPF certificate "+capfID+", 1 phones, signing") {
		t.Errorf("ca status does not show the issuing CA:\n%s", out)
	}
	lscPEM := write("lsc.pem", "CERTIFICATE", res.Installed.Raw)
	if out, err := exec.Command("openssl", "verify", "-CAfile", capfPEM, "-untrusted", issuingPEM, lscPEM).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -CAfile capf.pem -untrusted issuing.pem lsc.pem: %v\n%s", err, out)
	}
	if out, err := exec.Command("openssl", "verify", "-CAfile", capfPEM, lscPEM).CombinedOutput(); err == nil {
		t.Errorf("openssl verifies the LSC without its issuing CA:\n%s", out)
	}

	if out := cl("ca", "issuer", "remove"); !strings.Contains(out, "stays trusted for the 1 phones") {
		t.Errorf("issuer remove with a phone on it:\n%s", out)
	}
	removed := time.Now()
	const gone = "no issuing CA: the active CAPF certificate signs LSCs"
	for !strings.Contains(a.errOut.String(), gone) || !strings.Contains(b.errOut.String(), gone) {
		if time.Since(removed) > 10*time.Second {
			t.Fatalf("the nodes did not drop the issuing CA 10 s after its removal:\n%s\n%s", a.errOut, b.errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	fresh := newPhoneName()
	cl("device", "add", fresh, "--operation", "install", "--key", "ec256")
	res, err = phonesim.Run(ctx, phonesim.Options{Server: a.phones, Trust: []*x509.Certificate{capf}, DeviceName: fresh, StateDir: t.TempDir(),
		RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess || !issuedBy(res.Installed, capf) {
		t.Fatalf("a phone on node a after the removal: %+v %v, want an LSC from the CAPF certificate", res, err)
	}
	if _, errOut, code := run("ca", "issuer", "export"); code != cli.ExitNotFound {
		t.Errorf("issuer export after the removal: exit %d: %s", code, errOut)
	}
	// The first phone re-keys on node a authenticated by the removed
	// issuing CA's LSC (its key sealed in the keys table, opened by the
	// node for the CRL); ca status lists it as a former issuing CA.
	if out := cl("ca", "status"); !strings.Contains(out, "former issuing CA: "+issuingID) || !strings.Contains(out, "1 phones: still trusted") {
		t.Errorf("ca status after the removal:\n%s", out)
	}
	cl("device", "set", name, "--auth-mode", "lsc", "--operation", "install")
	res, err = phonesim.Run(ctx, phonesim.Options{Server: a.phones, Trust: []*x509.Certificate{capf}, DeviceName: name, StateDir: phoneState,
		AuthMode: phonesim.AuthModeLSC, RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess || !issuedBy(res.Installed, capf) {
		t.Fatalf("re-key on node a by the removed issuing CA's LSC: %+v %v", res, err)
	}
	for _, n := range []*keysNode{a, b} {
		if strings.Contains(n.errOut.String(), "former issuing CA's key does not open") {
			t.Errorf("a node could not open the former issuing CA's sealed key:\n%s", n.errOut)
		}
	}
	cl("ca", "issuer", "forget", issuingID)
	if out := cl("ca", "status"); strings.Contains(out, "former issuing CA") {
		t.Errorf("ca status after forget:\n%s", out)
	}
}

// issuingPKICA makes a CA certificate cn signed by parent (self-signed
// when nil) allowing pathLen CAs below it, valid for a year.
func issuingPKICA(t *testing.T, cn string, parent *x509.Certificate, parentKey crypto.Signer, pathLen int) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Test PKI"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLen: pathLen, MaxPathLenZero: pathLen == 0, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, k.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}
