package caset

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// mkCA signs a CA certificate named cn for pub with parentKey under parent
// (self-signed when parent is nil).
func mkCA(t *testing.T, cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, now time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecdsaKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCheckImport: the chain comes back leaf first whatever order it was
// given in; keys phones refuse and certificates outside the chain are
// refused as Invalid, naming the reason.
func TestCheckImport(t *testing.T) {
	now := time.Now()
	rk, ik, k := ecdsaKey(t, elliptic.P384()), ecdsaKey(t, elliptic.P256()), ecdsaKey(t, elliptic.P256())
	root := mkCA(t, "root", rk.Public(), nil, rk, now)
	inter := mkCA(t, "inter", ik.Public(), root, rk, now)
	leaf := mkCA(t, "capf", k.Public(), inter, ik, now)
	other := mkCA(t, "other", ik.Public(), nil, ik, now)

	chain, err := CheckImport(leaf, []*x509.Certificate{root, inter}, k.Public(), "k", now)
	if err != nil || len(chain) != 3 || chain[1] != inter || chain[2] != root {
		t.Fatalf("CheckImport(root, inter given): %v %v, want leaf, inter, root", chain, err)
	}
	if chain, err := CheckImport(leaf, []*x509.Certificate{inter}, k.Public(), "k", now); err != nil || len(chain) != 2 {
		t.Fatalf("a chain ending at the intermediate: %v %v", chain, err)
	}

	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	big521 := ecdsaKey(t, elliptic.P521())
	for _, c := range []struct {
		name string
		leaf *x509.Certificate
		more []*x509.Certificate
		pub  crypto.PublicKey
		at   time.Time
		msg  string
	}{
		{"RSA 1024", mkCA(t, "small", small.Public(), root, rk, now), nil, small.Public(), now, "RSA key of 1024 bits"},
		{"P-521", mkCA(t, "big", big521.Public(), root, rk, now), nil, big521.Public(), now, "EC key on P-521"},
		{"another key", leaf, nil, small.Public(), now, "is for key " + PublicKeyID(k.Public()) + ", not for k (key " + PublicKeyID(small.Public())},
		{"outside the chain", leaf, []*x509.Certificate{inter, other}, k.Public(), now, "other did not sign"},
		{"after its end", leaf, nil, k.Public(), now.Add(2 * time.Hour), "is not valid now"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckImport(c.leaf, c.more, c.pub, "k", c.at)
			if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err %v, want Invalid saying %q", err, c.msg)
			}
		})
	}
}
