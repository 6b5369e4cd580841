package trust

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// MaxSAST is the number of SAST records a phone accepts in one file.
const MaxSAST = 2

// Entry is one certificate to list in a trust file, with its role.
type Entry struct {
	Role Role
	Cert *x509.Certificate
}

// Signing is the identity that signs a file: a SAST certificate and its
// private key (RSA, at most 2048 bits).
type Signing struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// BuildOptions describes a trust file for [Build].
type BuildOptions struct {
	// FileName is the name the phone asks for, e.g. ITLFile.tlv; it goes
	// into the FILENAME element.
	FileName string
	// Hash is the digest of the signature: SHA1 (the default) or SHA512.
	Hash HashAlgorithm
	// SignerVersion is written as SIGNER_VERSION; zero means 1.0.
	SignerVersion SignerVersion
	// Signer signs the file. Its certificate must be among Entries with
	// the SAST role.
	Signer Signing
	// Entries are the records, in order.
	Entries []Entry
	// Now is the TIMESTAMP; the zero value means time.Now().
	Now time.Time
	// Rand is used for signing; nil means crypto/rand.Reader.
	Rand io.Reader
}

// checkSigner checks that s can sign a file phones accept and returns the
// signature length in bytes and its SIGNATURE_MODULUS index.
func checkSigner(s Signing) (int, uint8, error) {
	if s.Cert == nil || s.Key == nil {
		return 0, 0, fault.Invalidf("no signing certificate and key")
	}
	pub, ok := s.Cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return 0, 0, fault.Invalidf("signing certificate %s has a %s key: trust files are signed with RSA", s.Cert.Subject, s.Cert.PublicKeyAlgorithm)
	}
	if s.Cert.SerialNumber == nil || s.Cert.SerialNumber.Sign() <= 0 {
		return 0, 0, fault.Invalidf("signing certificate %s has no positive serial number", s.Cert.Subject)
	}
	kp, ok := s.Key.Public().(*rsa.PublicKey)
	if !ok || !kp.Equal(pub) {
		return 0, 0, fault.Invalidf("signing key does not match the signing certificate %s", s.Cert.Subject)
	}
	bits := pub.N.BitLen()
	if bits > 2048 {
		return 0, 0, fault.Invalidf("signing key is RSA %d bits: phones accept at most 2048", bits)
	}
	size := (bits + 7) / 8
	for i, n := range modulusSizes {
		if n == size {
			return size, uint8(i), nil
		}
	}
	return 0, 0, fault.Invalidf("signing key is RSA %d bits: want 1024 or 2048", bits)
}

// hashOf returns the crypto.Hash for h.
func hashOf(h HashAlgorithm) (crypto.Hash, error) {
	switch h {
	case SHA1:
		return crypto.SHA1, nil
	case SHA512:
		return crypto.SHA512, nil
	}
	return 0, fault.Invalidf("unsupported digest %s: want sha1 or sha512", h)
}

func digest(h crypto.Hash, data []byte) []byte {
	if h == crypto.SHA1 {
		s := sha1.Sum(data)
		return s[:]
	}
	s := sha512.Sum512(data)
	return s[:]
}

// headerSpec is what goes into a header besides the signature.
type headerSpec struct {
	version       [2]byte // VERSION: trustFileVersion or signedFileVersion
	signer        *x509.Certificate
	hash          HashAlgorithm
	modulus       uint8
	fileName      string
	timestamp     uint32
	signerVersion SignerVersion // SIGNER_VERSION; zero: no such element (.sgn)
}

