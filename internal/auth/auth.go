package auth

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// CertKind is what a phone labelled the certificate it authenticates with.
type CertKind string

// The certificate kinds.
const (
	CertLSC CertKind = "LSC" // a Locally Significant Certificate issued by a CAPF
	CertMIC CertKind = "MIC" // the Manufacturer Installed Certificate
)

// Presented is what a phone sent in its AUTH_RESPONSE, decoded.
type Presented struct {
	DeviceName  string
	SessionID   uint32
	Password    string // PASSWORD without its NUL terminator
	HasPassword bool   // whether the PASSWORD element was present
	// CertType is how the phone labelled CertDER (the CERTIFICATE wrapper's
	// type byte, or AUTH_TYPE): CertLSC, CertMIC, or "" when it did not say.
	CertType CertKind
	CertDER  []byte      // the certificate without its 5-byte wrapper
	SHA1Sig  []byte      // SIGNED_DATA
	SHA2Hash crypto.Hash // hash of SHA2_SIGNED_DATA: crypto.SHA256 or crypto.SHA512; 0 if absent
	SHA2Sig  []byte      // signature of SHA2_SIGNED_DATA
	SUDI     *SUDI       // SUDI_DATA, if present
}

// SUDI is the decoded SUDI_DATA of an AUTH_RESPONSE: the phone's Secure
// Unique Device Identifier certificate and its signatures over the session
// id (4 bytes, little-endian) followed by that certificate.
type SUDI struct {
	CertDER   []byte
	SHA1Sig   []byte
	SHA512Sig []byte
}

// Options configures a Verifier.
type Options struct {
	// LSCRoots holds the CAPF certificate(s) that issue LSCs.
	LSCRoots *x509.CertPool
	// LSCRootSource, when set, gives the LSC trust anchors in force at
	// each authentication instead of LSCRoots: the CA set of a server
	// whose CAPF certificates change while it runs.
	LSCRootSource RootSource
	// MICRoots is the manufacturer CA bundle; every certificate in it is
	// trusted as a root. Nil means none is configured and MICs are refused.
	MICRoots *x509.CertPool
	// MICBundle optionally lists the certificates of the manufacturer
	// bundle (see LoadBundleCertificates). crypto/x509 refuses SHA-1
	// signatures on certificates, yet the MICs of the 79xx generation are
	// signed with SHA-1 by the "Cisco Manufacturing CA". With MICBundle set,
	// a MIC whose own signature uses SHA-1 is accepted when a certificate of
	// the bundle issued it directly (name, CA flag, key usage, validity and
	// signature all checked). If MICRoots is nil it is built from MICBundle.
	MICBundle []*x509.Certificate
	// SUDIRoots is the CA bundle for SUDI certificates; nil means MICRoots.
	// A SUDI certificate is also trusted when it chains to LSCRoots (a
	// phone may present its LSC as its SUDI).
	SUDIRoots *x509.CertPool
	// SUDIPolicy is what to do with SUDI_DATA; the zero value is
	// SUDIWhenTrusted.
	SUDIPolicy SUDIPolicy
	// AllowExpiredMIC accepts a MIC after its NotAfter, verifying its chain
	// as of that instant. Off by default: it must be an administrator's
	// explicit choice.
	AllowExpiredMIC bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// RootSource gives the LSC trust anchors in force now. The pool it returns
// is not changed afterwards; it never waits.
type RootSource interface {
	LSCRoots() *x509.CertPool
}

// Verifier authenticates phones. It is safe for concurrent use.
type Verifier struct {
	o Options
}

// New returns a Verifier for o.
func New(o Options) *Verifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MICRoots == nil && len(o.MICBundle) > 0 {
		o.MICRoots = x509.NewCertPool()
		for _, c := range o.MICBundle {
			o.MICRoots.AddCert(c)
		}
	}
	if o.SUDIRoots == nil {
		o.SUDIRoots = o.MICRoots
	}
	return &Verifier{o: o}
}

// lscRoots returns the LSC trust anchors in force.
func (v *Verifier) lscRoots() *x509.CertPool {
	if v.o.LSCRootSource != nil {
		return v.o.LSCRootSource.LSCRoots()
	}
	return v.o.LSCRoots
}

// Result says how a phone authenticated.
type Result struct {
	// Method is what actually authenticated the phone: device.AuthString,
	// device.AuthNull, device.AuthLSC or device.AuthMIC. In the certificate
	// modes it names the certificate that verified, whichever the mode's
	// precedence was.
	Method device.AuthMode
	// Certificate is the verified LSC or MIC; nil for the other methods.
	Certificate *x509.Certificate
	// CertKind is CertLSC or CertMIC when a certificate authenticated.
	CertKind CertKind
	// SUDI is the outcome of the SUDI data for the attempt history: "" when
	// the phone sent none, else one of the SUDI* outcome constants
	// (SUDIVerified, SUDIUnknownIssuer, SUDIIgnored, …). It is set even when
	// Authenticate fails, when the SUDI data was examined.
	SUDI string
}

