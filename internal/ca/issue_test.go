package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// checkLSCProfile checks an issued LSC field by field against the profile
// of capf-protocol.md, "Issued LSC".
func checkLSCProfile(t *testing.T, a *Authority, got *Issued, name string, pub crypto.PublicKey) {
	t.Helper()
	c := got.Certificate
	ca := a.Certificate()
	parsed, err := x509.ParseCertificate(got.DER)
	if err != nil || !bytes.Equal(parsed.Raw, c.Raw) {
		t.Fatalf("DER does not parse to Certificate: %v", err)
	}

	// Subject and issuer.
	if c.Subject.CommonName != name {
		t.Errorf("subject CN = %q, want %q", c.Subject.CommonName, name)
	}
	for _, f := range []struct {
		what      string
		got, want []string
	}{
		{"O", c.Subject.Organization, ca.Subject.Organization},
		{"OU", c.Subject.OrganizationalUnit, ca.Subject.OrganizationalUnit},
		{"L", c.Subject.Locality, ca.Subject.Locality},
		{"ST", c.Subject.Province, ca.Subject.Province},
		{"C", c.Subject.Country, ca.Subject.Country},
	} {
		if !slices.Equal(f.got, f.want) {
			t.Errorf("subject %s = %q, want %q (copied from the issuer)", f.what, f.got, f.want)
		}
	}
	if !bytes.Equal(c.RawIssuer, ca.RawSubject) {
		t.Errorf("issuer = %q, want %q", c.Issuer, ca.Subject)
	}

	// Serial.
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 || c.SerialNumber.BitLen() > 127 {
		t.Errorf("serial %x: want positive, 64 to 127 bits", c.SerialNumber)
	}
	if got.Serial.Cmp(c.SerialNumber) != 0 {
		t.Errorf("Serial %x differs from the certificate's %x", got.Serial, c.SerialNumber)
	}
	if want := strings.ToUpper(fmt.Sprintf("%x", c.SerialNumber.Bytes())); got.SerialHex != want {
		t.Errorf("SerialHex = %q, want %q", got.SerialHex, want)
	}

	// Extensions.
	critical := map[string]bool{}
	for _, e := range c.Extensions {
		critical[e.Id.String()] = e.Critical
	}
	if !c.BasicConstraintsValid || c.IsCA || !critical["2.5.29.19"] {
		t.Errorf("basic constraints: valid %v CA %v critical %v; want CA:false, critical", c.BasicConstraintsValid, c.IsCA, critical["2.5.29.19"])
	}
	wantKU := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	if _, isEC := pub.(*ecdsa.PublicKey); isEC {
		wantKU = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	}
	if c.KeyUsage != wantKU || !critical["2.5.29.15"] {
		t.Errorf("key usage = %b critical %v, want %b critical", c.KeyUsage, critical["2.5.29.15"], wantKU)
	}
	wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageIPSECEndSystem}
	if !slices.Equal(c.ExtKeyUsage, wantEKU) || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("extended key usage = %v %v, want %v", c.ExtKeyUsage, c.UnknownExtKeyUsage, wantEKU)
	}
	var ekuOIDs []asn1.ObjectIdentifier
	for _, e := range c.Extensions {
		if e.Id.String() == "2.5.29.37" {
			if _, err := asn1.Unmarshal(e.Value, &ekuOIDs); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(ekuOIDs) != "[1.3.6.1.5.5.7.3.1 1.3.6.1.5.5.7.3.2 1.3.6.1.5.5.7.3.5]" {
		t.Errorf("extended key usage OIDs = %v", ekuOIDs)
	}
	uris, err := rawSANURIs(c)
	if err != nil || len(uris) != 1 || uris[0] != name {
		t.Errorf("SAN URIs as encoded = %q (%v), want exactly [%q]", uris, err, name)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != name {
		t.Errorf("SAN URIs as parsed = %v, want %q", c.URIs, name)
	}
	if len(c.DNSNames)+len(c.EmailAddresses)+len(c.IPAddresses) != 0 {
		t.Errorf("unexpected SANs %v %v %v", c.DNSNames, c.EmailAddresses, c.IPAddresses)
	}
	if !bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId) || len(c.AuthorityKeyId) == 0 {
		t.Errorf("authority key id %x, want the CAPF subject key id %x", c.AuthorityKeyId, ca.SubjectKeyId)
	}

	// Key, signature, validity.
	if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.PublicKey) {
		t.Error("certificate carries another public key")
	}
	wantSig := map[x509.SignatureAlgorithm]bool{x509.SHA256WithRSA: true, x509.ECDSAWithSHA256: true, x509.ECDSAWithSHA384: true}
	if c.SignatureAlgorithm != a.sigAlg || !wantSig[c.SignatureAlgorithm] {
		t.Errorf("signature algorithm %v", c.SignatureAlgorithm)
	}
	if err := c.CheckSignatureFrom(ca); err != nil {
		t.Errorf("signature: %v", err)
	}
	if want := testNow.Add(-5 * time.Minute); !c.NotBefore.Equal(want) || !got.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, want)
	}
	if want := testNow.Add(DefaultLSCValidity); !c.NotAfter.Equal(want) || !got.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter, want)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: a.Roots(), CurrentTime: testNow,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("does not verify as a client certificate: %v", err)
	}
}

