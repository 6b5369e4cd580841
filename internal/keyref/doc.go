// Package keyref turns a key reference into a private key the rest of the
// project signs (and, for RSA, decrypts) with, whatever holds the key.
//
// A key reference is either a file path (a PEM private key: PKCS #8,
// PKCS #1 or SEC 1, readable only by its owner) or an RFC 7512 PKCS #11
// URI naming a key in a hardware token:
//
//	pkcs11:token=CAPF;object=capf-ca
//	pkcs11:token=CAPF;id=%01%a2
//
// Load opens either kind and returns a [Key]: its [crypto.Signer], and for
// RSA keys a [crypto.Decrypter] (the legacy TLS profile's RSA key exchange
// needs one). A token key never leaves the token: every signature and
// decryption is done by the PKCS #11 module (through crypto11), which
// needs the module's path and a PIN file (see [Options]). PKCS #11 needs
// cgo; a binary built with CGO_ENABLED=0 refuses pkcs11: references with
// [ErrNoPKCS11].
//
// Errors are specific: each wraps one of the Err sentinels of this package
// (compare with errors.Is) and a kind of package fault for the edges.
package keyref
