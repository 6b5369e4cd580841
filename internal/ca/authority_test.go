package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

func TestParseKeyAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     KeyAlgorithm
		wantErr  bool
	}{
		{"ok/rsa2048", "rsa2048", RSA2048, false},
		{"ok/rsa3072", "rsa3072", RSA3072, false},
		{"ok/rsa4096", "RSA4096", RSA4096, false},
		{"ok/ec256", " ec256 ", ECP256, false},
		{"ok/ec384", "ec384", ECP384, false},
		{"fail/ec521", "ec521", "", true},
		{"fail/empty", "", "", true},
		{"fail/unknown", "dsa1024", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeyAlgorithm(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseKeyAlgorithm(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("error %v is not fault.Invalid", err)
			}
		})
	}
}

func TestLoadOrCreateThenReload(t *testing.T) {
	opts := testOptions(t, ECP256)
	a, created, err := LoadOrCreate(opts)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = created %v, %v; want created", created, err)
	}
	b, created, err := LoadOrCreate(opts)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate = created %v, %v; want loaded", created, err)
	}
	if !bytes.Equal(a.Certificate().Raw, b.Certificate().Raw) {
		t.Error("reloaded certificate differs")
	}
	if !a.Signer().Public().(*ecdsa.PublicKey).Equal(b.Signer().Public()) {
		t.Error("reloaded key differs")
	}
	c, err := Load(opts)
	if err != nil || !bytes.Equal(c.Certificate().Raw, a.Certificate().Raw) {
		t.Fatalf("Load = %v", err)
	}

	for name, want := range map[string]os.FileMode{KeyFile: 0o600, CertFile: 0o644, ".": 0o700} {
		fi, err := os.Stat(filepath.Join(opts.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", name, got, want)
		}
	}
	entries, _ := os.ReadDir(opts.Dir)
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want only the key and the certificate", len(entries))
	}
	keyPEM, _ := os.ReadFile(filepath.Join(opts.Dir, KeyFile))
	if blk, _ := pem.Decode(keyPEM); blk == nil || blk.Type != "PRIVATE KEY" {
		t.Errorf("key file is not a PKCS#8 PEM block")
	}
	certPEM, _ := os.ReadFile(filepath.Join(opts.Dir, CertFile))
	if !bytes.Equal(certPEM, a.CertificatePEM()) {
		t.Errorf("capf.pem differs from CertificatePEM()")
	}
}

func TestLoadOrCreateRefuses(t *testing.T) {
	// Two real pairs to mix up.
	one := testOptions(t, ECP256)
	if _, _, err := LoadOrCreate(one); err != nil {
		t.Fatal(err)
	}
	two := testOptions(t, ECP256)
	two.Rand = seededRand(2)
	if _, _, err := LoadOrCreate(two); err != nil {
		t.Fatal(err)
	}
	copyFile := func(t *testing.T, from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string)
		kind    error
		message string
	}{
		{"fail/only-key", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(one.Dir, KeyFile), filepath.Join(dir, KeyFile))
		}, fault.ErrConflict, "capf.pem does not"},
		{"fail/only-cert", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(one.Dir, CertFile), filepath.Join(dir, CertFile))
		}, fault.ErrConflict, "capf.key does not"},
		{"fail/mismatched-key", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(one.Dir, KeyFile), filepath.Join(dir, KeyFile))
			copyFile(t, filepath.Join(two.Dir, CertFile), filepath.Join(dir, CertFile))
		}, fault.ErrInvalid, "does not match"},
		{"fail/garbage-key", func(t *testing.T, dir string) {
			_ = os.WriteFile(filepath.Join(dir, KeyFile), []byte("not a key"), 0o600)
			copyFile(t, filepath.Join(one.Dir, CertFile), filepath.Join(dir, CertFile))
		}, fault.ErrInvalid, "no PEM private key"},
		{"fail/garbage-cert", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(one.Dir, KeyFile), filepath.Join(dir, KeyFile))
			_ = os.WriteFile(filepath.Join(dir, CertFile), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600)
		}, fault.ErrInvalid, "bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions(t, ECP256)
			if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, opts.Dir)
			before, _ := os.ReadDir(opts.Dir)
			for _, load := range []func() error{
				func() error { _, _, err := LoadOrCreate(opts); return err },
				func() error { _, err := Load(opts); return err },
			} {
				err := load()
				if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.message) {
					t.Errorf("error = %v; want %v containing %q", err, tc.kind, tc.message)
				}
			}
			after, _ := os.ReadDir(opts.Dir)
			if len(after) != len(before) {
				t.Errorf("directory changed: %d entries before, %d after", len(before), len(after))
			}
		})
	}
}

