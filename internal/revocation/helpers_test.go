package revocation_test

import "crypto/x509"

func parseCert(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }
