//go:build cgo

//lint:file-ignore SA1019 the legacy TLS profile's RSA key exchange is PKCS #1 v1.5 encryption; these tests prove the token does it

package keyref_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	keyreftest.Cleanup()
	os.Exit(code)
}

// loadToken loads ref from the SoftHSM2 token and closes it when the test
// ends.
func loadToken(t *testing.T, h *keyreftest.HSM, ref string) *keyref.Key {
	t.Helper()
	k, err := keyref.LoadString(context.Background(), ref, keyref.Options{Module: h.Module, PINFile: h.PINFile})
	if err != nil {
		t.Fatalf("load %s: %v", ref, err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// TestTokenSignsCertificates makes a CA whose key is in the token, signs a
// leaf with it, and checks both with crypto/x509 and `openssl verify`:
// RSA with PKCS #1 v1.5 and PSS, and ECDSA P-256.
func TestTokenSignsCertificates(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	rsaRef := h.GenerateRSA(t, "sign-rsa", 2048)
	ecRef := h.GenerateECDSA(t, "sign-p256", elliptic.P256())
	for _, tt := range []struct {
		name string
		ref  string
		alg  x509.SignatureAlgorithm
	}{
		{"rsa-pkcs1v15", rsaRef, x509.SHA256WithRSA},
		{"rsa-pss", rsaRef, x509.SHA256WithRSAPSS},
		{"ecdsa-p256", ecRef, x509.ECDSAWithSHA256},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := loadToken(t, h, tt.ref)
			if _, isRSA := k.Public().(*rsa.PublicKey); isRSA != strings.Contains(tt.name, "rsa") {
				t.Fatalf("public key is a %T", k.Public())
			}
			now := time.Now()
			caTmpl := &x509.Certificate{
				SerialNumber:          big.NewInt(1),
				Subject:               pkix.Name{CommonName: "token CA " + tt.name},
				NotBefore:             now.Add(-time.Hour),
				NotAfter:              now.Add(time.Hour),
				IsCA:                  true,
				BasicConstraintsValid: true,
				KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
				SignatureAlgorithm:    tt.alg,
			}
			caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, k.Public(), k.Signer())
			if err != nil {
				t.Fatalf("self-sign in the token: %v", err)
			}
			ca, err := x509.ParseCertificate(caDER)
			if err != nil {
				t.Fatal(err)
			}
			if err := ca.CheckSignatureFrom(ca); err != nil {
				t.Fatalf("CA self-signature: %v", err)
			}
			leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			leafTmpl := &x509.Certificate{
				SerialNumber:       big.NewInt(2),
				Subject:            pkix.Name{CommonName: "SEP001122334455"},
				NotBefore:          now.Add(-time.Hour),
				NotAfter:           now.Add(time.Hour),
				KeyUsage:           x509.KeyUsageDigitalSignature,
				ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
				SignatureAlgorithm: tt.alg,
			}
			leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, k.Signer())
			if err != nil {
				t.Fatalf("sign a leaf in the token: %v", err)
			}
			leaf, _ := x509.ParseCertificate(leafDER)
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("x509 verify: %v", err)
			}
			opensslVerify(t, caDER, leafDER)
		})
	}
}

// opensslVerify checks leaf against ca with `openssl verify`.
func opensslVerify(t *testing.T, caDER, leafDER []byte) {
	t.Helper()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("CAPF_REQUIRE_SOFTHSM") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Log("openssl is not installed: x509 verification only")
		return
	}
	dir := t.TempDir()
	caFile, leafFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem")
	_ = os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	_ = os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644)
	out, err := exec.Command(openssl, "verify", "-CAfile", caFile, leafFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Fatalf("openssl verify: %v: %s", err, out)
	}
}

// TestTokenDecrypts decrypts with an RSA key in the token: PKCS #1 v1.5,
// OAEP, and crypto/tls's session-key form, which gives random bytes
// instead of an error for a ciphertext that does not decrypt.
func TestTokenDecrypts(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	k := loadToken(t, h, h.GenerateRSA(t, "decrypt-rsa", 2048))
	d, err := k.Decrypter()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public().(*rsa.PublicKey)
	secret := []byte("pre-master secret of exactly forty-eight bytes!!")

	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, secret)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := d.Decrypt(rand.Reader, ct, nil); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("PKCS #1 v1.5: %q, %v", pt, err)
	}
	if pt, err := d.Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 48}); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("session key: %q, %v", pt, err)
	}
	// SoftHSM2 decrypts OAEP with SHA-1 only.
	oaep, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := d.Decrypt(rand.Reader, oaep, &rsa.OAEPOptions{Hash: crypto.SHA1}); err != nil || !bytes.Equal(pt, secret) {
		t.Fatalf("OAEP: %q, %v", pt, err)
	}

	// A tampered ciphertext: an error for plain PKCS #1 v1.5, random bytes
	// of the asked length (not the secret) for the session-key form.
	bad := bytes.Clone(ct)
	bad[len(bad)/2] ^= 0xff
	if _, err := d.Decrypt(rand.Reader, bad, nil); err == nil {
		t.Fatal("tampered ciphertext decrypted without error")
	}
	pt, err := d.Decrypt(rand.Reader, bad, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 48})
	if err != nil || len(pt) != 48 || bytes.Equal(pt, secret) {
		t.Fatalf("tampered session key: %x, %v; want 48 random bytes", pt, err)
	}
	// The right plaintext of the wrong length is refused the same way.
	short, _ := rsa.EncryptPKCS1v15(rand.Reader, pub, secret[:47])
	if pt, err := d.Decrypt(rand.Reader, short, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 48}); err != nil || len(pt) != 48 || bytes.HasPrefix(pt, secret[:47]) {
		t.Fatalf("short session key: %x, %v", pt, err)
	}

	ec := loadToken(t, h, h.GenerateECDSA(t, "decrypt-p256", elliptic.P256()))
	if _, err := ec.Decrypter(); !errors.Is(err, keyref.ErrNotDecrypter) {
		t.Fatalf("Decrypter of an ECDSA token key: %v", err)
	}
}