// encodeHeader returns the header with a placeholder signature of sigLen
// bytes, and the offsets of the SIGNATURE element in it. The layout:
//
//	VERSION · HEADER_LENGTH · SIGNER_INFO{SIGNER_NAME · SERIAL_NUMBER · ISSUER_NAME}
//	· SIGNATURE_INFO{HASH_ALGORITHM · SIGNATURE_ALGORITHM_INFO{SIGNATURE_ALGORITHM · SIGNATURE_MODULUS}}
//	· SIGNATURE · FILENAME · TIMESTAMP [· SIGNER_VERSION] · PADDING…
//
// The SIGNER_INFO children are written in tag order, as CallManager does.
// SIGNER_VERSION belongs to trust files only: a .sgn header has none.
func encodeHeader(s headerSpec, sigLen int) (hdr []byte, sigAt, sigEnd int, err error) {
	name, err := NameText(s.signer.RawSubject)
	if err != nil {
		return nil, 0, 0, err
	}
	issuer, err := NameText(s.signer.RawIssuer)
	if err != nil {
		return nil, 0, 0, err
	}
	var info bytes.Buffer
	element(&info, tagSignerName, cstring(name))
	element(&info, tagSerialNumber, s.signer.SerialNumber.Bytes())
	element(&info, tagIssuerName, cstring(issuer))
	if info.Len() > math.MaxUint16 {
		return nil, 0, 0, fault.Invalidf("signer names are too long for the header")
	}
	var b bytes.Buffer
	element(&b, tagVersion, s.version[:])
	lenAt := b.Len() + elementHeaderBytes
	element(&b, tagHeaderLength, u16(0))
	b.WriteByte(tagSignerInfo)
	b.Write(u16(info.Len()))
	b.Write(info.Bytes())
	b.WriteByte(tagSignatureInfo)
	b.Write(u16(signatureInfoLen))
	element(&b, tagHashAlgorithm, []byte{byte(s.hash)})
	b.WriteByte(tagSigAlgInfo)
	b.Write(u16(sigAlgInfoLen))
	element(&b, tagSigAlgorithm, []byte{sigAlgorithmRSA})
	element(&b, tagSigModulus, []byte{s.modulus})
	sigAt = b.Len()
	element(&b, tagSignature, make([]byte, sigLen))
	sigEnd = b.Len()
	element(&b, tagFileName, cstring(s.fileName))
	element(&b, tagTimestamp, binary.BigEndian.AppendUint32(nil, s.timestamp))
	if s.signerVersion != (SignerVersion{}) {
		element(&b, tagSignerVersion, s.signerVersion[:])
	}
	for b.Len()%4 != 0 {
		b.WriteByte(tagPadding)
	}
	hdr = b.Bytes()
	if len(hdr) > math.MaxUint16 {
		return nil, 0, 0, fault.Invalidf("header of %d bytes is too long", len(hdr))
	}
	binary.BigEndian.PutUint16(hdr[lenAt:], uint16(len(hdr)))
	return hdr, sigAt, sigEnd, nil
}

// sign completes a header followed by body: it signs everything but the
// SIGNATURE element and writes the signature into it.
func sign(s Signing, spec headerSpec, body []byte, r io.Reader) ([]byte, error) {
	sigLen, modulus, err := checkSigner(s)
	if err != nil {
		return nil, err
	}
	h, err := hashOf(spec.hash)
	if err != nil {
		return nil, err
	}
	spec.modulus = modulus
	hdr, sigAt, sigEnd, err := encodeHeader(spec, sigLen)
	if err != nil {
		return nil, err
	}
	signed := make([]byte, 0, len(hdr)+len(body))
	signed = append(append(append(signed, hdr[:sigAt]...), hdr[sigEnd:]...), body...)
	if r == nil {
		r = rand.Reader
	}
	sig, err := s.Key.Sign(r, digest(h, signed), h)
	if err != nil {
		return nil, fmt.Errorf("trust: sign: %w", err)
	}
	if len(sig) != sigLen {
		return nil, fmt.Errorf("trust: sign: signature of %d bytes, want %d", len(sig), sigLen)
	}
	copy(hdr[sigAt+elementHeaderBytes:sigEnd], sig)
	return append(hdr, body...), nil
}

// validFileName reports whether s may be a FILENAME: what a phone asks a
// TFTP server for, so letters, digits, '.', '-' and '_' only.
func validFileName(s string) error {
	if s == "" || len(s) > 255 {
		return fault.Invalidf("file name %q: want 1 to 255 characters", s)
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fault.Invalidf("file name %q: only letters, digits, '.', '-' and '_' (it is the name phones ask the TFTP server for)", s)
		}
	}
	return nil
}

// Build returns a signed trust file with one record per entry. It refuses
// what phones would refuse: more than MaxSAST SAST records, a signer that
// is not listed as SAST, an RSA signing key over 2048 bits or not matching
// its certificate, and a file over MaxFileSize bytes.
func Build(o BuildOptions) ([]byte, error) {
	if err := validFileName(o.FileName); err != nil {
		return nil, err
	}
	if o.Hash == 0 {
		o.Hash = SHA1
	}
	if o.SignerVersion == (SignerVersion{}) {
		o.SignerVersion = SignerV10
	}
	if o.SignerVersion != SignerV10 && o.SignerVersion != SignerV11 {
		return nil, fault.Invalidf("signer version %s: want 1.0 or 1.1", o.SignerVersion)
	}
	if _, _, err := checkSigner(o.Signer); err != nil {
		return nil, err
	}
	if len(o.Entries) == 0 {
		return nil, fault.Invalidf("no certificates to list")
	}
	sast, signerListed := 0, false
	type key struct {
		role Role
		der  string
	}
	seen := map[key]bool{}
	var body bytes.Buffer
	for i, e := range o.Entries {
		if e.Cert == nil {
			return nil, fault.Invalidf("entry %d has no certificate", i+1)
		}
		if !e.Role.Known() {
			return nil, fault.Invalidf("entry %d (%s): unknown role %s", i+1, e.Cert.Subject, e.Role)
		}
		k := key{e.Role, string(e.Cert.Raw)}
		if seen[k] {
			return nil, fault.Invalidf("%s is listed twice with role %s", e.Cert.Subject, e.Role)
		}
		seen[k] = true
		if e.Role == RoleSAST {
			sast++
			if bytes.Equal(e.Cert.Raw, o.Signer.Cert.Raw) {
				signerListed = true
			}
		}
		rec, err := encodeRecord(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i+1, e.Cert.Subject, err)
		}
		body.Write(rec)
	}
	if sast > MaxSAST {
		return nil, fault.Invalidf("%d SAST records: phones accept at most %d", sast, MaxSAST)
	}
	if !signerListed {
		return nil, fault.Invalidf("the signing certificate %s is not listed with the SAST role: phones could not verify the file", o.Signer.Cert.Subject)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if now.Unix() < 0 || now.Unix() > math.MaxUint32 {
		return nil, fault.Invalidf("timestamp %s does not fit the file's 32-bit TIMESTAMP", now)
	}
	out, err := sign(o.Signer, headerSpec{version: trustFileVersion,
		signer: o.Signer.Cert, hash: o.Hash, fileName: o.FileName,
		timestamp: uint32(now.Unix()), signerVersion: o.SignerVersion,
	}, body.Bytes(), o.Rand)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxFileSize {
		return nil, fault.Invalidf("file would be %d bytes with %d certificates: phones fail to load files over %d bytes (64 KiB, about 39 certificates)", len(out), len(o.Entries), MaxFileSize)
	}
	return out, nil
}

