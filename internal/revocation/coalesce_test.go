package revocation_test

import (
	"context"
	"crypto/x509"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/revocation"
)

// countingStore counts the publisher's looks (one CountRevoked per CA and
// look).
type countingStore struct {
	revocation.Store
	looks atomic.Int64
}

func (c *countingStore) CountRevoked(ctx context.Context, kid string) (int64, error) {
	c.looks.Add(1)
	return c.Store.CountRevoked(ctx, kid)
}

// TestKicksCoalesce: a burst of kicks, one per LSC a session installs,
// costs the publisher one look per Coalesce, not one per kick, and a
// revocation kicked is still published within Coalesce.
func TestKicksCoalesce(t *testing.T) {
	f := newFleet(t)
	st := &countingStore{Store: f.st}
	iss := []revocation.Issuer{{Cert: f.ca.Certificate(), Signer: f.ca.Signer()}}
	const coalesce = 300 * time.Millisecond
	pub := revocation.NewPublisher(revocation.PublisherOptions{Store: st, Issuers: iss, Coalesce: coalesce, Check: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = pub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitLooks := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); st.looks.Load() < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d looks, want %d", st.looks.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitLooks(1) // the first look, at start

	start := time.Now()
	for time.Since(start) < coalesce/2 {
		pub.Kick()
		time.Sleep(time.Millisecond)
	}
	waitLooks(2)
	time.Sleep(coalesce / 2)
	if n := st.looks.Load(); n != 2 {
		t.Errorf("a burst of kicks within %v made %d looks after the first, want 1", coalesce, n-1)
	}

	// A revocation kicked after the burst is published within Coalesce.
	serial, _ := f.enrol("SEP00000000000B")
	f.enrol("SEP00000000000B")
	pub.Kick()
	kid := iss[0].KeyID()
	for deadline := time.Now().Add(5 * coalesce); ; {
		c, err := f.st.GetCRL(t.Context(), kid)
		if err == nil && crlHas(t, c.DER, serial) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the superseded LSC %s was not on the CRL %v after the kick", serial, 5*coalesce)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crlHas reports whether the CRL der lists the certificate of the hex
// serial.
func crlHas(t *testing.T, der []byte, serial string) bool {
	t.Helper()
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := new(big.Int).SetString(serial, 16)
	if !ok {
		t.Fatalf("serial %q is not hex", serial)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(want) == 0 {
			return true
		}
	}
	return false
}