func TestIssue(t *testing.T) {
	for _, caAlg := range []KeyAlgorithm{RSA2048, ECP256, ECP384} {
		for _, spec := range []string{"rsa512", "rsa1024", "rsa2048", "rsa4096", "ec256", "ec384", "ec521"} {
			if caAlg == ECP384 && spec != "rsa2048" && spec != "ec384" {
				continue // P-384 CAPF: two cases are enough
			}
			t.Run(fmt.Sprintf("ok/%s-ca/%s", caAlg, spec), func(t *testing.T) {
				a, signer := withCountingSigner(testAuthority(t, caAlg))
				pub := phoneKey(t, spec).Public()
				const name = "SEP001122334455"
				got, err := a.Issue(context.Background(), IssueRequest{DeviceName: name, PublicKey: pub})
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				if n := signer.n.Load(); n != 1 {
					t.Errorf("signed %d times, want once", n)
				}
				checkLSCProfile(t, a, got, name, pub)
			})
		}
	}
}

func TestIssueDeviceNames(t *testing.T) {
	a := testAuthority(t, ECP256)
	pub := phoneKey(t, "ec256").Public()
	for _, name := range []string{"SEP58971ECC97C1", "CSFJDOE", "BOTJDOE", "TCT-john.doe_01", "sep001122334455", strings.Repeat("A", 64)} {
		t.Run("ok/"+name[:min(len(name), 20)], func(t *testing.T) {
			got, err := a.Issue(context.Background(), IssueRequest{DeviceName: name, PublicKey: pub})
			if err != nil {
				t.Fatal(err)
			}
			checkLSCProfile(t, a, got, name, pub)
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	ec256 := phoneKey(t, "ec256").Public()
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	oddN := func(bits int) *big.Int {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return n.Add(n, big.NewInt(1))
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		req  IssueRequest
		kind error
	}{
		{"fail/rsa256-key", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: &rsa.PublicKey{N: oddN(256), E: 65537}}, fault.ErrInvalid},
		{"fail/rsa511-key", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: &rsa.PublicKey{N: oddN(511), E: 65537}}, fault.ErrInvalid},
		{"fail/rsa8192-key", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: &rsa.PublicKey{N: oddN(8192), E: 65537}}, fault.ErrInvalid},
		{"fail/rsa-even-exponent", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: &rsa.PublicKey{N: oddN(2048), E: 65536}}, fault.ErrInvalid},
		{"fail/rsa-nil-modulus", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: &rsa.PublicKey{}}, fault.ErrInvalid},
		{"fail/p224-key", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: p224.Public()}, fault.ErrInvalid},
		//lint:ignore SA1019 an off-curve point can only be built from raw coordinates
		{"fail/ec-point-off-curve", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}}, fault.ErrInvalid},
		{"fail/ed25519-key", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: edPub}, fault.ErrInvalid},
		{"fail/no-key", nil, IssueRequest{DeviceName: "SEP001122334455", PublicKey: nil}, fault.ErrInvalid},
		{"fail/empty-name", nil, IssueRequest{DeviceName: "", PublicKey: ec256}, fault.ErrInvalid},
		{"fail/long-name", nil, IssueRequest{DeviceName: strings.Repeat("A", 65), PublicKey: ec256}, fault.ErrInvalid},
		{"fail/space-in-name", nil, IssueRequest{DeviceName: "SEP 0011", PublicKey: ec256}, fault.ErrInvalid},
		{"fail/non-ascii-name", nil, IssueRequest{DeviceName: "SEPÄ", PublicKey: ec256}, fault.ErrInvalid},
		{"fail/control-in-name", nil, IssueRequest{DeviceName: "SEP\x00", PublicKey: ec256}, fault.ErrInvalid},
		{"fail/name-not-a-uri", nil, IssueRequest{DeviceName: "SEP%zz", PublicKey: ec256}, fault.ErrInvalid},
		{"fail/name-with-authority", nil, IssueRequest{DeviceName: "//host/x", PublicKey: ec256}, fault.ErrInvalid},
		{"fail/canceled", canceled, IssueRequest{DeviceName: "SEP001122334455", PublicKey: ec256}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, signer := withCountingSigner(testAuthority(t, ECP256))
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got, err := a.Issue(ctx, tc.req)
			if !errors.Is(err, tc.kind) || got != nil {
				t.Fatalf("Issue = %v, %v; want %v", got, err, tc.kind)
			}
			if n := signer.n.Load(); n != 0 {
				t.Errorf("signed %d times before refusing", n)
			}
		})
	}
}

