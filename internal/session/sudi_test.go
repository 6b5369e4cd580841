package session

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// testCred is a certificate and its key for the SUDI tests.
type testCred struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// mint issues a certificate for cn, signed by parent (self-signed when nil).
func mint(t *testing.T, cn string, isCA bool, parent *testCred) testCred {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             t0.Add(-time.Hour),
		NotAfter:              t0.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCred{cert: c, key: key}
}

func (c testCred) signBoth(t *testing.T, payload []byte) (sig1, sig512 []byte) {
	t.Helper()
	d1, d512 := sha1.Sum(payload), sha512.Sum512(payload)
	sig1, err := ecdsa.SignASN1(rand.Reader, c.key, d1[:])
	if err != nil {
		t.Fatal(err)
	}
	sig512, err = ecdsa.SignASN1(rand.Reader, c.key, d512[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig1, sig512
}

// sudiElement is the SUDI_DATA value a phone with SUDI c sends in session sid.
func sudiElement(t *testing.T, c testCred) []byte {
	t.Helper()
	s1, s512 := c.signBoth(t, wire.SUDISignedPayload(sid, c.cert.Raw))
	return wire.AppendSUDIData(nil, wire.SUDIData{Certificate: c.cert.Raw, SHA1Sig: s1, SHA512Sig: s512})
}

// TestSUDIOutcome drives onAuth with the real verifier: the SUDI outcome
// lands in the Summary and in the attempt's Outcome, also when the phone is
// refused; and a certificate is recognised without AUTH_TYPE, which phones
// never send.
func TestSUDIOutcome(t *testing.T) {
	capf := mint(t, "CAPF-test", true, nil)
	unknownCA := mint(t, "ACT2 SUDI CA", true, nil)
	unknownSUDI := mint(t, "PID:CP-8865 SN:FCH1", false, &unknownCA)
	lsc := mint(t, phone, false, &capf)
	roots := x509.NewCertPool()
	roots.AddCert(capf.cert)

	nullAuth := func(extra func(*wire.Message)) *wire.Message {
		m := wire.New(wire.CmdAuthResponse, sid).AddUint8(wire.TagReason, 1).AddUint8(wire.TagVersion, 3).
			AddString(wire.TagDeviceName, phone).AddString(wire.TagPassword, "")
		extra(m)
		return m
	}
	lscAuth := func(extra func(*wire.Message)) *wire.Message {
		s1, s512 := lsc.signBoth(t, wire.SignedPayload(phone, lsc.cert.Raw))
		m := wire.New(wire.CmdAuthResponse, sid).AddUint8(wire.TagReason, 1).AddUint8(wire.TagVersion, 3).
			AddString(wire.TagDeviceName, phone).
			Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, lsc.cert.Raw)).
			Add(wire.TagSignedData, s1).
			Add(wire.TagSHA2SignedData, wire.AppendSHA2SignedData(nil, wire.HashSHA512, s512))
		extra(m)
		return m
	}
	withSUDI := func(c testCred) func(*wire.Message) {
		return func(m *wire.Message) { m.Add(wire.TagSUDIData, sudiElement(t, c)) }
	}
	tampered := func(m *wire.Message) {
		v := sudiElement(t, unknownSUDI)
		v[len(v)-10] ^= 0x01 // inside the SHA-512 signature
		m.Add(wire.TagSUDIData, v)
	}
	truncated := func(m *wire.Message) {
		v := sudiElement(t, unknownSUDI)
		m.Add(wire.TagSUDIData, v[:len(v)-1])
	}
	none := func(*wire.Message) {}

	for _, tc := range []struct {
		name     string
		mode     device.AuthMode
		policy   auth.SUDIPolicy
		msg      *wire.Message
		wantNext wire.Command // KEY_GENERATE_REQUEST, or END_SESSION when refused
		wantAuth string
		wantSUDI string
	}{
		{"ok/no-sudi", device.AuthNull, auth.SUDIWhenTrusted, nullAuth(none), wire.CmdKeyGenerateRequest, "null", ""},
		{"ok/unknown-issuer-when-trusted", device.AuthNull, auth.SUDIWhenTrusted, nullAuth(withSUDI(unknownSUDI)), wire.CmdKeyGenerateRequest, "null", auth.SUDIUnknownIssuer},
		{"ok/lsc-without-auth-type", device.AuthLSC, auth.SUDIWhenTrusted, lscAuth(none), wire.CmdKeyGenerateRequest, "lsc", ""},
		{"ok/lsc-is-its-own-sudi", device.AuthLSC, auth.SUDIRequired, lscAuth(withSUDI(lsc)), wire.CmdKeyGenerateRequest, "lsc", auth.SUDIVerified},
		{"ok/off-ignores", device.AuthLSC, auth.SUDIOff, lscAuth(withSUDI(unknownSUDI)), wire.CmdKeyGenerateRequest, "lsc", auth.SUDIIgnored},
		{"fail/unknown-issuer-required", device.AuthLSC, auth.SUDIRequired, lscAuth(withSUDI(unknownSUDI)), wire.CmdEndSession, "", auth.SUDIUnknownIssuer},
		{"fail/tampered", device.AuthNull, auth.SUDIWhenTrusted, nullAuth(tampered), wire.CmdEndSession, "", auth.SUDIBadSignature},
		{"fail/malformed", device.AuthNull, auth.SUDIWhenTrusted, nullAuth(truncated), wire.CmdEndSession, "", auth.SUDIMalformed},
		{"fail/malformed-even-when-off", device.AuthNull, auth.SUDIOff, nullAuth(truncated), wire.CmdEndSession, "", auth.SUDIMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pending(device.OpInstall, device.EC256)
			d.AuthMode = tc.mode
			f := newFixture(t, d)
			f.deps.Auth = auth.New(auth.Options{LSCRoots: roots, Now: func() time.Time { return t0 }})
			f.withConfig(func(c *Config) { c.AuthPolicy.SUDI = tc.policy }) // a fleet parameter
			f.s.Start()
			step := f.s.Handle(context.Background(), tc.msg)
			if step.Reply == nil || step.Reply.Command != tc.wantNext {
				t.Fatalf("reply %+v, want %s (summary %+v)", step.Reply, tc.wantNext, f.s.Summary())
			}
			if tc.wantNext == wire.CmdEndSession {
				expectEnd(t, step, wire.ReasonRefused)
			} else {
				// End the session so that the attempt is recorded.
				f.s.Abort(context.Background(), context.Canceled)
			}
			sum := f.s.Summary()
			if sum.SUDI != tc.wantSUDI || sum.AuthMode != tc.wantAuth {
				t.Errorf("summary SUDI %q, auth %q; want %q, %q", sum.SUDI, sum.AuthMode, tc.wantSUDI, tc.wantAuth)
			}
			if len(f.store.outcomes) != 1 {
				t.Fatalf("%d outcomes recorded, want 1", len(f.store.outcomes))
			}
			if got := f.store.outcomes[0].SUDI; got != tc.wantSUDI {
				t.Errorf("outcome SUDI %q, want %q", got, tc.wantSUDI)
			}
		})
	}
}
