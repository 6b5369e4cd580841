package session

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// BenchmarkIssuancePath measures what a session does between the phone's
// key and the STORE_CERTIFICATE_REQUEST: parse and check the public key,
// sign the LSC with the real CAPF authority, record the issuance (in
// memory here; the store's commit has its own benchmarks) and encode the
// reply.
func BenchmarkIssuancePath(b *testing.B) {
	for _, alg := range []ca.KeyAlgorithm{ca.RSA2048, ca.ECP256} {
		b.Run(string(alg), func(b *testing.B) {
			authority, _, err := ca.LoadOrCreate(ca.Options{Dir: b.TempDir(), KeyAlgorithm: alg})
			if err != nil {
				b.Fatal(err)
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
			keyMsg := wire.New(wire.CmdKeyGenerateResponse, sid).Add(wire.TagPublicKey, pub)
			store := newFakeStore(pending(device.OpInstall, device.EC256))
			deps := &Deps{Store: store, Issuer: authority, Auth: &fakeAuth{}, Locks: NewDeviceLocks(), Now: time.Now,
				Config: Config{KeyGenMaxTime: time.Hour, KeyGenMaxAttempts: 1, MessageTimeout: time.Minute, DefaultKey: device.EC256}}
			ctx := context.Background()
			buf := make([]byte, 0, 4096)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := New(deps, sid, "bench")
				s.Handle(ctx, authResponse(phone))
				store.issuances, store.outcomes, store.calls = store.issuances[:0], store.outcomes[:0], store.calls[:0]
				b.StartTimer()
				step := s.Handle(ctx, keyMsg)
				if step.Reply == nil || step.Reply.Command != wire.CmdStoreCertificateRequest {
					b.Fatalf("step %+v", step)
				}
				if buf, err = step.Reply.Append(buf[:0]); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				s.Close()
				b.StartTimer()
			}
		})
	}
}
