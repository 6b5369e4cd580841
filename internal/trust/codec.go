package trust

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// Header tags (ctl-itl-files.md, "Header").
const (
	tagVersion         = 1
	tagHeaderLength    = 2
	tagSignerInfo      = 3 // container
	tagSignerName      = 4
	tagSerialNumber    = 5
	tagIssuerName      = 6
	tagSignatureInfo   = 7 // container
	tagHashAlgorithm   = 8
	tagSigAlgInfo      = 9 // container
	tagSigAlgorithm    = 10
	tagSigModulus      = 11
	tagSignature       = 12
	tagPadding         = 13 // one byte, no length
	tagFileName        = 14
	tagTimestamp       = 15
	tagSignerVersion   = 28
	signatureInfoLen   = 15 // HASH_ALGORITHM + SIGNATURE_ALGORITHM_INFO and its two children
	sigAlgInfoLen      = 8  // SIGNATURE_ALGORITHM + SIGNATURE_MODULUS
	sigAlgorithmRSA    = 0
	elementHeaderBytes = 3
)

// Record tags (ctl-itl-files.md, "Records").
const (
	rtagRecordLength  = 1
	rtagDNSName       = 2
	rtagSubjectName   = 3
	rtagRole          = 4
	rtagIssuerName    = 5
	rtagSerialNumber  = 6
	rtagPublicKey     = 7
	rtagSignature     = 8
	rtagCertificate   = 9
	rtagIPAddress     = 10
	rtagCertHash      = 11
	rtagHashAlgorithm = 12
)

// The format versions written in VERSION: 1.2 for CTL/ITL files (which
// carry SIGNER_VERSION), 1.0 for signed configuration files (.sgn), whose
// header has only the tags 1–15, as phones and the tools that have served
// them take it.
var (
	trustFileVersion  = [2]byte{1, 2}
	signedFileVersion = [2]byte{1, 0}
)

// modulusSizes maps the SIGNATURE_MODULUS index to the signature length.
var modulusSizes = [...]int{64, 128, 256, 512}

// MaxParseSize is the largest file Parse reads. Phones load at most
// MaxFileSize; the parser allows more so that an oversized file from
// elsewhere can still be shown.
const MaxParseSize = 1 << 20

// MaxFileSize is the largest trust file phones load (64 KiB, about 39
// certificates); Build refuses to write a larger one.
const MaxFileSize = 64 << 10

// ParseError is a malformed trust or signed file: what is wrong and the
// byte offset where it was found. It wraps a fault.Invalid error.
type ParseError struct {
	Offset int
	Msg    string
}

// Error implements error.
func (e *ParseError) Error() string { return fmt.Sprintf("trust file: offset %d: %s", e.Offset, e.Msg) }

// Unwrap makes the error of kind fault.Invalid.
func (e *ParseError) Unwrap() error { return &fault.Error{Kind: fault.Invalid, Msg: e.Error()} }

