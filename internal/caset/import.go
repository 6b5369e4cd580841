package caset

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
)

// The audit actions of CAPF certificates made elsewhere (ADR 0017,
// "Certificates made elsewhere"); target is the CA's id, or the pending
// key's id for AuditCSR.
const (
	AuditImport        = "ca.import"         // a certificate and key made elsewhere, staged
	AuditCSR           = "ca.csr"            // a pending key made for an outside CA to certify
	AuditCSRDiscard    = "ca.csr.discard"    // the pending key discarded before it was certified
	AuditInstallSigned = "ca.install-signed" // the outside CA's certificate for the pending key, staged
)

// PublicKeyID returns the key id of pub as the CA set names keys: the hex
// of the SHA-1 of its subjectPublicKey bit string (RFC 5280 4.2.1.2 (1),
// as the CAPF makes its subject key identifiers); "?" when pub does not
// encode.
func PublicKeyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "?"
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return "?"
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return hex.EncodeToString(sum[:])
}

// CheckPhoneKey refuses a CAPF key that phones do not accept: RSA of 2048
// to 4096 bits, or EC on P-256 or P-384.
func CheckPhoneKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return fault.Invalidf("an RSA key of %d bits: phones accept RSA of 2048 to 4096 bits, or EC P-256 or P-384", n)
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fault.Invalidf("an EC key on %s: phones accept EC P-256 or P-384, or RSA of 2048 to 4096 bits", k.Curve.Params().Name)
		}
		return nil
	}
	return fault.Invalidf("a %T key: phones accept RSA of 2048 to 4096 bits, or EC P-256 or P-384", pub)
}

// CheckImport checks a CAPF certificate made elsewhere before it joins the
// set: leaf is for the key pub (keyName names that key in the error), is a
// CA certificate (basic constraints CA:TRUE) allowed to sign certificates
// (keyCertSign), valid at now, with a key phones accept and a subject key
// identifier. more are the further certificates given with it (the
// intermediates up to a root, in any order); it returns the chain, leaf
// first, each certificate signed by the next, and refuses a certificate of
// more that is not part of it. Every refusal is Invalid and names its
// reason.
func CheckImport(leaf *x509.Certificate, more []*x509.Certificate, pub crypto.PublicKey, keyName string, now time.Time) ([]*x509.Certificate, error) {
	if leaf == nil {
		return nil, fault.Invalidf("no certificate given")
	}
	if p, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) {
		return nil, keyMismatch{fault.Invalidf("the certificate %s is for key %s, not for %s (key %s): nothing was stored", leaf.Subject, PublicKeyID(leaf.PublicKey), keyName, PublicKeyID(pub))}
	}
	if !leaf.BasicConstraintsValid || !leaf.IsCA {
		return nil, fault.Invalidf("the certificate %s is not a CA certificate (no basic constraints CA:TRUE): it cannot sign LSCs", leaf.Subject)
	}
	if leaf.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fault.Invalidf("the certificate %s lacks the key usage keyCertSign: it may not sign LSCs", leaf.Subject)
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, fault.Invalidf("the certificate %s is not valid now: valid from %s to %s", leaf.Subject,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := CheckPhoneKey(leaf.PublicKey); err != nil {
		return nil, fmt.Errorf("the certificate %s has %w", leaf.Subject, err)
	}
	if _, err := KeyID(leaf); err != nil {
		return nil, err
	}
	chain := []*x509.Certificate{leaf}
	rest := append([]*x509.Certificate(nil), more...)
	for cur := leaf; ; {
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) && cur.CheckSignatureFrom(cur) == nil {
			break // a root
		}
		next := -1
		for i, c := range rest {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break // the chain ends at an intermediate: the trust store holds the rest
		}
		cur = rest[next]
		rest = append(rest[:next], rest[next+1:]...)
		if now.After(cur.NotAfter) || now.Before(cur.NotBefore) {
			return nil, fault.Invalidf("the chain certificate %s is not valid now: valid from %s to %s", cur.Subject,
				cur.NotBefore.UTC().Format(time.RFC3339), cur.NotAfter.UTC().Format(time.RFC3339))
		}
		chain = append(chain, cur)
	}
	if len(rest) > 0 {
		return nil, fault.Invalidf("the chain certificate %s did not sign %s nor any certificate above it: give only the certificates from the CAPF certificate up to its root", rest[0].Subject, chain[len(chain)-1].Subject)
	}
	return chain, nil
}

// StageMadeElsewhere adds chain (leaf first, checked by CheckImport; its
// key at keyRef, and stored as key when not nil) as a staged CA, audited
// as action (AuditImport or AuditInstallSigned). A CA already in the set
// is a Conflict that names it.
func (s *Service) StageMadeElsewhere(ctx context.Context, chain []*x509.Certificate, keyRef string, key *keys.Record, action string, actor device.Actor) (Record, error) {
	return s.stageMadeElsewhere(ctx, chain, keyRef, key, action, actor, "")
}

// StagePending stages chain (checked by CheckImport against the pending
// key pendingID of the keys table) with key, its key sealed again under
// its CA id, audited as AuditInstallSigned, and removes the pending key,
// in one transaction. NotFound when the pending key is gone.
func (s *Service) StagePending(ctx context.Context, chain []*x509.Certificate, key *keys.Record, pendingID string, actor device.Actor) (Record, error) {
	if key == nil || pendingID == "" {
		return Record{}, fault.Invalidf("the pending key and the staged CA's key are both needed")
	}
	return s.stageMadeElsewhere(ctx, chain, key.ID, key, AuditInstallSigned, actor, pendingID)
}

func (s *Service) stageMadeElsewhere(ctx context.Context, chain []*x509.Certificate, keyRef string, key *keys.Record, action string, actor device.Actor, pendingID string) (Record, error) {
	if len(chain) == 0 {
		return Record{}, fault.Invalidf("no certificate given")
	}
	id, err := KeyID(chain[0])
	if err != nil {
		return Record{}, err
	}
	have, err := s.st.ListCAs(ctx)
	if err != nil {
		return Record{}, fmt.Errorf("read the CA set: %w", err)
	}
	for _, r := range have {
		if r.ID == id {
			return Record{}, fault.Conflictf("CA %s is in the CA set already (%s): nothing was stored", id, r.State)
		}
	}
	now := s.now().UTC()
	r := Record{ID: id, State: Staged, Chain: ChainDER(chain...), KeyRef: keyRef, CreatedAt: now, ChangedAt: now}
	detail := fmt.Sprintf("staged with a chain of %d certificates made elsewhere: listed in trust files from now on; capf ca activate %s makes it the one phones see", len(chain), id)
	ev := s.event(actor, action, chain[0], detail)
	if pendingID != "" {
		err = s.st.StagePending(ctx, r, key, pendingID, ev)
	} else {
		err = s.st.AddCA(ctx, r, key, ev)
	}
	if err != nil {
		return Record{}, fmt.Errorf("stage CA %s: %w", id, err)
	}
	return r, nil
}

// keyMismatch marks CheckImport's refusal of a certificate for another
// key, so that a caller can blame the key rather than the certificate
// without reading the message.
type keyMismatch struct{ error }

func (e keyMismatch) Unwrap() error { return e.error }

// isKeyMismatch reports whether err is CheckImport's refusal of a
// certificate for another key.
func isKeyMismatch(err error) bool {
	var km keyMismatch
	return errors.As(err, &km)
}
