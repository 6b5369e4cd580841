package ca

import (
	"crypto/x509"

	"github.com/capf-server/capf/internal/fault"
)

// SetChain sets the certificates above the CAPF certificate (its
// intermediates up to a root, from an outside CA) that TLS sends after
// it; each must have signed the one before. Call it before the Authority
// is used: it is not safe concurrently with TLSCertificate.
func (a *Authority) SetChain(above []*x509.Certificate) error {
	prev := a.cert
	chain := make([][]byte, 0, len(above))
	for _, c := range above {
		if err := prev.CheckSignatureFrom(c); err != nil {
			return fault.Invalidf("the chain certificate %s did not sign %s: %v", c.Subject, prev.Subject, err)
		}
		chain = append(chain, c.Raw)
		prev = c
	}
	a.chain = chain
	return nil
}
