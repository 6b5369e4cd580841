// Package ca holds the CAPF's own key and certificate and issues Locally
// Significant Certificates (LSCs) to phones.
//
// [LoadOrCreate] finds the CAPF key and certificate in a directory (capf.key,
// PKCS#8 PEM readable by the owner only, and capf.pem) or, on first start,
// generates a key and a self-signed CA certificate (path length 0) and
// writes both atomically. [Load] only loads, for commands that must not
// create anything.
//
// [Authority.Issue] follows the "validate, then sign exactly once" rule:
// the device name and the phone's public key are checked before anything is
// signed, the certificate is built from the LSC profile that working
// deployments use (see capf-protocol.md, "Issued LSC"), and the signed
// certificate is parsed back and verified against the CAPF certificate
// before it is returned.
//
// [SubjectHash] and [HashFileName] compute OpenSSL's subject-name hash, the
// name under which the CAPF certificate is distributed (the c_rehash
// "hash.0" file).
//
// The package imports only the standard library and internal/fault. The
// clock and the source of randomness for serial numbers are injected through
// [Options].
package ca
