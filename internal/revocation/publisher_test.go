package revocation_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/revocation"
)

// TestPublisherRegenerates: a CRL is rebuilt when a revocation is added
// and when half its validity has passed, and not otherwise; its number
// grows each time.
func TestPublisherRegenerates(t *testing.T) {
	f := newFleet(t)
	now := time.Now()
	clock := func() time.Time { return now }
	iss := []revocation.Issuer{{Cert: f.ca.Certificate(), Signer: f.ca.Signer()}}
	pub := revocation.NewPublisher(revocation.PublisherOptions{Store: f.st, Issuers: iss, Validity: 24 * time.Hour, Now: clock})
	kid := iss[0].KeyID()
	current := func() (int64, int) {
		t.Helper()
		if err := pub.Publish(t.Context()); err != nil {
			t.Fatal(err)
		}
		c, err := f.st.GetCRL(t.Context(), kid)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(f.ca.Certificate()); err != nil {
			t.Fatalf("CRL signature: %v", err)
		}
		if crl.Number.Int64() != c.Number || !crl.NextUpdate.Equal(c.NextUpdate) {
			t.Errorf("CRL number %v next %v, stored %d %v", crl.Number, crl.NextUpdate, c.Number, c.NextUpdate)
		}
		return c.Number, len(crl.RevokedCertificateEntries)
	}
	n0, e0 := current()
	if e0 != 0 {
		t.Fatalf("first CRL has %d entries, want 0", e0)
	}
	if n, _ := current(); n != n0 {
		t.Errorf("nothing changed, yet a new CRL was made (%d after %d)", n, n0)
	}
	serial, _ := f.enrol("SEP00000000000A")
	f.enrol("SEP00000000000A")
	n1, e1 := current()
	if n1 <= n0 || e1 != 1 {
		t.Errorf("after a supersede: number %d (was %d), %d entries; want a greater number and 1", n1, n0, e1)
	}
	now = now.Add(11 * time.Hour)
	if n, _ := current(); n != n1 {
		t.Errorf("before half the validity a new CRL was made")
	}
	now = now.Add(2 * time.Hour)
	n2, e2 := current()
	if n2 <= n1 || e2 != 1 {
		t.Errorf("after half the validity: number %d (was %d), %d entries", n2, n1, e2)
	}
	r, err := f.svc.Get(t.Context(), serial)
	if err != nil || r.Device != "SEP00000000000A" {
		t.Errorf("Get(%s) = %+v, %v", serial, r, err)
	}
}
