package trust

import (
	"crypto/x509"
	"errors"
	"testing"
)

// FuzzParse checks that Parse and ParseSigned never panic, that every
// error is a *ParseError pointing inside the input, and that Verify on
// whatever parses returns without panicking.
//
// The seed corpus: files with four records signed by the testdata key
// over SHA-1 and SHA-512, a .sgn file, a bare header, and the files in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	// The fixed testdata key: no key generation in every fuzz worker.
	key, err := x509.ParsePKCS1PrivateKey(readPEM(f, "testdata/vector.key").Bytes)
	if err != nil {
		f.Fatal(err)
	}
	cert, err := x509.ParseCertificate(readPEM(f, "testdata/vector.pem").Bytes)
	if err != nil {
		f.Fatal(err)
	}
	signer := Signing{Cert: cert, Key: key}
	for _, hash := range []HashAlgorithm{SHA1, SHA512} {
		b, err := Build(BuildOptions{FileName: "CTLFile.tlv", Hash: hash, Signer: signer, Now: testNow, Entries: []Entry{
			{RoleSAST, cert}, {RoleTFTP, cert}, {RoleCAPF, cert}, {RoleCCMTFTP, cert},
		}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := SignFile(SignOptions{FileName: "SEP000000000001.cnf.xml", Signer: signer, Now: testNow}, []byte("<device/>")); err == nil {
		f.Add(b)
	}
	f.Add([]byte{1, 0, 2, 1, 2, 2, 0, 2, 0, 10})
	check := func(t *testing.T, in []byte, err error) {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *ParseError", err, err)
		}
		if pe.Offset < 0 || pe.Offset > len(in) {
			t.Fatalf("offset %d outside the %d-byte input", pe.Offset, len(in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := Parse(in)
		if err != nil {
			check(t, in, err)
		} else {
			_ = file.Verify()
			if file.Header.Length > len(in) || len(file.Records) == 0 {
				t.Fatalf("accepted header length %d of %d bytes, %d records", file.Header.Length, len(in), len(file.Records))
			}
		}
		s, err := ParseSigned(in)
		if err != nil {
			check(t, in, err)
		} else {
			_ = s.Verify(cert)
		}
	})
}
