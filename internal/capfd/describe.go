package capfd

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"
)

// DescribeCAPF lists how the CAPF certificate cert (capfd's, often made
// with `openssl req -x509`) differs from one this CAPF makes, and what
// needs attention at time now. It is taken as it is, since phones trust
// it already; the list says what a certificate of ours would add.
func DescribeCAPF(cert *x509.Certificate, now time.Time) []string {
	var out []string
	if cert.KeyUsage == 0 {
		usage := "keyCertSign, cRLSign and digitalSignature"
		if _, ok := cert.PublicKey.(*rsa.PublicKey); ok {
			usage += ", and keyEncipherment for phones that only do RSA key exchange"
		}
		out = append(out, "it has no key-usage extension, so its key may be used for anything; ours limits it to "+usage)
	} else if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		out = append(out, "its key usage lacks keyCertSign: strict verifiers refuse the LSCs it signs; ours has it")
	}
	if len(cert.ExtKeyUsage) == 0 {
		out = append(out, "it has no extended key usage; ours lists serverAuth (its TLS role) and the LSCs' clientAuth and ipsecEndSystem")
	}
	if !cert.MaxPathLenZero && cert.MaxPathLen <= 0 {
		out = append(out, "it has no path-length constraint, so the certificates it signs could be CAs too; ours sets pathlen 1 (room for one issuing CA, none below it)")
	}
	if len(cert.SubjectKeyId) == 0 {
		out = append(out, "it has no subject key identifier; ours has one, which the LSCs' authority key identifier points to")
	}
	switch left := cert.NotAfter.Sub(now); {
	case left <= 0:
		out = append(out, "it EXPIRED on "+cert.NotAfter.UTC().Format(time.RFC3339)+": phones refuse the TLS connection; plan a new CAPF certificate and trust file now")
	case left < 180*24*time.Hour:
		out = append(out, fmt.Sprintf("it expires in %d days (%s): plan its successor and the trust file that carries it", int(left.Hours()/24), cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	switch cert.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.MD5WithRSA:
		out = append(out, "it is signed with "+cert.SignatureAlgorithm.String()+"; ours use SHA-256 or stronger")
	}
	return out
}