func TestIssueValidity(t *testing.T) {
	opts := testOptions(t, ECP256)
	opts.Validity = 365 * 24 * time.Hour
	opts.LSCValidity = 30 * 24 * time.Hour
	a, _, err := LoadOrCreate(opts)
	if err != nil {
		t.Fatal(err)
	}
	pub := phoneKey(t, "ec256").Public()
	issue := func() *Issued {
		t.Helper()
		got, err := a.Issue(context.Background(), IssueRequest{DeviceName: "SEP001122334455", PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := issue(); !got.NotAfter.Equal(testNow.Add(opts.LSCValidity)) {
		t.Errorf("NotAfter = %v, want %v", got.NotAfter, testNow.Add(opts.LSCValidity))
	}
	a.SetLSCValidity(2 * 365 * 24 * time.Hour)
	if got := issue(); !got.NotAfter.Equal(a.Certificate().NotAfter) {
		t.Errorf("NotAfter = %v, want it cut at the CAPF expiry %v", got.NotAfter, a.Certificate().NotAfter)
	}
	// The request's validity (the session's fleet parameter) wins over
	// the authority's, and is cut at the CAPF expiry as well.
	for _, v := range []time.Duration{7 * 24 * time.Hour, 3 * 365 * 24 * time.Hour} {
		got, err := a.Issue(context.Background(), IssueRequest{DeviceName: "SEP001122334455", PublicKey: pub, Validity: v})
		if err != nil {
			t.Fatal(err)
		}
		want := testNow.Add(v)
		if want.After(a.Certificate().NotAfter) {
			want = a.Certificate().NotAfter
		}
		if !got.NotAfter.Equal(want) {
			t.Errorf("validity %v: NotAfter = %v, want %v", v, got.NotAfter, want)
		}
	}
	a.SetLSCValidity(0)
	if a.LSCValidity() != DefaultLSCValidity {
		t.Errorf("SetLSCValidity(0) left %v", a.LSCValidity())
	}

	late := a.Certificate().NotAfter.Add(time.Second)
	a.now = func() time.Time { return late }
	if _, err := a.Issue(context.Background(), IssueRequest{DeviceName: "SEP001122334455", PublicKey: pub}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Issue after the CAPF certificate expired = %v, want an error", err)
	}
}

func TestIssueSerialsDiffer(t *testing.T) {
	a := testAuthority(t, ECP256)
	pub := phoneKey(t, "ec256").Public()
	seen := map[string]bool{}
	for range 20 {
		got, err := a.Issue(context.Background(), IssueRequest{DeviceName: "SEP001122334455", PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		if seen[got.SerialHex] {
			t.Fatalf("serial %s issued twice", got.SerialHex)
		}
		seen[got.SerialHex] = true
	}
}

func TestIssueOpenSSL(t *testing.T) {
	openssl := needOpenSSL(t)
	for _, tc := range []struct {
		caAlg KeyAlgorithm
		spec  string
	}{
		{RSA2048, "rsa2048"}, {RSA2048, "ec256"}, {RSA2048, "rsa512"},
		{ECP256, "rsa1024"}, {ECP256, "ec384"}, {ECP384, "ec521"},
	} {
		t.Run(fmt.Sprintf("ok/%s-ca/%s", tc.caAlg, tc.spec), func(t *testing.T) {
			// openssl verifies at the real time, so this CAPF lives in it.
			opts := testOptions(t, tc.caAlg)
			opts.Now, opts.Rand = time.Now, nil
			a, _, err := LoadOrCreate(opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Issue(context.Background(), IssueRequest{DeviceName: "SEP001122334455", PublicKey: phoneKey(t, tc.spec).Public()})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			capf, lsc := filepath.Join(dir, "capf.pem"), filepath.Join(dir, "lsc.pem")
			_ = os.WriteFile(capf, a.CertificatePEM(), 0o644)
			_ = os.WriteFile(lsc, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: got.DER}), 0o644)

			args := []string{"verify", "-x509_strict", "-CAfile", capf}
			if strings.HasPrefix(tc.spec, "rsa") && tc.spec != "rsa2048" {
				// OpenSSL's default security level refuses leaf keys
				// below 2048 bits; old phones use them anyway.
				args = append(args, "-auth_level", "0")
			}
			for _, purpose := range []string{"", "sslclient", "sslserver"} {
				a := args
				if purpose != "" {
					a = append(slices.Clone(args), "-purpose", purpose)
				}
				out, err := exec.Command(openssl, append(a, lsc)...).CombinedOutput()
				if err != nil || !strings.Contains(string(out), ": OK") {
					t.Fatalf("openssl %s: %v\n%s", strings.Join(a, " "), err, out)
				}
			}
			out, err := exec.Command(openssl, "x509", "-in", lsc, "-noout", "-text").CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509 -text: %v\n%s", err, out)
			}
			for _, want := range []string{
				"Subject: " + opensslName(a.Certificate(), "SEP001122334455"),
				"URI:SEP001122334455",
				"CA:FALSE",
				"TLS Web Server Authentication, TLS Web Client Authentication, IPSec End System",
				"X509v3 Basic Constraints: critical",
				"X509v3 Key Usage: critical",
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("openssl x509 -text lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// opensslName is how openssl prints the LSC subject.
func opensslName(ca *x509.Certificate, cn string) string {
	s := ca.Subject
	return fmt.Sprintf("O = %s, OU = %s, CN = %s", s.Organization[0], s.OrganizationalUnit[0], cn)
}

func BenchmarkIssueRSA2048CA(b *testing.B) { benchmarkIssue(b, RSA2048) }

func BenchmarkIssueECP256CA(b *testing.B) { benchmarkIssue(b, ECP256) }

func benchmarkIssue(b *testing.B, alg KeyAlgorithm) {
	a := testAuthority(b, alg)
	req := IssueRequest{DeviceName: "SEP001122334455", PublicKey: phoneKey(b, "rsa2048").Public()}
	ctx := context.Background()
	for b.Loop() {
		if _, err := a.Issue(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIssueCRLDistributionPoint: an LSC names the CRL URL it is given, and
// none without one.
func TestIssueCRLDistributionPoint(t *testing.T) {
	a := testAuthority(t, ECP256)
	pub := phoneKey(t, "ec256").Public()
	const url = "http://capf.example.com:8080/crl"
	for _, c := range []struct {
		name, url string
		want      []string
	}{{"ok/with-url", url, []string{url}}, {"ok/without", "", nil}} {
		t.Run(c.name, func(t *testing.T) {
			got, err := a.Issue(context.Background(), IssueRequest{DeviceName: "SEP001122334455", PublicKey: pub, CRLURL: c.url})
			if err != nil {
				t.Fatal(err)
			}
			if dp := got.Certificate.CRLDistributionPoints; len(dp) != len(c.want) || (len(dp) == 1 && dp[0] != c.want[0]) {
				t.Errorf("distribution points %v, want %v", dp, c.want)
			}
			checkLSCProfile(t, a, got, "SEP001122334455", pub)
		})
	}
}
