package notify

import (
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
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI makes a CA and a server certificate it issues for 127.0.0.1,
// and writes the CA's certificate to a PEM file.
func testPKI(t *testing.T, name string) (caFile string, server tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "asterisk"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestAMIOverTLS: with a CA file the notifier speaks AMI inside TLS and
// verifies the manager's certificate: the whole exchange works against a
// manager whose certificate that CA issued, and a manager with another
// CA's certificate, or one speaking plain TCP, gets no login (the secret
// is never sent).
func TestAMIOverTLS(t *testing.T) {
	caFile, cert := testPKI(t, "pbx")
	otherCA, _ := testPKI(t, "other")
	s := startAMI(t, "ok")
	tlsAMI := &amiServer{t: t, ln: tls.NewListener(mustListen(t), &tls.Config{Certificates: []tls.Certificate{cert}}), user: "capf", secret: "s3cret", mode: "ok"}
	tlsAMI.wg.Add(1)
	go tlsAMI.serve()
	t.Cleanup(func() { tlsAMI.ln.Close(); tlsAMI.wg.Wait() })

	notifier := func(ca, addr string) *AMI {
		t.Helper()
		conf, err := AMITLS(ca, addr)
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAMI(AMIOptions{Address: addr, Username: "capf", Secret: "s3cret", Timeout: 3 * time.Second, TLS: conf})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := notifier(caFile, tlsAMI.addr()).Notify(t.Context(), "SEP001122334455"); err != nil {
		t.Fatalf("Notify over TLS: %v", err)
	}
	acts, problems := tlsAMI.recorded()
	if len(problems) > 0 || len(acts) != 3 || acts[1]["Action"] != "PJSIPNotify" {
		t.Fatalf("over TLS the manager saw %v, problems %q", acts, problems)
	}
	err := notifier(otherCA, tlsAMI.addr()).Notify(t.Context(), "SEP001122334455")
	if err == nil || !strings.Contains(err.Error(), "cannot connect to the AMI") {
		t.Errorf("a manager certificate from another CA: %v, want refused", err)
	}
	err = notifier(caFile, s.addr()).Notify(t.Context(), "SEP001122334455")
	if err == nil {
		t.Error("a plain-TCP manager with a CA file: no error")
	}
	if acts, _ := s.recorded(); len(acts) != 0 {
		t.Errorf("the plain manager received %v: the secret crossed in clear", acts)
	}
	if acts, _ := tlsAMI.recorded(); len(acts) != 3 {
		t.Errorf("the TLS manager received %d actions after the refused ones, want the first 3", len(acts))
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.pem"), func() string {
		p := filepath.Join(t.TempDir(), "empty.pem")
		_ = os.WriteFile(p, []byte("not a certificate\n"), 0o644)
		return p
	}()} {
		if _, err := AMITLS(bad, "127.0.0.1:5039"); err == nil {
			t.Errorf("AMITLS(%s): no error", bad)
		}
	}
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
