package trust

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"testing"
)

// sgnReader is a .sgn header parser written here from the field notes and
// the behaviour of the independent tool that has served phones since 2020,
// sharing no code with the package: VERSION and HEADER_LENGTH first, then
// only the tags 1–15 up to HEADER_LENGTH (PADDING a single byte, the
// containers 3, 7, 9 skipped into), any other tag refused as that tool
// refuses it ("Unknown header tag: N"); hash 1 (SHA-1) or 3 (SHA-512); the
// signature checked over the file without its SIGNATURE element.
type sgnReader struct {
	version    [2]byte
	headerLen  int
	hash       byte
	fileName   string
	sigAt      int // offset of the SIGNATURE element
	sigLen     int
	timestamp  uint32
	seenSigner bool
}

func readSGN(data []byte) (*sgnReader, error) {
	r := &sgnReader{sigAt: -1}
	if len(data) < 10 || data[0] != 1 || binary.BigEndian.Uint16(data[1:]) != 2 {
		return nil, fmt.Errorf("tag is not header version")
	}
	copy(r.version[:], data[3:5])
	if data[5] != 2 || binary.BigEndian.Uint16(data[6:]) != 2 {
		return nil, fmt.Errorf("tag is not header length")
	}
	r.headerLen = int(binary.BigEndian.Uint16(data[8:]))
	if r.headerLen > len(data) {
		return nil, fmt.Errorf("header length %d past the end (%d)", r.headerLen, len(data))
	}
	i := 10
	for i < r.headerLen {
		tag := data[i]
		i++
		if tag == 13 { // PADDING: one byte, no length
			continue
		}
		if i+2 > r.headerLen {
			return nil, fmt.Errorf("tag %d: truncated length", tag)
		}
		n := int(binary.BigEndian.Uint16(data[i:]))
		i += 2
		if tag == 3 || tag == 7 || tag == 9 { // containers: read on into them
			continue
		}
		if i+n > r.headerLen {
			return nil, fmt.Errorf("tag %d: length %d past the header", tag, n)
		}
		v := data[i : i+n]
		switch tag {
		case 4, 5, 6:
			r.seenSigner = true
		case 8:
			r.hash = v[0]
		case 10, 11:
		case 12:
			r.sigAt, r.sigLen = i-3, n
		case 14:
			r.fileName = string(bytes.TrimSuffix(v, []byte{0}))
		case 15:
			if n != 4 {
				return nil, fmt.Errorf("timestamp of %d bytes", n)
			}
			r.timestamp = binary.BigEndian.Uint32(v)
		default:
			return nil, fmt.Errorf("Unknown header tag: %d", tag)
		}
		i += n
	}
	switch {
	case r.hash != 1 && r.hash != 3:
		return nil, fmt.Errorf("unsupported header hash algorithm: %d", r.hash)
	case r.sigAt < 0:
		return nil, fmt.Errorf("missing header signature")
	case !r.seenSigner:
		return nil, fmt.Errorf("missing signer")
	}
	return r, nil
}

// verify checks the signature with cert's RSA key.
func (r *sgnReader) verify(data []byte, cert *x509.Certificate) error {
	sig := data[r.sigAt+3 : r.sigAt+3+r.sigLen]
	rest := append(append([]byte{}, data[:r.sigAt]...), data[r.sigAt+3+r.sigLen:]...)
	var (
		h   crypto.Hash
		sum []byte
	)
	if r.hash == 3 {
		s := sha512.Sum512(rest)
		h, sum = crypto.SHA512, s[:]
	} else {
		s := sha1.Sum(rest)
		h, sum = crypto.SHA1, s[:]
	}
	return rsa.VerifyPKCS1v15(cert.PublicKey.(*rsa.PublicKey), h, sum, sig)
}

// TestSignedFileAsPhonesTakeIt: SignFile writes what the strict .sgn
// parser accepts: version 1.0, tags 1–15 only (no SIGNER_VERSION), a
// header padded to 4 bytes, hash code 1 or 3, a valid signature, and the
// content unchanged after the header. A trust file keeps its 1.2 header
// with SIGNER_VERSION, which the same parser refuses.
func TestSignedFileAsPhonesTakeIt(t *testing.T) {
	fx := newFixture(t)
	content := []byte("<device><deviceSecurityMode>2</deviceSecurityMode></device>\n")
	tests := []struct {
		name     string
		hash     HashAlgorithm
		wantCode byte
	}{
		{"sha1", SHA1, 1},
		{"sha512", SHA512, 3},
		{"default-sha1", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := SignFile(SignOptions{FileName: "SEP58971ECC97C1.cnf.xml", Hash: tt.hash, Signer: fx.primary, Now: testNow}, content)
			if err != nil {
				t.Fatal(err)
			}
			r, err := readSGN(b)
			if err != nil {
				t.Fatalf("the strict .sgn parser refuses the file: %v", err)
			}
			if r.version != [2]byte{1, 0} {
				t.Errorf("VERSION %d.%d, want 1.0", r.version[0], r.version[1])
			}
			if r.headerLen%4 != 0 {
				t.Errorf("header of %d bytes, not a multiple of 4", r.headerLen)
			}
			if r.hash != tt.wantCode {
				t.Errorf("hash code %d, want %d", r.hash, tt.wantCode)
			}
			if r.fileName != "SEP58971ECC97C1.cnf.xml" || r.timestamp != uint32(testNow.Unix()) {
				t.Errorf("FILENAME %q TIMESTAMP %d", r.fileName, r.timestamp)
			}
			if !bytes.Equal(b[r.headerLen:], content) {
				t.Errorf("content after the header %q, want %q", b[r.headerLen:], content)
			}
			if err := r.verify(b, fx.primary.Cert); err != nil {
				t.Errorf("signature: %v", err)
			}
			if err := r.verify(b, fx.backup.Cert); err == nil {
				t.Error("verifies with the wrong certificate")
			}
			// The package's own parser reads it too.
			s, err := ParseSigned(b)
			if err != nil || s.Verify(fx.primary.Cert) != nil || s.Header.Version != [2]byte{1, 0} {
				t.Errorf("ParseSigned: %v", err)
			}
		})
	}

	itl, err := Build(BuildOptions{FileName: "ITLFile.tlv", Signer: fx.primary, Now: testNow, Entries: []Entry{
		{Cert: fx.primary.Cert, Role: RoleSAST}, {Cert: fx.capf, Role: RoleCAPF},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if itl[3] != 1 || itl[4] != 2 {
		t.Errorf("trust file VERSION %d.%d, want 1.2", itl[3], itl[4])
	}
	f, err := Parse(itl)
	if err != nil || f.Header.SignerVersion != SignerV10 {
		t.Fatalf("trust file: %v, SIGNER_VERSION %v", err, f.Header.SignerVersion)
	}
	if _, err := readSGN(itl); err == nil || err.Error() != "Unknown header tag: 28" {
		t.Errorf("the .sgn parser on a trust file header: %v, want Unknown header tag: 28", err)
	}
}
