// Package trust writes and reads the signed trust lists Cisco IP phones
// download at boot (CTLFile.tlv, ITLFile.tlv and their per-phone variants)
// and signed configuration files (.sgn), byte for byte as described in
// docs ctl-itl-files.md.
//
// A trust file is a header followed by one record per certificate, every
// element a tag (1 byte), a big-endian length (2 bytes) and a value. [Build]
// assembles the header and records, signs them with a SAST key (RSA PKCS#1
// v1.5 over SHA-1 or SHA-512, as the header says) and inserts the SIGNATURE
// element after SIGNATURE_MODULUS. [Parse] reads any such file, ours or
// another vendor's, and returns a [*ParseError] with the byte offset for
// anything malformed; [File.Verify] removes the SIGNATURE element and checks
// the signature with the SAST record whose serial the header names.
//
// The two kinds of file differ in their header: a trust file's is format
// 1.2 and carries SIGNER_VERSION (tag 28); a signed configuration file's
// ([SignFile]) is format 1.0 with only the tags 1–15, which is what phones
// and the tools that have served them take (their parsers refuse tag 28).
//
// Subject and issuer names are written as text in the certificate's own
// attribute order (the order of the DER RDNSequence, not the reversed order
// of pkix.Name.String): "CN=…,OU=…,O=…" with RFC 4514 escaping; see
// [NameText].
//
// [Keystore] keeps the two SAST signing identities (primary and backup)
// under the data directory; it is the only part of the package that touches
// files, besides what internal/atomicfile writes.
//
// The package imports only the standard library and internal/fault.
package trust