func TestLoadNotFound(t *testing.T) {
	opts := testOptions(t, RSA2048)
	_, err := Load(opts)
	if !errors.Is(err, fault.ErrNotFound) || !strings.Contains(err.Error(), "capf serve") || !strings.Contains(err.Error(), opts.Dir) {
		t.Fatalf("Load of an empty directory = %v; want fault.NotFound naming the directory and `capf serve`", err)
	}
	if _, err := os.Stat(opts.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load created %s", opts.Dir)
	}
	if _, err := Load(Options{}); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("Load without a directory = %v; want fault.Invalid", err)
	}
}

func TestCACertificate(t *testing.T) {
	oidBasicConstraints := asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage := asn1.ObjectIdentifier{2, 5, 29, 15}
	for _, tc := range []struct {
		name    string
		alg     KeyAlgorithm
		sigAlg  x509.SignatureAlgorithm
		keyBits int
	}{
		{"ok/rsa2048", RSA2048, x509.SHA256WithRSA, 2048},
		{"ok/rsa3072", RSA3072, x509.SHA256WithRSA, 3072},
		{"ok/ec256", ECP256, x509.ECDSAWithSHA256, 256},
		{"ok/ec384", ECP384, x509.ECDSAWithSHA384, 384},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAuthority(t, tc.alg)
			c := a.Certificate()
			if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 1 || c.MaxPathLenZero {
				t.Errorf("basic constraints: IsCA %v valid %v MaxPathLen %d zero %v; want CA with path length 1 (room for one issuing CA)",
					c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
			}
			for _, e := range c.Extensions {
				if (e.Id.Equal(oidBasicConstraints) || e.Id.Equal(oidKeyUsage)) && !e.Critical {
					t.Errorf("extension %v is not critical", e.Id)
				}
			}
			wantKU := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
			switch k := c.PublicKey.(type) {
			case *rsa.PublicKey:
				wantKU |= x509.KeyUsageKeyEncipherment
				if k.N.BitLen() != tc.keyBits {
					t.Errorf("RSA key of %d bits, want %d", k.N.BitLen(), tc.keyBits)
				}
			case *ecdsa.PublicKey:
				if k.Curve.Params().BitSize != tc.keyBits {
					t.Errorf("EC key on %s, want %d bits", k.Curve.Params().Name, tc.keyBits)
				}
			default:
				t.Fatalf("CAPF certificate has a %T key, want RSA or ECDSA", k)
			}
			if c.KeyUsage != wantKU {
				t.Errorf("key usage = %b, want %b", c.KeyUsage, wantKU)
			}
			wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageIPSECEndSystem}
			if !slices.Equal(c.ExtKeyUsage, wantEKU) {
				t.Errorf("extended key usage = %v, want %v", c.ExtKeyUsage, wantEKU)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %x is not a positive number of at least 64 bits", c.SerialNumber)
			}
			if len(c.SubjectKeyId) == 0 {
				t.Error("no subject key id")
			}
			if c.SignatureAlgorithm != tc.sigAlg {
				t.Errorf("signature algorithm %v, want %v", c.SignatureAlgorithm, tc.sigAlg)
			}
			if !c.NotBefore.Equal(testNow.Add(-time.Hour)) || !c.NotAfter.Equal(testNow.AddDate(5, 0, 0)) {
				t.Errorf("validity %v – %v, want an hour before now to five years after", c.NotBefore, c.NotAfter)
			}
			if !regexp.MustCompile(`^CAPF-[0-9a-f]{8}$`).MatchString(c.Subject.CommonName) ||
				strings.Join(c.Subject.Organization, ",") != "CAPF" || strings.Join(c.Subject.OrganizationalUnit, ",") != "VOICE" {
				t.Errorf("default subject = %q, want CN=CAPF-xxxxxxxx,OU=VOICE,O=CAPF", c.Subject)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: a.Roots(), CurrentTime: testNow}); err != nil {
				t.Errorf("does not verify as a TLS server certificate: %v", err)
			}
			tlsCert := a.TLSCertificate()
			if tlsCert.Leaf != c || len(tlsCert.Certificate) != 1 || !bytes.Equal(tlsCert.Certificate[0], c.Raw) || tlsCert.PrivateKey != a.Signer() {
				t.Errorf("TLSCertificate is not the CAPF certificate and key with Leaf set")
			}
		})
	}
}

