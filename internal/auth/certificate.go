package auth

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// byCertificate authenticates by the presented LSC or MIC.
func (v *Verifier) byCertificate(pol Policy, p Presented) (Result, *Error) {
	if len(p.CertDER) == 0 {
		return Result{}, fail(device.ReasonInvalidCredentials, "no certificate presented")
	}
	var reason string
	switch p.CertType {
	case CertLSC:
		reason = device.ReasonInvalidLSC
	case CertMIC:
		reason = device.ReasonInvalidMIC
	case "":
		reason = device.ReasonInvalidCredentials
	default:
		return Result{}, fail(device.ReasonInvalidCredentials, "unknown certificate type %q", string(p.CertType))
	}
	cert, err := x509.ParseCertificate(p.CertDER)
	if err != nil {
		return Result{}, fail(reason, "certificate does not parse: %v", err)
	}

	switch p.CertType {
	case CertLSC:
		_, err := v.checkLSC(cert, p)
		return result(cert, CertLSC, err)
	case CertMIC:
		_, err := v.checkMIC(pol, cert, p)
		return result(cert, CertMIC, err)
	}
	// Unlabelled: the rules of whichever issuer the certificate chains to
	// decide; if it chains to neither, say why for both.
	lscChained, lscErr := v.checkLSC(cert, p)
	if lscErr == nil || lscChained {
		return result(cert, CertLSC, lscErr)
	}
	micChained, micErr := v.checkMIC(pol, cert, p)
	if micErr == nil || micChained {
		return result(cert, CertMIC, micErr)
	}
	return Result{}, fail(device.ReasonInvalidCredentials, "certificate is neither an LSC (%s) nor a MIC (%s)", lscErr.Detail, micErr.Detail)
}

func result(cert *x509.Certificate, kind CertKind, err *Error) (Result, *Error) {
	if err != nil {
		return Result{}, err
	}
	method := device.AuthLSC
	if kind == CertMIC {
		method = device.AuthMIC
	}
	return Result{Method: method, Certificate: cert, CertKind: kind}, nil
}

// checkLSC applies the LSC rules: the certificate chains to LSCRoots now,
// its subject CN is the device name (case-insensitive), and the
// signatures verify. chained reports whether the chain held (the
// certificate is an LSC of ours, whatever else failed).
func (v *Verifier) checkLSC(cert *x509.Certificate, p Presented) (chained bool, err *Error) {
	bad := func(format string, args ...any) *Error { return fail(device.ReasonInvalidLSC, format, args...) }
	roots := v.lscRoots()
	if roots == nil {
		return false, bad("no LSC issuer configured")
	}
	now := v.o.Now()
	verify := func(at time.Time) error { return verifyChain(cert, roots, at) }
	if msg := validityProblem(cert, now); msg != "" {
		return chainedAtSomeTime(cert, verify), bad("%s", msg)
	}
	if err := verify(now); err != nil {
		return false, bad("does not chain to the CAPF certificate: %v", err)
	}
	if !strings.EqualFold(cert.Subject.CommonName, p.DeviceName) {
		return true, bad("subject CN %q does not name device %s", cert.Subject.CommonName, p.DeviceName)
	}
	if err := checkSignatures(cert, p); err != nil {
		return true, bad("%v", err)
	}
	return true, nil
}

// checkMIC applies the MIC rules: the certificate chains to the
// manufacturer bundle (as of its expiry if it has expired and that is
// allowed), names the device in its CN or a SAN, and the signatures verify.
func (v *Verifier) checkMIC(pol Policy, cert *x509.Certificate, p Presented) (chained bool, err *Error) {
	bad := func(format string, args ...any) *Error { return fail(device.ReasonInvalidMIC, format, args...) }
	if v.o.MICRoots == nil {
		return false, bad("no manufacturer CA bundle configured")
	}
	now := v.o.Now()
	verify := func(at time.Time) error { return v.verifyMICChain(cert, at) }
	at := now
	if now.After(cert.NotAfter) && pol.AllowExpiredMIC {
		at = cert.NotAfter // still within the validity, by one instant
	} else if msg := validityProblem(cert, now); msg != "" {
		if now.After(cert.NotAfter) {
			msg += " (expired MICs are refused unless the administrator allows them)"
		}
		return chainedAtSomeTime(cert, verify), bad("%s", msg)
	}
	if err := verify(at); err != nil {
		return false, bad("does not chain to the manufacturer CA bundle: %v", err)
	}
	if !namesDevice(cert, p.DeviceName) {
		return true, bad("subject CN %q and subject alternative names do not name device %s", cert.Subject.CommonName, p.DeviceName)
	}
	if err := checkSignatures(cert, p); err != nil {
		return true, bad("%v", err)
	}
	return true, nil
}