// TestTokenTLSRSAKeyExchange runs a TLS 1.2 handshake with RSA key
// exchange only (what the legacy profile offers 79xx phones), the server's
// key in the token: the pre-master secret is decrypted by the token.
func TestTokenTLSRSAKeyExchange(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	k := loadToken(t, h, h.GenerateRSA(t, "tls-rsa", 2048))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "capf.test"},
		DNSNames:     []string{"capf.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k.Signer())
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	suites := []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	srvConf := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k.Signer(), Leaf: cert}},
		CipherSuites: suites,
		MaxVersion:   tls.VersionTLS12,
	}
	cliConf := &tls.Config{RootCAs: roots, ServerName: "capf.test", CipherSuites: suites, MaxVersion: tls.VersionTLS12}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = a.SetDeadline(time.Now().Add(30 * time.Second))
	_ = b.SetDeadline(time.Now().Add(30 * time.Second))
	srv, cli := tls.Server(a, srvConf), tls.Client(b, cliConf)
	errc := make(chan error, 1)
	go func() {
		if err := srv.Handshake(); err != nil {
			errc <- err
			return
		}
		buf := make([]byte, 5)
		_, err := srv.Read(buf)
		if err == nil && string(buf) != "hello" {
			err = errors.New("server read " + string(buf))
		}
		errc <- err
	}()
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if cs := cli.ConnectionState(); cs.CipherSuite != tls.TLS_RSA_WITH_AES_128_CBC_SHA {
		t.Fatalf("negotiated %s", tls.CipherSuiteName(cs.CipherSuite))
	}
	if _, err := cli.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// TestTokenErrors: every way a PKCS #11 reference fails has its own
// error, and none of them shows the PIN.
func TestTokenErrors(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	p256 := h.GenerateECDSA(t, "errors-p256", elliptic.P256())
	twice := h.GenerateECDSA(t, "errors-twice", elliptic.P256())
	twiceRef, err := keyref.Parse(twice)
	if err != nil {
		t.Fatal(err)
	}
	h.GenerateECDSALabelled(t, twiceRef.Object, elliptic.P256())
	dir := t.TempDir()
	wrongPIN := filepath.Join(dir, "wrong-pin")
	_ = os.WriteFile(wrongPIN, []byte("000000\n"), 0o600)
	openPIN := filepath.Join(dir, "open-pin")
	_ = os.WriteFile(openPIN, []byte(keyreftest.PIN+"\n"), 0o600)
	_ = os.Chmod(openPIN, 0o644)
	notModule := filepath.Join(dir, "libnot.so")
	_ = os.WriteFile(notModule, []byte("not a shared library"), 0o644)
	good := keyref.Options{Module: h.Module, PINFile: h.PINFile}
	with := func(f func(*keyref.Options)) keyref.Options { o := good; f(&o); return o }
	for _, tt := range []struct {
		name     string
		ref      string
		opts     keyref.Options
		sentinel error
		kind     error
		has      string
	}{
		{"wrong-pin", p256, with(func(o *keyref.Options) { o.PINFile = wrongPIN }), keyref.ErrWrongPIN, fault.ErrUnauthorized, "refused the PIN"},
		{"missing-token", "pkcs11:token=no-such-token;object=any", good, keyref.ErrNoToken, fault.ErrNotFound, `no PKCS #11 token labelled "no-such-token"`},
		{"missing-object", h.Ref("no-such-key"), good, keyref.ErrNoObject, fault.ErrNotFound, "holds no key pair"},
		{"missing-id", "pkcs11:token=" + h.Token + ";id=%de%ad", good, keyref.ErrNoObject, fault.ErrNotFound, "holds no key pair"},
		{"ambiguous-object", twice, good, keyref.ErrBadReference, fault.ErrConflict, "matches 2 key pairs"},
		{"missing-module", p256, with(func(o *keyref.Options) { o.Module = filepath.Join(dir, "libnone.so") }), keyref.ErrNoModule, fault.ErrNotFound, "libnone.so"},
		{"no-module-given", p256, with(func(o *keyref.Options) { o.Module = "" }), keyref.ErrNoModule, fault.ErrInvalid, "--pkcs11-module"},
		{"not-a-module", p256, with(func(o *keyref.Options) { o.Module = notModule }), keyref.ErrNoModule, fault.ErrInvalid, "is not a PKCS #11 module"},
		{"module-is-dir", p256, with(func(o *keyref.Options) { o.Module = dir }), keyref.ErrNoModule, fault.ErrInvalid, "is a directory"},
		{"no-pin-file", p256, with(func(o *keyref.Options) { o.PINFile = "" }), keyref.ErrPINFile, fault.ErrInvalid, "--pin-file"},
		{"pin-file-readable", p256, with(func(o *keyref.Options) { o.PINFile = openPIN }), keyref.ErrPINFile, fault.ErrInvalid, "mode 0644"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keyref.LoadString(context.Background(), tt.ref, tt.opts)
			if err == nil {
				_ = k.Close()
				t.Fatal("loaded")
			}
			if !errors.Is(err, tt.sentinel) || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.has) {
				t.Fatalf("err = %v; want %v (%v) saying %q", err, tt.sentinel, tt.kind, tt.has)
			}
			if strings.Contains(err.Error(), keyreftest.PIN) {
				t.Fatalf("error %q shows the PIN", err)
			}
		})
	}
	// After all of that the token still works.
	loadToken(t, h, p256)
}

