package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/wire"
)

func TestAuthenticate(t *testing.T) {
	pk := testPKI(t)
	// Cases in which the policy passed per call decides the outcome.
	var policyMatters atomic.Int32
	password := func(pw string) func(*testing.T) Presented {
		return func(*testing.T) Presented {
			return Presented{DeviceName: devName, Password: pw, HasPassword: true}
		}
	}
	cert := func(c cred, kind CertKind) func(*testing.T) Presented {
		return func(t *testing.T) Presented { return present(t, c, kind) }
	}
	edit := func(c cred, kind CertKind, f func(*Presented)) func(*testing.T) Presented {
		return func(t *testing.T) Presented {
			p := present(t, c, kind)
			f(&p)
			return p
		}
	}
	sudi := func(p func(*testing.T) Presented, s cred, f func(*SUDI)) func(*testing.T) Presented {
		return func(t *testing.T) Presented {
			q := withSUDI(t, p(t), s)
			if f != nil {
				f(q.SUDI)
			}
			return q
		}
	}
	flip := func(b []byte) []byte {
		b = append([]byte(nil), b...)
		b[len(b)/2] ^= 0x40
		return b
	}
	noMIC := func(o *Options) { o.MICRoots, o.SUDIRoots = nil, nil }
	allowExpired := func(o *Options) { o.AllowExpiredMIC = true }
	withBundle := func(o *Options) { o.MICRoots, o.MICBundle = nil, []*x509.Certificate{pk.mfgEC.cert, pk.mfgRSA.cert} }

	for _, tc := range []struct {
		name       string
		mode       device.AuthMode
		authString string
		opts       func(*Options)
		presented  func(*testing.T) Presented
		wantMethod device.AuthMode // on success
		wantCert   *cred           // on success
		wantReason string          // on failure
		wantDetail string          // on failure, a substring
		wantSUDI   string          // the SUDI outcome, on success and failure
	}{
		// By authentication string.
		{name: "ok/string", mode: device.AuthString, authString: "123456", presented: password("123456"), wantMethod: device.AuthString},
		{name: "fail/wrong-string", mode: device.AuthString, authString: "123456", presented: password("123457"),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "does not match"},
		{name: "fail/string-prefix", mode: device.AuthString, authString: "123456", presented: password("12345"),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "does not match"},
		{name: "fail/empty-string", mode: device.AuthString, authString: "123456", presented: password(""),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "empty authentication string"},
		{name: "fail/no-password", mode: device.AuthString, authString: "123456",
			presented:  func(*testing.T) Presented { return Presented{DeviceName: devName} },
			wantReason: device.ReasonInvalidAuthString, wantDetail: "sent no authentication string"},
		{name: "fail/string-not-configured", mode: device.AuthString, authString: "", presented: password(""),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "no authentication string is set"},
		{name: "fail/string-not-configured-any-password", mode: device.AuthString, authString: "", presented: password("1234"),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "no authentication string is set"},
		{name: "fail/string-mode-certificate-only", mode: device.AuthString, authString: "1234", presented: cert(pk.lscRSA, CertLSC),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "sent no authentication string"},

		// By null string.
		{name: "ok/null-empty-password", mode: device.AuthNull, presented: password(""), wantMethod: device.AuthNull},
		{name: "ok/null-no-password", mode: device.AuthNull,
			presented: func(*testing.T) Presented { return Presented{DeviceName: devName} }, wantMethod: device.AuthNull},
		{name: "ok/null-anything", mode: device.AuthNull, presented: edit(pk.lscOtherCA, CertLSC, func(p *Presented) {
			p.Password, p.HasPassword, p.CertDER = "999", true, []byte("garbage")
		}), wantMethod: device.AuthNull},

		// By existing certificate: LSC.
		{name: "ok/lsc-rsa", mode: device.AuthLSC, presented: cert(pk.lscRSA, CertLSC), wantMethod: device.AuthLSC, wantCert: &pk.lscRSA},
		{name: "ok/lsc-ec", mode: device.AuthLSC, presented: cert(pk.lscEC, CertLSC), wantMethod: device.AuthLSC, wantCert: &pk.lscEC},
		{name: "ok/lsc-unlabelled", mode: device.AuthLSC, presented: cert(pk.lscRSA, ""), wantMethod: device.AuthLSC, wantCert: &pk.lscRSA},
		{name: "ok/lsc-in-mic-mode", mode: device.AuthMIC, presented: cert(pk.lscEC, CertLSC), wantMethod: device.AuthLSC, wantCert: &pk.lscEC},
		{name: "ok/lsc-sha1-only", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA2Sig, p.SHA2Hash = nil, 0 }),
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA},
		{name: "ok/lsc-sha2-only", mode: device.AuthLSC, presented: edit(pk.lscEC, CertLSC, func(p *Presented) { p.SHA1Sig = nil }),
			wantMethod: device.AuthLSC, wantCert: &pk.lscEC},
		{name: "ok/lsc-sha256", mode: device.AuthLSC, presented: func(t *testing.T) Presented {
			p := present(t, pk.lscRSA, CertLSC)
			p.SHA2Hash = crypto.SHA256
			p.SHA2Sig = signDigest(t, pk.lscRSA.key, digest(crypto.SHA256, wire.SignedPayload(devName, p.CertDER)))
			return p
		}, wantMethod: device.AuthLSC, wantCert: &pk.lscRSA},
		{name: "ok/lsc-device-name-case", mode: device.AuthLSC,
			presented:  func(t *testing.T) Presented { return presentAs(t, pk.lscRSA, CertLSC, strings.ToLower(devName)) },
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA},
		{name: "fail/lsc-wrong-device-cn", mode: device.AuthLSC, presented: cert(pk.lscWrongCN, CertLSC),
			wantReason: device.ReasonInvalidLSC, wantDetail: `subject CN "SEP665544332211" does not name device SEP001122334455`},
		{name: "fail/lsc-wrong-device-cn-unlabelled", mode: device.AuthLSC, presented: cert(pk.lscWrongCN, ""),
			wantReason: device.ReasonInvalidLSC, wantDetail: "does not name device"},
		{name: "fail/lsc-other-ca", mode: device.AuthLSC, presented: cert(pk.lscOtherCA, CertLSC),
			wantReason: device.ReasonInvalidLSC, wantDetail: "does not chain to the CAPF certificate"},
		{name: "fail/lsc-expired", mode: device.AuthLSC, presented: cert(pk.lscExpired, CertLSC),
			wantReason: device.ReasonInvalidLSC, wantDetail: "certificate expired at 2026-03-14T14:09:26Z"},
		{name: "fail/lsc-expired-unlabelled", mode: device.AuthLSC, presented: cert(pk.lscExpired, ""),
			wantReason: device.ReasonInvalidLSC, wantDetail: "certificate expired at"},
		{name: "fail/lsc-no-issuer-configured", mode: device.AuthLSC, opts: func(o *Options) { o.LSCRoots = nil },
			presented: cert(pk.lscRSA, CertLSC), wantReason: device.ReasonInvalidLSC, wantDetail: "no LSC issuer configured"},
		{name: "fail/lsc-labelled-mic", mode: device.AuthMIC, presented: cert(pk.lscRSA, CertMIC),
			wantReason: device.ReasonInvalidMIC, wantDetail: "does not chain to the manufacturer CA bundle"},

		// Signatures.
		{name: "fail/bad-sha1-signature", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA1Sig = flip(p.SHA1Sig) }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "SIGNED_DATA (SHA-1): signature does not verify"},
		{name: "fail/bad-sha2-signature", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA2Sig = flip(p.SHA2Sig) }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "SHA2_SIGNED_DATA (SHA-512): signature does not verify"},
		{name: "fail/bad-ec-signature", mode: device.AuthLSC, presented: edit(pk.lscEC, CertLSC, func(p *Presented) { p.SHA1Sig = flip(p.SHA1Sig) }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "signature does not verify"},
		{name: "fail/sha2-hash-mismatch", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA2Hash = crypto.SHA256 }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "SHA2_SIGNED_DATA (SHA-256): signature does not verify"},
		{name: "fail/sha2-unsupported-hash", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA2Hash = crypto.SHA384 }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "unsupported hash"},
		{name: "fail/sha2-no-hash", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA2Hash = 0 }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "unsupported hash"},
		{name: "fail/no-signature", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.SHA1Sig, p.SHA2Sig = nil, nil }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "no signature presented"},
		{name: "fail/signature-with-digestinfo", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) {
			// An ordinary PKCS#1 v1.5 signature, with DigestInfo.
			sig, err := rsa.SignPKCS1v15(rand.Reader, pk.lscRSA.key.(*rsa.PrivateKey), crypto.SHA1, digest(crypto.SHA1, wire.SignedPayload(devName, p.CertDER)))
			if err != nil {
				panic(err)
			}
			p.SHA1Sig, p.SHA2Sig = sig, nil
		}), wantReason: device.ReasonInvalidLSC, wantDetail: "signature does not verify"},
		{name: "fail/signature-for-other-device", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) {
			q := presentAs(t, pk.lscRSA, CertLSC, "SEP665544332211")
			p.SHA1Sig, p.SHA2Sig = q.SHA1Sig, q.SHA2Sig
		}), wantReason: device.ReasonInvalidLSC, wantDetail: "signature does not verify"},
		{name: "fail/signature-by-other-key", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) {
			q := present(t, cred{pk.lscRSA.cert, pk.other.key}, CertLSC)
			p.SHA1Sig, p.SHA2Sig = q.SHA1Sig, q.SHA2Sig
		}), wantReason: device.ReasonInvalidLSC, wantDetail: "signature does not verify"},

		// By existing certificate: MIC.
		{name: "ok/mic-rsa", mode: device.AuthMIC, presented: cert(pk.micRSA, CertMIC), wantMethod: device.AuthMIC, wantCert: &pk.micRSA},
		{name: "ok/mic-ec", mode: device.AuthMIC, presented: cert(pk.micEC, CertMIC), wantMethod: device.AuthMIC, wantCert: &pk.micEC},
		{name: "ok/mic-in-lsc-mode", mode: device.AuthLSC, presented: cert(pk.micRSA, CertMIC), wantMethod: device.AuthMIC, wantCert: &pk.micRSA},
		{name: "ok/mic-unlabelled", mode: device.AuthLSC, presented: cert(pk.micEC, ""), wantMethod: device.AuthMIC, wantCert: &pk.micEC},
		{name: "ok/mic-name-in-san", mode: device.AuthMIC, presented: cert(pk.micSAN, CertMIC), wantMethod: device.AuthMIC, wantCert: &pk.micSAN},
		{name: "fail/mic-wrong-device", mode: device.AuthMIC,
			presented:  func(t *testing.T) Presented { return presentAs(t, pk.micRSA, CertMIC, "SEP665544332211") },
			wantReason: device.ReasonInvalidMIC, wantDetail: `subject CN "CP-7975G-SEP001122334455" and subject alternative names do not name device SEP665544332211`},
		{name: "fail/mic-device-name-prefix", mode: device.AuthMIC,
			presented:  func(t *testing.T) Presented { return presentAs(t, pk.micRSA, CertMIC, "SEP00112233445") },
			wantReason: device.ReasonInvalidMIC, wantDetail: "do not name device SEP00112233445"},
		{name: "fail/mic-untrusted", mode: device.AuthMIC, presented: cert(pk.micUntrusted, CertMIC),
			wantReason: device.ReasonInvalidMIC, wantDetail: "does not chain to the manufacturer CA bundle"},
		{name: "fail/mic-untrusted-unlabelled", mode: device.AuthMIC, presented: cert(pk.micUntrusted, ""),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "neither an LSC"},
		{name: "fail/mic-expired", mode: device.AuthMIC, presented: cert(pk.micExpired, CertMIC),
			wantReason: device.ReasonInvalidMIC, wantDetail: "certificate expired at 2015-06-01T00:00:00Z"},
		{name: "fail/mic-expired-unlabelled", mode: device.AuthMIC, presented: cert(pk.micExpired, ""),
			wantReason: device.ReasonInvalidMIC, wantDetail: "certificate expired at 2015-06-01T00:00:00Z"},
		{name: "ok/mic-expired-allowed", mode: device.AuthMIC, opts: allowExpired, presented: cert(pk.micExpired, CertMIC),
			wantMethod: device.AuthMIC, wantCert: &pk.micExpired},
		{name: "fail/mic-expired-allowed-bad-signature", mode: device.AuthMIC, opts: allowExpired,
			presented:  edit(pk.micExpired, CertMIC, func(p *Presented) { p.SHA2Sig = flip(p.SHA2Sig) }),
			wantReason: device.ReasonInvalidMIC, wantDetail: "signature does not verify"},
		{name: "fail/mic-expired-allowed-untrusted", mode: device.AuthMIC, opts: func(o *Options) {
			o.AllowExpiredMIC, o.MICRoots = true, pool(pk.mfgEC)
		}, presented: cert(pk.micExpired, CertMIC), wantReason: device.ReasonInvalidMIC, wantDetail: "does not chain"},
		{name: "fail/mic-no-bundle", mode: device.AuthMIC, opts: noMIC, presented: cert(pk.micRSA, CertMIC),
			wantReason: device.ReasonInvalidMIC, wantDetail: "no manufacturer CA bundle configured"},
		{name: "fail/mic-sha1-signed-pool-only", mode: device.AuthMIC, presented: cert(pk.micSHA1, CertMIC),
			wantReason: device.ReasonInvalidMIC, wantDetail: "SHA-1-signed MICs"},
		{name: "ok/mic-sha1-signed-with-bundle", mode: device.AuthMIC, opts: withBundle, presented: cert(pk.micSHA1, CertMIC),
			wantMethod: device.AuthMIC, wantCert: &pk.micSHA1},
		{name: "fail/mic-sha1-signed-bundle-without-issuer", mode: device.AuthMIC, opts: func(o *Options) {
			o.MICRoots, o.MICBundle = nil, []*x509.Certificate{pk.mfgEC.cert}
		}, presented: cert(pk.micSHA1, CertMIC), wantReason: device.ReasonInvalidMIC, wantDetail: "no certificate in the manufacturer CA bundle issued it"},
		{name: "ok/mic-rsa-with-bundle", mode: device.AuthMIC, opts: withBundle, presented: cert(pk.micRSA, CertMIC),
			wantMethod: device.AuthMIC, wantCert: &pk.micRSA},

		// SUDI: signatures always checked, the chain under the policy.
		{name: "ok/sudi", mode: device.AuthLSC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.sudi, nil),
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIVerified},
		{name: "ok/sudi-null-mode", mode: device.AuthNull, presented: sudi(password(""), pk.sudi, nil), wantMethod: device.AuthNull, wantSUDI: SUDIVerified},
		{name: "ok/sudi-sha512-only", mode: device.AuthNull, presented: sudi(password(""), pk.sudi, func(s *SUDI) { s.SHA1Sig = nil }),
			wantMethod: device.AuthNull, wantSUDI: SUDIVerified},
		{name: "ok/sudi-mic-roots", mode: device.AuthNull, opts: func(o *Options) { o.SUDIRoots, o.MICRoots = nil, pool(pk.mfgRSA, pk.sudiCA) },
			presented: sudi(password(""), pk.sudi, nil), wantMethod: device.AuthNull, wantSUDI: SUDIVerified},
		{name: "ok/sudi-is-the-lsc", mode: device.AuthLSC, opts: noMIC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.lscRSA, nil),
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIVerified},
		{name: "ok/sudi-is-the-lsc-required", mode: device.AuthLSC, opts: func(o *Options) { noMIC(o); o.SUDIPolicy = SUDIRequired },
			presented: sudi(cert(pk.lscRSA, CertLSC), pk.lscRSA, nil), wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIVerified},
		{name: "ok/sudi-untrusted-when-trusted", mode: device.AuthLSC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.sudiUntrusted, nil),
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIUnknownIssuer},
		{name: "ok/sudi-no-bundle-when-trusted", mode: device.AuthLSC, opts: noMIC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.sudi, nil),
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIUnknownIssuer},
		{name: "ok/sudi-no-roots-at-all", mode: device.AuthNull, opts: func(o *Options) { noMIC(o); o.LSCRoots = nil }, presented: sudi(password(""), pk.sudi, nil),
			wantMethod: device.AuthNull, wantSUDI: SUDIUnknownIssuer},
		{name: "ok/sudi-expired-when-trusted", mode: device.AuthLSC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.lscExpired, nil),
			wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIExpired},
		{name: "ok/sudi-off-ignores-untrusted", mode: device.AuthLSC, opts: func(o *Options) { o.SUDIPolicy = SUDIOff },
			presented: sudi(cert(pk.lscRSA, CertLSC), pk.sudiUntrusted, nil), wantMethod: device.AuthLSC, wantCert: &pk.lscRSA, wantSUDI: SUDIIgnored},
		{name: "ok/sudi-off-ignores-bad-signature", mode: device.AuthNull, opts: func(o *Options) { o.SUDIPolicy = SUDIOff },
			presented: sudi(password(""), pk.sudi, func(s *SUDI) { s.SHA1Sig = flip(s.SHA1Sig) }), wantMethod: device.AuthNull, wantSUDI: SUDIIgnored},
		{name: "fail/sudi-untrusted-required", mode: device.AuthLSC, opts: func(o *Options) { o.SUDIPolicy = SUDIRequired },
			presented:  sudi(cert(pk.lscRSA, CertLSC), pk.sudiUntrusted, nil),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: not verified: unknown issuer (sudi_verification is required)", wantSUDI: SUDIUnknownIssuer},
		{name: "fail/sudi-no-bundle-required", mode: device.AuthNull, opts: func(o *Options) { noMIC(o); o.SUDIPolicy = SUDIRequired },
			presented:  sudi(password(""), pk.sudi, nil),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "unknown issuer", wantSUDI: SUDIUnknownIssuer},
		{name: "fail/sudi-bad-signature", mode: device.AuthLSC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.sudi, func(s *SUDI) { s.SHA512Sig = flip(s.SHA512Sig) }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: SHA-512 signature does not verify", wantSUDI: SUDIBadSignature},
		{name: "fail/sudi-bad-signature-untrusted", mode: device.AuthLSC, presented: sudi(cert(pk.lscRSA, CertLSC), pk.sudiUntrusted, func(s *SUDI) { s.SHA1Sig = flip(s.SHA1Sig) }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: SHA-1 signature does not verify", wantSUDI: SUDIBadSignature},
		{name: "fail/sudi-bad-sha1-signature", mode: device.AuthNull, presented: sudi(password(""), pk.sudi, func(s *SUDI) { s.SHA1Sig = flip(s.SHA1Sig) }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: SHA-1 signature does not verify", wantSUDI: SUDIBadSignature},
		{name: "fail/sudi-other-session", mode: device.AuthNull, presented: func(t *testing.T) Presented {
			p := withSUDI(t, password("")(t), pk.sudi)
			p.SessionID++
			return p
		}, wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: SHA-1 signature does not verify", wantSUDI: SUDIBadSignature},
		{name: "fail/sudi-signed-by-other-key", mode: device.AuthLSC, presented: func(t *testing.T) Presented {
			p := withSUDI(t, present(t, pk.lscRSA, CertLSC), pk.sudiUntrusted)
			p.SUDI.CertDER = pk.sudi.der() // a trusted certificate, signatures by another key
			return p
		}, wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: SHA-1 signature does not verify", wantSUDI: SUDIBadSignature},
		{name: "fail/sudi-no-signature", mode: device.AuthNull, presented: sudi(password(""), pk.sudi, func(s *SUDI) { s.SHA1Sig, s.SHA512Sig = nil, nil }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: no signature", wantSUDI: SUDIMalformed},
		{name: "fail/sudi-garbage-der", mode: device.AuthNull, presented: sudi(password(""), pk.sudi, func(s *SUDI) { s.CertDER = []byte{0x30, 0x03, 1, 2, 3} }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: certificate does not parse", wantSUDI: SUDIMalformed},
		{name: "fail/sudi-no-certificate", mode: device.AuthNull, presented: sudi(password(""), pk.sudi, func(s *SUDI) { s.CertDER = nil }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "SUDI: no certificate", wantSUDI: SUDIMalformed},
		{name: "fail/sudi-ok-credential-wrong", mode: device.AuthString, authString: "1234",
			presented:  sudi(password("4321"), pk.sudiUntrusted, nil),
			wantReason: device.ReasonInvalidAuthString, wantDetail: "does not match", wantSUDI: SUDIUnknownIssuer},
		{name: "fail/sudi-verified-lsc-other-ca", mode: device.AuthLSC, presented: sudi(cert(pk.lscOtherCA, CertLSC), pk.sudi, nil),
			wantReason: device.ReasonInvalidLSC, wantDetail: "does not chain", wantSUDI: SUDIVerified},

		// Malformed.
		{name: "fail/no-certificate", mode: device.AuthLSC, presented: password(""),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "no certificate presented"},
		{name: "fail/no-certificate-mic-mode", mode: device.AuthMIC, presented: edit(pk.micRSA, CertMIC, func(p *Presented) { p.CertDER = nil }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "no certificate presented"},
		{name: "fail/garbage-der", mode: device.AuthLSC, presented: edit(pk.lscRSA, CertLSC, func(p *Presented) { p.CertDER = []byte{0x30, 0x82, 0xff} }),
			wantReason: device.ReasonInvalidLSC, wantDetail: "certificate does not parse"},
		{name: "fail/garbage-der-mic", mode: device.AuthMIC, presented: edit(pk.micRSA, CertMIC, func(p *Presented) { p.CertDER = []byte("garbage") }),
			wantReason: device.ReasonInvalidMIC, wantDetail: "certificate does not parse"},
		{name: "fail/garbage-der-unlabelled", mode: device.AuthLSC, presented: edit(pk.lscRSA, "", func(p *Presented) { p.CertDER = []byte("garbage") }),
			wantReason: device.ReasonInvalidCredentials, wantDetail: "certificate does not parse"},
		{name: "fail/unknown-cert-type", mode: device.AuthLSC, presented: cert(pk.lscRSA, "SUDI"),
			wantReason: device.ReasonInvalidCredentials, wantDetail: `unknown certificate type "SUDI"`},
		{name: "fail/unknown-mode", mode: "magic", presented: password("1234"),
			wantReason: device.ReasonInvalidCredentials, wantDetail: `unknown authentication mode "magic"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := pk.options()
			if tc.opts != nil {
				tc.opts(&o)
			}
			res, err := New(o).Authenticate(tc.mode, tc.authString, tc.presented(t))
			// The same policy passed per call (as a session passes the
			// fleet parameters in force) to a verifier built without it
			// gives the same answer.
			pol := Policy{SUDI: o.SUDIPolicy, AllowExpiredMIC: o.AllowExpiredMIC}
			bare := o
			bare.SUDIPolicy, bare.AllowExpiredMIC = SUDIWhenTrusted, false
			if pol != (Policy{}) {
				res2, err2 := New(bare).AuthenticateWith(pol, tc.mode, tc.authString, tc.presented(t))
				if res2.Method != res.Method || res2.SUDI != res.SUDI || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
					t.Errorf("AuthenticateWith(%+v) = %+v, %v; Authenticate with the policy in Options = %+v, %v", pol, res2, err2, res, err)
				}
				if _, err3 := New(bare).Authenticate(tc.mode, tc.authString, tc.presented(t)); (err3 == nil) != (err == nil) {
					policyMatters.Add(1)
				}
			}
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if res.Method != tc.wantMethod {
					t.Errorf("Method = %q, want %q", res.Method, tc.wantMethod)
				}
				if res.SUDI != tc.wantSUDI {
					t.Errorf("SUDI = %q, want %q", res.SUDI, tc.wantSUDI)
				}
				switch {
				case tc.wantCert == nil && (res.Certificate != nil || res.CertKind != ""):
					t.Errorf("Result carries certificate %v (%q)", res.Certificate, res.CertKind)
				case tc.wantCert != nil && (res.Certificate == nil || !res.Certificate.Equal(tc.wantCert.cert)):
					t.Errorf("Result certificate is not the presented one")
				case tc.wantCert != nil && string(res.CertKind) != strings.ToUpper(string(res.Method)):
					t.Errorf("CertKind %q does not match Method %q", res.CertKind, res.Method)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Authenticate = %+v, %v; want *Error %q", res, err, tc.wantReason)
			}
			if ae.Reason != tc.wantReason || !strings.Contains(ae.Detail, tc.wantDetail) {
				t.Errorf("error = %q / %q; want %q / containing %q", ae.Reason, ae.Detail, tc.wantReason, tc.wantDetail)
			}
			if !errors.Is(err, fault.ErrUnauthorized) || fault.KindOf(err) != fault.Unauthorized {
				t.Errorf("error %v does not match fault.ErrUnauthorized", err)
			}
			if msg := err.Error(); !strings.Contains(msg, ae.Reason) || !strings.Contains(msg, ae.Detail) {
				t.Errorf("Error() = %q lacks the reason or the detail", msg)
			}
			if res != (Result{SUDI: tc.wantSUDI}) {
				t.Errorf("failure returned a result %+v, want only SUDI %q", res, tc.wantSUDI)
			}
		})
	}
	if n := policyMatters.Load(); n < 4 {
		t.Errorf("the policy decided %d cases, want at least 4: AuthenticateWith is not shown to apply it", n)
	}
}

func TestParseSUDIPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     SUDIPolicy
		wantErr  bool
	}{
		{name: "ok/default", in: "", want: SUDIWhenTrusted},
		{name: "ok/when-trusted", in: "when-trusted", want: SUDIWhenTrusted},
		{name: "ok/required", in: "required", want: SUDIRequired},
		{name: "ok/off", in: "off", want: SUDIOff},
		{name: "fail/unknown", in: "sometimes", wantErr: true},
		{name: "fail/case", in: "Required", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSUDIPolicy(tc.in)
			if tc.wantErr {
				if fault.KindOf(err) != fault.Invalid {
					t.Fatalf("ParseSUDIPolicy(%q) = %v, %v; want an Invalid error", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseSUDIPolicy(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if tc.in != "" && got.String() != tc.in {
				t.Errorf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
	if s := SUDIPolicy(9).String(); s != "SUDIPolicy(9)" {
		t.Errorf("unknown policy prints %q", s)
	}
}

func TestContainsToken(t *testing.T) {
	for _, tc := range []struct {
		s, tok string
		want   bool
	}{
		{"CP-7975G-SEP0019E8F3F4B8", "SEP0019E8F3F4B8", true},
		{"SEP0019E8F3F4B8", "SEP0019E8F3F4B8", true},
		{"SEP0019E8F3F4B8.example", "SEP0019E8F3F4B8", true},
		{"CP-7975G-SEP0019E8F3F4B8", "SEP0019E8F3F4B", false},
		{"CP-7975G-SEP0019E8F3F4B8", "EP0019E8F3F4B8", false},
		{"XSEP1 SEP1", "SEP1", true},
		{"", "SEP1", false},
	} {
		if got := containsToken(tc.s, tc.tok); got != tc.want {
			t.Errorf("containsToken(%q, %q) = %v, want %v", tc.s, tc.tok, got, tc.want)
		}
	}
}
