//go:build cgo

package keyref_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keyref/keyreftest"
)

// BenchmarkTokenSign measures one signature of a SHA-256 digest through
// the SoftHSM2 token (what an LSC or a trust file costs with the key in
// the token), RSA-2048 PKCS #1 v1.5 and ECDSA P-256.
func BenchmarkTokenSign(b *testing.B) {
	h := keyreftest.SoftHSM(b)
	digest := sha256.Sum256([]byte("tbsCertificate"))
	for _, tt := range []struct {
		name string
		gen  func() string
	}{
		{"rsa2048", func() string { return h.GenerateRSA(b, "bench-rsa", 2048) }},
		{"p256", func() string {
			return h.GenerateECDSA(b, "bench-p256", elliptic.P256())
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			k, err := keyref.LoadString(context.Background(), tt.gen(), keyref.Options{Module: h.Module, PINFile: h.PINFile})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			for b.Loop() {
				if _, err := k.Signer().Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