// TestWrongPINWhileTokenOpen: PKCS #11 login belongs to the process, so
// the token itself takes any PIN while a key of it is open here; the
// loader still refuses a PIN other than the one it logged in with, and,
// once every key of the token is closed, the token judges the PIN again.
func TestWrongPINWhileTokenOpen(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	first := h.GenerateECDSA(t, "open-first", elliptic.P256())
	second := h.GenerateECDSA(t, "open-second", elliptic.P256())
	wrongPIN := filepath.Join(t.TempDir(), "wrong-pin")
	if err := os.WriteFile(wrongPIN, []byte("000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := keyref.Options{Module: h.Module, PINFile: h.PINFile}
	wrong := keyref.Options{Module: h.Module, PINFile: wrongPIN}
	refused := func(ref string) {
		t.Helper()
		k, err := keyref.LoadString(context.Background(), ref, wrong)
		if err == nil {
			_ = k.Close()
			t.Fatalf("%s loaded with a wrong PIN", ref)
		}
		if !errors.Is(err, keyref.ErrWrongPIN) || !errors.Is(err, fault.ErrUnauthorized) || !strings.Contains(err.Error(), "refused the PIN") {
			t.Fatalf("err = %v; want a wrong PIN", err)
		}
	}

	k1, err := keyref.LoadString(context.Background(), first, good)
	if err != nil {
		t.Fatal(err)
	}
	refused(second)               // another key of the open token
	refused(first)                // the open key itself
	k2 := loadToken(t, h, second) // the right PIN still opens another key
	if err := k1.Close(); err != nil {
		t.Fatal(err)
	}
	refused(first) // k2 still holds the login
	if err := k2.Close(); err != nil {
		t.Fatal(err)
	}
	refused(second) // nothing open: the token itself refuses it
	loadToken(t, h, first)
}

// TestReloginAfterTokenForgets: after the token forgets this process (an
// HSM restart: its sessions and login gone), an open key logs in again
// and signs and decrypts, RSA and ECDSA, from several goroutines at once,
// without being loaded again.
func TestReloginAfterTokenForgets(t *testing.T) {
	h := keyreftest.SoftHSM(t)
	rsaKey := loadToken(t, h, h.GenerateRSA(t, "relogin-rsa", 2048))
	ecKey := loadToken(t, h, h.GenerateECDSA(t, "relogin-ec", elliptic.P256()))
	digest := sha256.Sum256([]byte("the ITL"))
	check := func(t *testing.T) {
		sig, err := rsaKey.Signer().Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Errorf("RSA sign: %v", err)
		} else if err := rsa.VerifyPKCS1v15(rsaKey.Public().(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
			t.Errorf("RSA signature: %v", err)
		}
		sig, err = ecKey.Signer().Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Errorf("ECDSA sign: %v", err)
		} else if !ecdsa.VerifyASN1(ecKey.Public().(*ecdsa.PublicKey), digest[:], sig) {
			t.Error("ECDSA signature does not verify")
		}
		secret := []byte("pre-master secret, 48 bytes long, as TLS has it")
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, rsaKey.Public().(*rsa.PublicKey), secret)
		if err != nil {
			t.Fatal(err)
		}
		d, err := rsaKey.Decrypter()
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 crypto/tls's RSA key exchange asks exactly this
		if pt, err := d.Decrypt(rand.Reader, ct, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: len(secret)}); err != nil || !bytes.Equal(pt, secret) {
			t.Errorf("RSA decrypt of a pre-master secret: %v, plaintext right: %v", err, bytes.Equal(pt, secret))
		}
	}
	check(t)
	for round := range 3 {
		h.ForgetSessions(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); check(t) }()
		}
		wg.Wait()
		if t.Failed() {
			t.Fatalf("round %d: the keys did not work again after the token forgot this process", round)
		}
	}
}
