package ca

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Description is what an administrator is shown of a certificate, in every
// edge's words: the CLI's `ca show`, the API and the web UI.
type Description struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"` // upper-case hex of its bytes, as openssl x509 -serial prints it
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Key       string    `json:"key"`
	SHA1      string    `json:"sha1"`   // upper-case hex of the DER
	SHA256    string    `json:"sha256"` // upper-case hex of the DER
	HashName  string    `json:"hash_name"`
}

// Describe returns c's description, with its OpenSSL subject-hash file
// name.
func Describe(c *x509.Certificate) (Description, error) {
	hashName, err := HashFileName(c)
	if err != nil {
		return Description{}, fmt.Errorf("describe certificate: %w", err)
	}
	s1, s256 := sha1.Sum(c.Raw), sha256.Sum256(c.Raw)
	return Description{
		Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: fmt.Sprintf("%X", c.SerialNumber.Bytes()),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Key: c.PublicKeyAlgorithm.String(),
		SHA1: strings.ToUpper(hex.EncodeToString(s1[:])), SHA256: strings.ToUpper(hex.EncodeToString(s256[:])),
		HashName: hashName,
	}, nil
}