func parseErr(off int, format string, args ...any) *ParseError {
	return &ParseError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Header is the decoded header of a trust or signed file.
type Header struct {
	Version       [2]byte       // VERSION: format major, minor
	Length        int           // HEADER_LENGTH: the header's size, signature included
	SignerName    string        // SIGNER_NAME: the signer's subject text
	IssuerName    string        // ISSUER_NAME: the signer's issuer text
	SerialNumber  []byte        // SERIAL_NUMBER: the signer certificate's serial
	Hash          HashAlgorithm // HASH_ALGORITHM
	SigAlgorithm  uint8         // SIGNATURE_ALGORITHM: 0 RSA
	SigModulus    uint8         // SIGNATURE_MODULUS: index into 64, 128, 256, 512 bytes
	Signature     []byte        // SIGNATURE
	FileName      string        // FILENAME
	Timestamp     time.Time     // TIMESTAMP
	SignerVersion SignerVersion // SIGNER_VERSION, zero when absent
}

// Record is one certificate of a trust file, as written in it.
type Record struct {
	Offset       int    // where the record starts in the file
	DNSName      string // DNS_NAME, optional
	SubjectName  string // SUBJECT_NAME
	Role         Role   // ROLE
	IssuerName   string // ISSUER_NAME
	SerialNumber []byte // SERIAL_NUMBER
	PublicKey    []byte // PUBLIC_KEY
	Signature    []byte // SIGNATURE: the certificate's own signature
	Certificate  []byte // CERTIFICATE: DER
	IPAddress    []byte // IP_ADDRESS, optional
	CertHash     []byte // CERTIFICATE_HASH, optional
	HashAlg      []byte // HASH_ALGORITHM, optional
}

// File is a parsed trust file.
type File struct {
	Header  Header
	Records []Record
	raw     []byte
	sigAt   int // offset of the SIGNATURE element, -1 if absent
	sigEnd  int
	bodyAt  int // first byte after the header
}

// Raw returns the file's bytes.
func (f *File) Raw() []byte { return f.raw }

// SignedBytes returns the bytes the signature covers: the whole file
// without the SIGNATURE element. It returns nil if the file has no
// signature.
func (f *File) SignedBytes() []byte {
	if f.sigAt < 0 {
		return nil
	}
	out := make([]byte, 0, len(f.raw)-(f.sigEnd-f.sigAt))
	out = append(out, f.raw[:f.sigAt]...)
	return append(out, f.raw[f.sigEnd:]...)
}

// element appends one tag-length-value element to b.
func element(b *bytes.Buffer, tag byte, value []byte) {
	b.WriteByte(tag)
	_ = binary.Write(b, binary.BigEndian, uint16(len(value)))
	b.Write(value)
}

// cstring returns s NUL-terminated.
func cstring(s string) []byte { return append([]byte(s), 0) }

// u16 returns v big-endian.
func u16(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

// reader walks TLV elements of data, reporting absolute offsets.
type reader struct {
	data []byte
	pos  int
}

// next reads the element at pos, which must end by limit. Padding (tag 13)
// is returned with a nil value and no length.
func (r *reader) next(limit int, where string) (tag byte, at int, value []byte, err error) {
	at = r.pos
	if at >= limit {
		return 0, at, nil, parseErr(at, "%s: no element where one is expected", where)
	}
	tag = r.data[at]
	if at+elementHeaderBytes > limit {
		return tag, at, nil, parseErr(at, "%s: element tag %d: truncated length (%d bytes left)", where, tag, limit-at-1)
	}
	n := int(binary.BigEndian.Uint16(r.data[at+1:]))
	end := at + elementHeaderBytes + n
	if end > limit {
		return tag, at, nil, parseErr(at, "%s: element tag %d: length %d runs past the end at offset %d", where, tag, n, limit)
	}
	r.pos = end
	return tag, at, r.data[at+elementHeaderBytes : end], nil
}

// cstr decodes a NUL-terminated text value.
func cstr(v []byte, at int, name string) (string, error) {
	if len(v) == 0 || v[len(v)-1] != 0 {
		return "", parseErr(at, "%s: not NUL-terminated", name)
	}
	s := v[:len(v)-1]
	if bytes.IndexByte(s, 0) >= 0 {
		return "", parseErr(at, "%s: NUL inside the text", name)
	}
	return string(s), nil
}

// Parse decodes a trust file (CTL or ITL). It checks the structure only;
// call [File.Verify] for the signature. Every error is a *ParseError.
func Parse(data []byte) (*File, error) {
	f, err := parseHeader(data)
	if err != nil {
		return nil, err
	}
	if f.bodyAt == len(data) {
		return nil, parseErr(f.bodyAt, "no records after the header")
	}
	r := &reader{data: data, pos: f.bodyAt}
	for r.pos < len(data) {
		rec, err := parseRecord(r)
		if err != nil {
			return nil, err
		}
		f.Records = append(f.Records, rec)
	}
	return f, nil
}

// parseHeader decodes the header and returns a File without records.
func parseHeader(data []byte) (*File, error) {
	if len(data) > MaxParseSize {
		return nil, parseErr(0, "file of %d bytes is larger than %d", len(data), MaxParseSize)
	}
	f := &File{raw: data, sigAt: -1}
	r := &reader{data: data}
	tag, at, v, err := r.next(len(data), "header")
	if err != nil {
		return nil, err
	}
	if tag != tagVersion || len(v) != 2 {
		return nil, parseErr(at, "header: want VERSION (tag 1, length 2) first, got tag %d length %d", tag, len(v))
	}
	f.Header.Version = [2]byte{v[0], v[1]}
	tag, at, v, err = r.next(len(data), "header")
	if err != nil {
		return nil, err
	}
	if tag != tagHeaderLength || len(v) != 2 {
		return nil, parseErr(at, "header: want HEADER_LENGTH (tag 2, length 2) second, got tag %d length %d", tag, len(v))
	}
	hl := int(binary.BigEndian.Uint16(v))
	if hl < r.pos {
		return nil, parseErr(at, "header: HEADER_LENGTH %d is shorter than the elements before it", hl)
	}
	if hl > len(data) {
		return nil, parseErr(at, "header: HEADER_LENGTH %d runs past the end of the %d-byte file", hl, len(data))
	}
	f.Header.Length, f.bodyAt = hl, hl
	seen := map[byte]int{}
	for r.pos < hl {
		if data[r.pos] == tagPadding {
			r.pos++
			continue
		}
		tag, at, v, err := r.next(hl, "header")
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[tag]; dup {
			return nil, parseErr(at, "header: element tag %d repeated (first at offset %d)", tag, prev)
		}
		seen[tag] = at
		if err := f.Header.set(tag, at, v, r); err != nil {
			return nil, err
		}
		if tag == tagSignature {
			f.sigAt, f.sigEnd = at, r.pos
		}
	}
	return f, nil
}

// set stores one header element. Containers rewind the reader to their
// first child, so that the children are read as elements of the header.
func (h *Header) set(tag byte, at int, v []byte, r *reader) error {
	fixed := func(name string, n int) error {
		if len(v) != n {
			return parseErr(at, "header: %s: length %d, want %d", name, len(v), n)
		}
		return nil
	}
	var err error
	switch tag {
	case tagSignerInfo, tagSignatureInfo, tagSigAlgInfo:
		r.pos = at + elementHeaderBytes
	case tagSignerName:
		h.SignerName, err = cstr(v, at, "SIGNER_NAME")
	case tagIssuerName:
		h.IssuerName, err = cstr(v, at, "ISSUER_NAME")
	case tagSerialNumber:
		if len(v) == 0 {
			return parseErr(at, "header: SERIAL_NUMBER is empty")
		}
		h.SerialNumber = bytes.Clone(v)
	case tagHashAlgorithm:
		if err = fixed("HASH_ALGORITHM", 1); err == nil {
			h.Hash = HashAlgorithm(v[0])
		}
	case tagSigAlgorithm:
		if err = fixed("SIGNATURE_ALGORITHM", 1); err == nil {
			h.SigAlgorithm = v[0]
		}
	case tagSigModulus:
		if err = fixed("SIGNATURE_MODULUS", 1); err == nil {
			h.SigModulus = v[0]
		}
	case tagSignature:
		if len(v) == 0 {
			return parseErr(at, "header: SIGNATURE is empty")
		}
		h.Signature = bytes.Clone(v)
	case tagFileName:
		h.FileName, err = cstr(v, at, "FILENAME")
	case tagTimestamp:
		if err = fixed("TIMESTAMP", 4); err == nil {
			h.Timestamp = time.Unix(int64(binary.BigEndian.Uint32(v)), 0).UTC()
		}
	case tagSignerVersion:
		if err = fixed("SIGNER_VERSION", 2); err == nil {
			h.SignerVersion = SignerVersion{v[0], v[1]}
		}
	case tagVersion, tagHeaderLength:
		return parseErr(at, "header: element tag %d repeated", tag)
	}
	// Other tags are skipped: newer CallManager versions add elements.
	return err
}

// parseRecord decodes the record at r.pos.
func parseRecord(r *reader) (Record, error) {
	start := r.pos
	tag, at, v, err := r.next(len(r.data), "record")
	if err != nil {
		return Record{}, err
	}
	if tag != rtagRecordLength || len(v) != 2 {
		return Record{}, parseErr(at, "record: want RECORD_LENGTH (tag 1, length 2) first, got tag %d length %d", tag, len(v))
	}
	n := int(binary.BigEndian.Uint16(v))
	end := start + n
	if n < r.pos-start {
		return Record{}, parseErr(at, "record: length %d is shorter than its length element", n)
	}
	if end > len(r.data) {
		return Record{}, parseErr(at, "record: length %d runs past the end of the file (%d bytes left)", n, len(r.data)-start)
	}
	rec := Record{Offset: start, Role: Role(0xffff)}
	seen := map[byte]int{}
	for r.pos < end {
		tag, at, v, err := r.next(end, "record")
		if err != nil {
			return Record{}, err
		}
		if prev, dup := seen[tag]; dup {
			return Record{}, parseErr(at, "record: element tag %d repeated (first at offset %d)", tag, prev)
		}
		seen[tag] = at
		if err := rec.set(tag, at, v); err != nil {
			return Record{}, err
		}
	}
	if _, ok := seen[rtagRole]; !ok {
		return Record{}, parseErr(start, "record: no ROLE element")
	}
	if _, ok := seen[rtagCertificate]; !ok {
		return Record{}, parseErr(start, "record: no CERTIFICATE element")
	}
	return rec, nil
}

// set stores one record element.
func (rec *Record) set(tag byte, at int, v []byte) error {
	var err error
	switch tag {
	case rtagRecordLength:
		return parseErr(at, "record: RECORD_LENGTH repeated")
	case rtagDNSName:
		rec.DNSName, err = cstr(v, at, "DNS_NAME")
	case rtagSubjectName:
		rec.SubjectName, err = cstr(v, at, "SUBJECT_NAME")
	case rtagRole:
		if len(v) != 2 {
			return parseErr(at, "record: ROLE: length %d, want 2", len(v))
		}
		rec.Role = Role(binary.BigEndian.Uint16(v))
	case rtagIssuerName:
		rec.IssuerName, err = cstr(v, at, "ISSUER_NAME")
	case rtagSerialNumber:
		rec.SerialNumber = bytes.Clone(v)
	case rtagPublicKey:
		rec.PublicKey = bytes.Clone(v)
	case rtagSignature:
		rec.Signature = bytes.Clone(v)
	case rtagCertificate:
		if len(v) == 0 {
			return parseErr(at, "record: CERTIFICATE is empty")
		}
		rec.Certificate = bytes.Clone(v)
	case rtagIPAddress:
		rec.IPAddress = bytes.Clone(v)
	case rtagCertHash:
		rec.CertHash = bytes.Clone(v)
	case rtagHashAlgorithm:
		rec.HashAlg = bytes.Clone(v)
	}
	return err
}
