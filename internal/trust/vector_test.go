package trust

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// unhex decodes hex written with spaces and line breaks.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tlv is the spec's tag · 2-byte length · value, written out here rather
// than taken from the package.
func tlv(tag byte, v []byte) []byte {
	return append([]byte{tag, byte(len(v) >> 8), byte(len(v))}, v...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestVector assembles, by hand from ctl-itl-files.md, a trust file with
// one SAST record signed by the fixed testdata key (RSA 1024, serial
// 0x0102, subject O=Example,CN=SAST test in that order), and checks that
// Build writes exactly those bytes and Parse reads them back.
func TestVector(t *testing.T) {
	key, err := x509.ParsePKCS1PrivateKey(readPEM(t, "testdata/vector.key").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(readPEM(t, "testdata/vector.pem").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	name := []byte("O=Example,CN=SAST test\x00") // the certificate's own order
	ts := time.Unix(0x69a4_0000, 0)

	// Header, without the SIGNATURE element (128 bytes: RSA 1024).
	signerInfo := cat(tlv(4, name), unhex(t, "05 0002 0102"), tlv(6, name))
	headerLen := 5 + 5 + 3 + len(signerInfo) + 3 + 4 + 3 + 4 + 4 + (3 + 128) + 15 + 7 + 5
	pad := (4 - headerLen%4) % 4
	headerLen += pad
	before := cat(
		unhex(t, "01 0002 0102"),                               // VERSION 1.2
		[]byte{2, 0, 2, byte(headerLen >> 8), byte(headerLen)}, // HEADER_LENGTH
		[]byte{3, 0, byte(len(signerInfo))}, signerInfo,        // SIGNER_INFO
		unhex(t, `07 000F
		          08 0001 01
		          09 0008
		            0A 0001 00
		            0B 0001 01`), // SIGNATURE_INFO: SHA-1, RSA, 128-byte signature
	)
	after := cat(
		tlv(14, []byte("ITLFile.tlv\x00")), // FILENAME
		unhex(t, "0F 0004 69A40000"),       // TIMESTAMP
		unhex(t, "1C 0002 0100"),           // SIGNER_VERSION 1.0
		bytes.Repeat([]byte{13}, pad),      // PADDING
	)
	recBody := cat(
		tlv(3, name),
		unhex(t, "04 0002 0000"), // ROLE SAST
		tlv(5, name),
		unhex(t, "06 0002 0102"),
		tlv(7, x509.MarshalPKCS1PublicKey(&key.PublicKey)),
		tlv(8, cert.Signature),
		tlv(9, cert.Raw),
	)
	recLen := 5 + len(recBody)
	record := cat([]byte{1, 0, 2, byte(recLen >> 8), byte(recLen)}, recBody)

	digest := sha1.Sum(cat(before, after, record))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA1, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	want := cat(before, tlv(12, sig), after, record)
	if len(before)+3+len(sig)+len(after) != headerLen {
		t.Fatalf("hand-built header is %d bytes, HEADER_LENGTH says %d", len(before)+3+len(sig)+len(after), headerLen)
	}

	got, err := Build(BuildOptions{
		FileName: "ITLFile.tlv", Hash: SHA1, Signer: Signing{Cert: cert, Key: key},
		Entries: []Entry{{RoleSAST, cert}}, Now: ts,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Build differs from the hand-built file\n got %x\nwant %x", got, want)
	}
	f, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	h := f.Header
	if h.Version != [2]byte{1, 2} || h.Length != headerLen || h.SignerName != "O=Example,CN=SAST test" ||
		h.IssuerName != h.SignerName || !bytes.Equal(h.SerialNumber, []byte{1, 2}) || h.Hash != SHA1 ||
		h.SigModulus != 1 || h.FileName != "ITLFile.tlv" || !h.Timestamp.Equal(ts) || h.SignerVersion != SignerV10 {
		t.Errorf("header = %+v", h)
	}
	if len(f.Records) != 1 || f.Records[0].Role != RoleSAST || f.Records[0].Offset != headerLen ||
		!bytes.Equal(f.Records[0].Certificate, cert.Raw) || f.Records[0].SubjectName != "O=Example,CN=SAST test" {
		t.Errorf("records = %+v", f.Records)
	}
}
