package auth

import (
	"crypto/x509"
	"sync/atomic"
	"testing"

	"github.com/capf-server/capf/internal/device"
)

// swappableRoots is a RootSource whose pool a test replaces.
type swappableRoots struct{ p atomic.Pointer[x509.CertPool] }

func (s *swappableRoots) LSCRoots() *x509.CertPool { return s.p.Load() }

// TestLSCRootSource: with a RootSource, each authentication uses the
// anchors in force at that moment (the CA set of a running server), not
// those of when the verifier was built.
func TestLSCRootSource(t *testing.T) {
	pk := testPKI(t)
	src := &swappableRoots{}
	o := pk.options()
	o.LSCRoots = pool(pk.other) // ignored while a source is set
	o.LSCRootSource = src
	v := New(o)
	try := func() error {
		_, err := v.AuthenticateWith(v.Policy(), device.AuthLSC, "", present(t, pk.lscRSA, CertLSC))
		return err
	}
	for _, c := range []struct {
		name  string
		roots *x509.CertPool
		ok    bool
	}{
		{"issuer-trusted", pool(pk.capf), true},
		{"issuer-and-successor", pool(pk.capf, pk.capfEC), true},
		{"issuer-retired", pool(pk.capfEC), false},
		{"no-anchors", nil, false},
	} {
		src.p.Store(c.roots)
		if err := try(); (err == nil) != c.ok {
			t.Errorf("%s: Authenticate = %v, want ok %v", c.name, err, c.ok)
		}
	}
}
