package trust

import (
	"crypto/x509"
	"io"
	"math"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// The signed configuration file (.sgn) that secure-mode phones ask for
// instead of SEP<MAC>.cnf.xml: a header like a trust file's but of format
// version 1.0 and without SIGNER_VERSION (tags 1–15 only; parsers of .sgn
// files refuse tag 28), with FILENAME naming the configuration file (e.g.
// SEP58971ECC97C1.cnf.xml), followed by the file's bytes unchanged instead
// of records. The signature
// covers header-without-SIGNATURE followed by the content, exactly as in a
// trust file. Phones check it with a certificate that has the TFTP role in
// their trust file, which is why [Build]'s callers list the primary SAST
// certificate a second time with the TFTP role.

// MaxSignedContent is the largest configuration file SignFile signs.
const MaxSignedContent = MaxParseSize - 4096

// SignOptions describes a signed configuration file for [SignFile].
type SignOptions struct {
	FileName string        // the configuration file's name, without .sgn
	Hash     HashAlgorithm // SHA1 (default) or SHA512
	Signer   Signing       // the TFTP-role identity
	Now      time.Time     // TIMESTAMP; zero means time.Now()
	Rand     io.Reader     // nil means crypto/rand.Reader
}

// SignFile returns content signed as a .sgn file.
func SignFile(o SignOptions, content []byte) ([]byte, error) {
	if err := validFileName(o.FileName); err != nil {
		return nil, err
	}
	if len(content) == 0 {
		return nil, fault.Invalidf("%s is empty", o.FileName)
	}
	if len(content) > MaxSignedContent {
		return nil, fault.Invalidf("%s is %d bytes: at most %d", o.FileName, len(content), MaxSignedContent)
	}
	if o.Hash == 0 {
		o.Hash = SHA1
	}
	if o.Hash != SHA1 && o.Hash != SHA512 {
		return nil, fault.Invalidf("hash algorithm %d: want SHA-1 or SHA-512", o.Hash)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if now.Unix() < 0 || now.Unix() > math.MaxUint32 {
		return nil, fault.Invalidf("timestamp %s does not fit the file's 32-bit TIMESTAMP", now)
	}
	if _, _, err := checkSigner(o.Signer); err != nil {
		return nil, err
	}
	return sign(o.Signer, headerSpec{
		version: signedFileVersion, signer: o.Signer.Cert, hash: o.Hash, fileName: o.FileName,
		timestamp: uint32(now.Unix()),
	}, content, o.Rand)
}

// SignedFile is a parsed .sgn file.
type SignedFile struct {
	Header  Header
	Content []byte
	file    *File
}

// ParseSigned decodes a .sgn file. Every error is a *ParseError.
func ParseSigned(data []byte) (*SignedFile, error) {
	f, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	return &SignedFile{Header: f.Header, Content: data[f.bodyAt:], file: f}, nil
}

// Verify checks the signature of s with cert, the certificate the header
// names (a TFTP-role certificate of the phone's trust file). Failures wrap
// ErrSignature.
func (s *SignedFile) Verify(cert *x509.Certificate) error {
	return verifyHeader(s.Header, s.file.SignedBytes(), cert)
}
