package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

// TestGenerateAndNew: Generate makes a CAPF certificate like a first start
// but writes nothing, and New rebuilds an Authority that issues from it;
// a key that does not match, or a certificate that is no CA, is refused.
func TestGenerateAndNew(t *testing.T) {
	opts := testOptions(t, ECP256)
	a, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Generate wrote %s: %v", opts.Dir, err)
	}
	if !a.Certificate().IsCA || a.Certificate().CheckSignatureFrom(a.Certificate()) != nil {
		t.Fatal("Generate: not a self-signed CA certificate")
	}
	b, err := New(a.Certificate(), a.Signer(), Options{Now: opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Certificate().Equal(a.Certificate()) {
		t.Error("New changed the certificate")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := New(a.Certificate(), other, Options{}); fault.KindOf(err) != fault.Invalid {
		t.Errorf("New with another key: %v, want Invalid", err)
	}
	if _, err := New(nil, other, Options{}); fault.KindOf(err) != fault.Invalid {
		t.Errorf("New without a certificate: %v, want Invalid", err)
	}
}
