//go:debug rsa1024min=0

package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"io"
	mrand "math/rand/v2"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// seededRand returns a deterministic source of randomness.
func seededRand(seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return mrand.NewChaCha8(s)
}

// testOptions returns options for a fresh directory with the fixed clock.
func testOptions(t testing.TB, alg KeyAlgorithm) Options {
	t.Helper()
	return Options{
		Dir:          t.TempDir() + "/capf",
		KeyAlgorithm: alg,
		Now:          func() time.Time { return testNow },
		Rand:         seededRand(1),
	}
}

// authorities caches one Authority per key algorithm: key generation is
// the slow part of these tests.
var authorities sync.Map // KeyAlgorithm → *Authority

func testAuthority(t testing.TB, alg KeyAlgorithm) *Authority {
	t.Helper()
	if a, ok := authorities.Load(alg); ok {
		return a.(*Authority)
	}
	opts := testOptions(t, alg)
	opts.Dir = t.TempDir()
	a, _, err := LoadOrCreate(opts)
	if err != nil {
		t.Fatalf("LoadOrCreate(%s): %v", alg, err)
	}
	v, _ := authorities.LoadOrStore(alg, a)
	return v.(*Authority)
}

// phoneKeys caches phone private keys by spec, e.g. "rsa512", "ec384".
var phoneKeys sync.Map

func phoneKey(t testing.TB, spec string) crypto.Signer {
	t.Helper()
	if k, ok := phoneKeys.Load(spec); ok {
		return k.(crypto.Signer)
	}
	var k crypto.Signer
	var err error
	switch spec {
	case "rsa512":
		k, err = rsa.GenerateKey(rand.Reader, 512)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa4096":
		k, err = rsa.GenerateKey(rand.Reader, 4096)
	case "ec256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ec384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ec521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	default:
		t.Fatalf("unknown key spec %q", spec)
	}
	if err != nil {
		t.Fatalf("generate %s: %v", spec, err)
	}
	v, _ := phoneKeys.LoadOrStore(spec, k)
	return v.(crypto.Signer)
}

// countingSigner counts the signatures made with the CAPF key.
type countingSigner struct {
	crypto.Signer
	n atomic.Int32
}

func (c *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, digest, opts)
}

// withCountingSigner returns a copy of a whose key counts signatures.
func withCountingSigner(a *Authority) (*Authority, *countingSigner) {
	cs := &countingSigner{Signer: a.key}
	b := &Authority{cert: a.cert, certPEM: a.certPEM, key: cs, roots: a.roots, sigAlg: a.sigAlg, now: a.now, rand: a.rand}
	b.lscValidity.Store(a.lscValidity.Load())
	return b, cs
}

// needOpenSSL returns the path of the openssl command or skips the test.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	return p
}