// Error is an authentication failure.
type Error struct {
	// Reason is the CallManager failure reason for the operation status:
	// device.ReasonInvalidAuthString, ReasonInvalidLSC, ReasonInvalidMIC
	// or ReasonInvalidCredentials.
	Reason string
	// Detail says precisely what failed, for the log. It is not meant for
	// the phone.
	Detail string
}

// Error implements error.
func (e *Error) Error() string { return "authentication failed: " + e.Reason + ": " + e.Detail }

// Unwrap returns a fault.Unauthorized error, so that errors.Is(err,
// fault.ErrUnauthorized) holds and fault.KindOf reports Unauthorized.
func (e *Error) Unwrap() error { return &fault.Error{Kind: fault.Unauthorized, Msg: e.Reason} }

func fail(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Authenticate checks what the phone presented against the device's
// authentication mode and, for mode string, its authentication string.
//
//   - device.AuthString: the phone must send a non-empty PASSWORD equal to
//     the non-empty authString (compared in constant time).
//   - device.AuthNull: anything is accepted.
//   - device.AuthLSC and device.AuthMIC: the phone must present a
//     certificate and sign with its key. Precedence is the phone's choice
//     of which certificate to present (its capfAuthMode), not something the
//     server can enforce: a valid LSC or a valid MIC is accepted in either
//     mode. The label the phone gave the certificate picks the rules; an
//     unlabelled certificate is tried as an LSC, then as a MIC.
//
// When SUDI data is present it is examined first, in every mode, under
// Options.SUDIPolicy (see [SUDIPolicy]): a bad SUDI signature refuses the
// phone; an untrusted SUDI chain refuses it only when SUDI is required.
//
// A failure is returned as an *Error, together with a Result whose only
// meaningful field is SUDI (the SUDI outcome, when known), so that the
// attempt history records it for failed attempts too.
func (v *Verifier) Authenticate(mode device.AuthMode, authString string, p Presented) (Result, error) {
	return v.AuthenticateWith(v.Policy(), mode, authString, p)
}

// Policy is the part of the authentication rules that an administrator
// changes for the whole fleet while the service runs (the fleet
// parameters sudi_verification and allow_expired_mic): a session passes
// the one in force when it started to AuthenticateWith. The trust anchors
// stay the Verifier's.
type Policy struct {
	// SUDI is what to do with SUDI_DATA; the zero value is
	// SUDIWhenTrusted.
	SUDI SUDIPolicy
	// AllowExpiredMIC accepts a MIC after its NotAfter (see
	// Options.AllowExpiredMIC).
	AllowExpiredMIC bool
}

// Policy returns the policy of the Verifier's Options.
func (v *Verifier) Policy() Policy {
	return Policy{SUDI: v.o.SUDIPolicy, AllowExpiredMIC: v.o.AllowExpiredMIC}
}

// AuthenticateWith is Authenticate under pol instead of the policy of
// the Verifier's Options.
func (v *Verifier) AuthenticateWith(pol Policy, mode device.AuthMode, authString string, p Presented) (Result, error) {
	var sudi string
	if p.SUDI != nil {
		outcome, err := v.checkSUDI(pol, p.SessionID, p.SUDI)
		if err != nil {
			return Result{SUDI: outcome}, err
		}
		sudi = outcome
	}
	var res Result
	var err *Error
	switch mode {
	case device.AuthString:
		res, err = byString(authString, p)
	case device.AuthNull:
		res = Result{Method: device.AuthNull}
	case device.AuthLSC, device.AuthMIC:
		res, err = v.byCertificate(pol, p)
	default:
		err = fail(device.ReasonInvalidCredentials, "unknown authentication mode %q", string(mode))
	}
	if err != nil {
		return Result{SUDI: sudi}, err
	}
	res.SUDI = sudi
	return res, nil
}

// byString compares the PASSWORD with the authentication string. Both are
// hashed to a fixed size first, so that the comparison takes the same time
// whatever their lengths and contents.
func byString(authString string, p Presented) (Result, *Error) {
	got := sha256.Sum256([]byte(p.Password))
	want := sha256.Sum256([]byte(authString))
	same := subtle.ConstantTimeCompare(got[:], want[:]) == 1
	switch {
	case authString == "":
		return Result{}, fail(device.ReasonInvalidAuthString, "no authentication string is set for the device")
	case !p.HasPassword:
		return Result{}, fail(device.ReasonInvalidAuthString, "the phone sent no authentication string")
	case p.Password == "":
		return Result{}, fail(device.ReasonInvalidAuthString, "the phone sent an empty authentication string")
	case !same:
		return Result{}, fail(device.ReasonInvalidAuthString, "authentication string does not match")
	}
	return Result{Method: device.AuthString}, nil
}