// verifyMICChain verifies a MIC's chain to the manufacturer bundle at t,
// accepting a SHA-1 signature on the MIC itself when MICBundle lists its
// issuer.
func (v *Verifier) verifyMICChain(cert *x509.Certificate, t time.Time) error {
	err := verifyChain(cert, v.o.MICRoots, t)
	if err == nil || !isSHA1(cert.SignatureAlgorithm) {
		return err
	}
	if len(v.o.MICBundle) == 0 {
		return fmt.Errorf("%w (the MIC is signed with %v: list the manufacturer CA certificates to accept SHA-1-signed MICs)", err, cert.SignatureAlgorithm)
	}
	return verifySHA1Direct(cert, v.o.MICBundle, t)
}

func isSHA1(a x509.SignatureAlgorithm) bool {
	return a == x509.SHA1WithRSA || a == x509.ECDSAWithSHA1
}

// verifySHA1Direct checks that one of bundle issued cert directly and is
// fit to at t. It exists because crypto/x509 no longer verifies SHA-1
// certificate signatures, which the oldest MICs carry.
func verifySHA1Direct(cert *x509.Certificate, bundle []*x509.Certificate, t time.Time) error {
	if len(cert.UnhandledCriticalExtensions) > 0 {
		return errors.New("x509: unhandled critical extension")
	}
	if t.Before(cert.NotBefore) || t.After(cert.NotAfter) {
		return errors.New("x509: certificate has expired or is not yet valid")
	}
	var lastErr error = errors.New("no certificate in the manufacturer CA bundle issued it")
	for _, ca := range bundle {
		switch {
		case !bytes.Equal(ca.RawSubject, cert.RawIssuer):
			continue
		case ca.Version >= 3 && !(ca.BasicConstraintsValid && ca.IsCA),
			ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0:
			lastErr = fmt.Errorf("issuer %q is not a CA", ca.Subject)
			continue
		case t.Before(ca.NotBefore) || t.After(ca.NotAfter):
			lastErr = fmt.Errorf("issuer %q is not valid at %s", ca.Subject, t.UTC().Format(time.RFC3339))
			continue
		}
		// CheckSignature, unlike CheckSignatureFrom, still accepts SHA-1.
		if err := ca.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			lastErr = fmt.Errorf("signature by %q does not verify: %v", ca.Subject, err)
			continue
		}
		return nil
	}
	return fmt.Errorf("SHA-1-signed MIC: %w", lastErr)
}

// verifyChain verifies cert against roots at t, for any key usage.
func verifyChain(cert *x509.Certificate, roots *x509.CertPool, t time.Time) error {
	_, err := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: t,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// validityProblem describes why cert is not valid at now, or returns "".
func validityProblem(cert *x509.Certificate, now time.Time) string {
	switch {
	case now.After(cert.NotAfter):
		return "certificate expired at " + cert.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(cert.NotBefore):
		return "certificate is not valid before " + cert.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// chainedAtSomeTime reports whether a certificate that is outside its
// validity would chain within it: whether it comes from that issuer at all.
func chainedAtSomeTime(cert *x509.Certificate, verify func(time.Time) error) bool {
	return verify(cert.NotAfter) == nil || verify(cert.NotBefore) == nil
}

// namesDevice reports whether name appears, case-insensitively and as a
// whole token (not followed or preceded by a letter or digit), in the
// subject CN or a subject alternative name of cert. Cisco MICs name the
// phone as CN=CP-7975G-SEP0019E8F3F4B8.
func namesDevice(cert *x509.Certificate, name string) bool {
	if name == "" {
		return false
	}
	candidates := []string{cert.Subject.CommonName}
	candidates = append(candidates, cert.DNSNames...)
	candidates = append(candidates, cert.EmailAddresses...)
	for _, u := range cert.URIs {
		candidates = append(candidates, u.String())
	}
	for _, c := range candidates {
		if containsToken(strings.ToUpper(c), strings.ToUpper(name)) {
			return true
		}
	}
	return false
}

// containsToken reports whether tok occurs in s with no letter or digit
// right before or after it.
func containsToken(s, tok string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], tok)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(tok)
		if (start == 0 || !isAlnum(s[start-1])) && (end == len(s) || !isAlnum(s[end])) {
			return true
		}
		i = start + 1
	}
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
