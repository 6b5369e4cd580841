package auth

import (
	"crypto"
	"errors"
	"testing"

	"github.com/capf-server/capf/internal/device"
)

// FuzzAuthenticate feeds arbitrary certificates and signatures to every
// mode: Authenticate must never panic, and must fail with an *Error unless
// the input really authenticates.
func FuzzAuthenticate(f *testing.F) {
	pk := testPKI(f)
	for _, c := range []struct {
		cred cred
		kind CertKind
	}{{pk.lscRSA, CertLSC}, {pk.lscEC, ""}, {pk.micRSA, CertMIC}, {pk.micExpired, CertMIC}} {
		p := present(f, c.cred, c.kind)
		s := withSUDI(f, p, pk.sudi).SUDI
		f.Add(uint8(2), string(c.kind), p.CertDER, p.SHA1Sig, uint8(3), p.SHA2Sig, s.CertDER, s.SHA1Sig, s.SHA512Sig)
	}
	f.Add(uint8(0), "", []byte{}, []byte{}, uint8(0), []byte{}, []byte{0x30}, []byte{1}, []byte{})
	f.Add(uint8(3), "MIC", []byte{0x30, 0x82, 0xff, 0xff}, []byte{0}, uint8(2), []byte{0}, []byte(nil), []byte(nil), []byte(nil))

	modes := []device.AuthMode{device.AuthString, device.AuthNull, device.AuthLSC, device.AuthMIC, "bogus"}
	hashes := []crypto.Hash{0, crypto.SHA1, crypto.SHA256, crypto.SHA512}
	reasons := map[string]bool{device.ReasonInvalidAuthString: true, device.ReasonInvalidLSC: true,
		device.ReasonInvalidMIC: true, device.ReasonInvalidCredentials: true}
	opts := pk.options()
	verifiers := []*Verifier{New(opts)}
	opts.AllowExpiredMIC = true
	verifiers = append(verifiers, New(opts))

	f.Fuzz(func(t *testing.T, mode uint8, kind string, der, sig1 []byte, hash uint8, sig2, sudiDER, sudiSig1, sudiSig2 []byte) {
		p := Presented{
			DeviceName: devName,
			SessionID:  0x01020304,
			CertType:   CertKind(kind),
			CertDER:    der,
			SHA1Sig:    sig1,
			SHA2Hash:   hashes[int(hash)%len(hashes)],
			SHA2Sig:    sig2,
			Password:   string(sig1),
		}
		if sudiDER != nil {
			p.SUDI = &SUDI{CertDER: sudiDER, SHA1Sig: sudiSig1, SHA512Sig: sudiSig2}
		}
		m := modes[int(mode)%len(modes)]
		res, err := verifiers[int(mode/8)%2].Authenticate(m, "", p)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || !reasons[ae.Reason] || ae.Detail == "" {
				t.Fatalf("error %v is not an *Error with a known reason and a detail", err)
			}
			return
		}
		switch m {
		case device.AuthNull:
		case device.AuthLSC, device.AuthMIC:
			if res.Certificate == nil || (res.Method != device.AuthLSC && res.Method != device.AuthMIC) {
				t.Fatalf("certificate mode succeeded without a certificate: %+v", res)
			}
		default:
			t.Fatalf("mode %q succeeded: %+v", m, res)
		}
	})
}