func TestCreateOptions(t *testing.T) {
	opts := testOptions(t, ECP256)
	opts.Subject = pkix.Name{CommonName: "CAPF-test", Organization: []string{"Example"}, Country: []string{"JP"}}
	opts.Validity = 2 * 365 * 24 * time.Hour
	a, _, err := LoadOrCreate(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := a.Certificate()
	if got := c.Subject.String(); got != "CN=CAPF-test,O=Example,C=JP" {
		t.Errorf("subject = %q", got)
	}
	if !c.NotAfter.Equal(testNow.Add(opts.Validity)) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter, testNow.Add(opts.Validity))
	}

	opts = testOptions(t, ECP256)
	opts.Subject = pkix.Name{Organization: []string{"Example"}}
	a, _, err = LoadOrCreate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Certificate().Subject; !strings.HasPrefix(s.CommonName, "CAPF-") || len(s.OrganizationalUnit) != 0 {
		t.Errorf("subject without CN = %q, want a generated CN and the given O only", s)
	}
}

func TestLoadImportedKeyFormats(t *testing.T) {
	// A key in PKCS#1 or SEC 1 form (imported from elsewhere) loads too.
	for _, tc := range []struct {
		name string
		alg  KeyAlgorithm
	}{{"ok/pkcs1", RSA2048}, {"ok/sec1", ECP256}} {
		t.Run(tc.name, func(t *testing.T) {
			a := testAuthority(t, tc.alg)
			dir := t.TempDir()
			var blk *pem.Block
			switch k := a.Signer().(type) {
			case *rsa.PrivateKey:
				blk = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
			case *ecdsa.PrivateKey:
				der, err := x509.MarshalECPrivateKey(k)
				if err != nil {
					t.Fatal(err)
				}
				blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
			default:
				t.Fatalf("CAPF signer is a %T, want RSA or ECDSA", k)
			}
			_ = os.WriteFile(filepath.Join(dir, KeyFile), pem.EncodeToMemory(blk), 0o600)
			_ = os.WriteFile(filepath.Join(dir, CertFile), a.CertificatePEM(), 0o644)
			b, err := Load(Options{Dir: dir})
			if err != nil || !bytes.Equal(b.Certificate().Raw, a.Certificate().Raw) {
				t.Fatalf("Load = %v", err)
			}
		})
	}
}

func TestRootsIsACopy(t *testing.T) {
	a := testAuthority(t, ECP256)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other := &x509.Certificate{Raw: []byte{1}, RawSubject: []byte{0x30, 0}, PublicKey: k.Public()}
	p := x509.NewCertPool()
	p.AddCert(a.Certificate())
	if !a.Roots().Equal(p) {
		t.Fatal("Roots() is not the pool of the CAPF certificate")
	}
	changed := a.Roots()
	changed.AddCert(other)
	if changed.Equal(p) {
		t.Fatal("adding a certificate left the pool equal: the test cannot see a change")
	}
	if !a.Roots().Equal(p) {
		t.Error("Roots() was changed through a returned pool")
	}
}