// encodeRecord returns the record of one entry: RECORD_LENGTH,
// SUBJECT_NAME, ROLE, ISSUER_NAME, SERIAL_NUMBER, PUBLIC_KEY, SIGNATURE,
// CERTIFICATE.
func encodeRecord(e Entry) ([]byte, error) {
	subject, err := NameText(e.Cert.RawSubject)
	if err != nil {
		return nil, err
	}
	issuer, err := NameText(e.Cert.RawIssuer)
	if err != nil {
		return nil, err
	}
	pub, err := publicKeyBytes(e.Cert.PublicKey)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	element(&b, rtagRecordLength, u16(0))
	for _, el := range []struct {
		tag byte
		v   []byte
	}{
		{rtagSubjectName, cstring(subject)},
		{rtagRole, u16(int(e.Role))},
		{rtagIssuerName, cstring(issuer)},
		{rtagSerialNumber, e.Cert.SerialNumber.Bytes()},
		{rtagPublicKey, pub},
		{rtagSignature, e.Cert.Signature},
		{rtagCertificate, e.Cert.Raw},
	} {
		if len(el.v) > math.MaxUint16 {
			return nil, fault.Invalidf("element %d of %d bytes is too long for a record", el.tag, len(el.v))
		}
		element(&b, el.tag, el.v)
	}
	rec := b.Bytes()
	if len(rec) > math.MaxUint16 {
		return nil, fault.Invalidf("record of %d bytes is too long", len(rec))
	}
	binary.BigEndian.PutUint16(rec[elementHeaderBytes:], uint16(len(rec)))
	return rec, nil
}

// publicKeyBytes returns the PUBLIC_KEY value: PKCS#1 RSAPublicKey DER for
// RSA, the uncompressed point for EC.
func publicKeyBytes(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return x509.MarshalPKCS1PublicKey(k), nil
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err != nil {
			return nil, fault.Invalidf("EC key: %v", err)
		}
		return e.Bytes(), nil
	}
	return nil, fault.Invalidf("unsupported key type %T: want RSA or EC", pub)
}

// ErrSignature is returned (wrapped) by Verify when the signature does not
// check out.
var ErrSignature = errors.New("signature does not verify")

// Signer returns the record of the certificate that signed f: the SAST
// record whose serial number the header names.
func (f *File) Signer() (*Record, error) {
	for i := range f.Records {
		r := &f.Records[i]
		if r.Role == RoleSAST && bytes.Equal(r.SerialNumber, f.Header.SerialNumber) {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: no SAST record has the header's serial number %X", ErrSignature, f.Header.SerialNumber)
}

// Verify checks the file's signature with the certificate of the SAST
// record whose serial the header names. It returns nil only when the
// signature verifies; failures wrap ErrSignature.
func (f *File) Verify() error {
	rec, err := f.Signer()
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(rec.Certificate)
	if err != nil {
		return fmt.Errorf("%w: signer certificate at offset %d: %v", ErrSignature, rec.Offset, err)
	}
	return verifyHeader(f.Header, f.SignedBytes(), cert)
}

// verifyHeader checks the header's signature over signed with cert.
func verifyHeader(h Header, signed []byte, cert *x509.Certificate) error {
	if h.Signature == nil {
		return fmt.Errorf("%w: the file has no SIGNATURE element", ErrSignature)
	}
	if h.SigAlgorithm != sigAlgorithmRSA {
		return fmt.Errorf("%w: signature algorithm %d is not RSA (0)", ErrSignature, h.SigAlgorithm)
	}
	hash, err := hashOf(h.Hash)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signer certificate has a %s key, not RSA", ErrSignature, cert.PublicKeyAlgorithm)
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest(hash, signed), h.Signature); err != nil {
		return fmt.Errorf("%w: RSA PKCS#1 v1.5 over %s with %s: %v", ErrSignature, h.Hash, cert.Subject, err)
	}
	return nil
}
