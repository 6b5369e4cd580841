package phonesim

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Credential is a certificate and the key that signs for it: the phone's
// LSC, MIC or SUDI.
type Credential struct {
	Certificate *x509.Certificate
	Key         crypto.Signer
}

// LoadCredential reads a PEM file holding a certificate and its private key
// (PKCS#8, PKCS#1 or SEC1), in any order.
func LoadCredential(path string) (*Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseCredential(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCredential decodes PEM data holding a certificate and its private
// key. The first certificate is the credential's; the key must match it.
func ParseCredential(data []byte) (*Credential, error) {
	var c Credential
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if c.Certificate != nil {
				continue
			}
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, err
			}
			c.Certificate = cert
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if c.Key != nil {
				return nil, errors.New("more than one private key")
			}
			k, err := parsePrivateKey(b.Bytes)
			if err != nil {
				return nil, err
			}
			c.Key = k
		}
	}
	if c.Certificate == nil {
		return nil, errors.New("no CERTIFICATE block")
	}
	if c.Key == nil {
		return nil, errors.New("no private key block")
	}
	if !samePublicKey(c.Certificate.PublicKey, c.Key.Public()) {
		return nil, errors.New("the private key does not match the certificate")
	}
	return &c, nil
}

// PEM encodes the credential as a certificate block followed by a PKCS#8
// private key block, the format [ParseCredential] reads.
func (c *Credential) PEM() ([]byte, error) {
	key, err := marshalKey(c.Key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate.Raw})
	return append(out, key...), nil
}

// parsePrivateKey accepts PKCS#8, PKCS#1 and SEC1 DER whatever the PEM
// block type says.
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", k)
		}
		return s, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("private key is neither PKCS#8, PKCS#1 nor SEC1")
}

// marshalKey returns a PKCS#8 PEM block for k.
func marshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// LoadTrust reads the CAPF certificate(s) a phone trusts — as listed with
// the CAPF role in its CTL/ITL file — from the CERTIFICATE blocks of a PEM
// file.
func LoadTrust(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New(path + ": no CERTIFICATE block")
	}
	return certs, nil
}
