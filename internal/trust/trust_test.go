package trust

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestRoundTrip(t *testing.T) {
	fx := newFixture(t)
	for _, hash := range []HashAlgorithm{SHA1, SHA512} {
		t.Run(hash.String(), func(t *testing.T) {
			f, err := Parse(fx.build(t, hash))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Verify(); err != nil {
				t.Fatal(err)
			}
			if f.Header.Hash != hash || f.Header.SignerName != "O=CAPF,CN=SAST primary" || f.Header.SigModulus != 2 || f.Header.Length%4 != 0 {
				t.Errorf("header %+v", f.Header)
			}
			wantRoles := []Role{RoleSAST, RoleSAST, RoleTFTP, RoleCAPF, RoleCCM}
			for i, r := range f.Records {
				if r.Role != wantRoles[i] {
					t.Errorf("record %d role %s, want %s", i, r.Role, wantRoles[i])
				}
			}
			signer, _ := f.Signer()
			if !bytes.Equal(signer.Certificate, fx.primary.Cert.Raw) {
				t.Error("signer record is not the primary")
			}
			if ec := f.Records[4].PublicKey; len(ec) != 65 || ec[0] != 4 {
				t.Errorf("EC public key = %x, want an uncompressed P-256 point", ec)
			}
		})
	}
}

func TestSignedByBackup(t *testing.T) {
	fx := newFixture(t)
	o := fx.options(SHA512)
	o.Signer = fx.backup
	b, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Fatal(err)
	}
	if f.Header.SignerName != "O=CAPF,CN=SAST backup" {
		t.Errorf("signer %q", f.Header.SignerName)
	}
}

// TestEveryTruncationFails cuts a valid file at every length: each prefix
// fails to parse or, cut exactly between records, fails to verify.
func TestEveryTruncationFails(t *testing.T) {
	fx := newFixture(t)
	b := fx.build(t, SHA1)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	boundaries := map[int]bool{}
	for _, r := range f.Records[1:] {
		boundaries[r.Offset] = true
	}
	for n := range len(b) {
		p, err := Parse(b[:n])
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > n || fault.KindOf(err) != fault.Invalid {
				t.Fatalf("prefix %d: error %v (%T) is not an Invalid *ParseError inside the input", n, err, err)
			}
			continue
		}
		if !boundaries[n] {
			t.Fatalf("prefix %d of %d parsed although it ends inside an element", n, len(b))
		}
		if err := p.Verify(); !errors.Is(err, ErrSignature) {
			t.Fatalf("prefix %d verifies: %v", n, err)
		}
	}
}

func TestTamperedFileFailsToVerify(t *testing.T) {
	fx := newFixture(t)
	b := fx.build(t, SHA512)
	f, _ := Parse(b)
	tests := []struct {
		name string
		at   int
	}{
		{"timestamp", f.Header.Length - 8},
		{"signature", 60},
		{"last-record-certificate-byte", len(b) - 1},
		{"capf-record-role", f.Records[3].Offset + 5 + 3 + len(f.Records[3].SubjectName) + 1 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bytes.Clone(b)
			c[tt.at] ^= 1
			g, err := Parse(c)
			if err != nil {
				return // structure broken: also refused
			}
			if err := g.Verify(); !errors.Is(err, ErrSignature) {
				t.Fatalf("tampered file verifies: %v", err)
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	fx := newFixture(t)
	k3072, err := rsa.GenerateKey(nil, 3072)
	if err != nil {
		t.Fatal(err)
	}
	c3072 := selfSigned(t, k3072, pkix.Name{CommonName: "big"}, 20)
	extra := selfSigned(t, rsaKey(t, 2), pkix.Name{CommonName: "third SAST"}, 21)
	tests := []struct {
		name   string
		change func(*BuildOptions)
		want   string
	}{
		{"three-sast", func(o *BuildOptions) { o.Entries = append(o.Entries, Entry{RoleSAST, extra}) }, "3 SAST records: phones accept at most 2"},
		{"rsa-3072-signer", func(o *BuildOptions) {
			o.Signer = Signing{Cert: c3072, Key: k3072}
			o.Entries[0].Cert = c3072
		}, "RSA 3072 bits: phones accept at most 2048"},
		{"key-mismatch", func(o *BuildOptions) { o.Signer.Key = fx.backup.Key }, "signing key does not match"},
		{"ec-signer", func(o *BuildOptions) { o.Signer = Signing{Cert: fx.ccm, Key: ecKey(t)} }, "signed with RSA"},
		{"signer-not-sast", func(o *BuildOptions) { o.Entries = o.Entries[1:] }, "not listed with the SAST role"},
		{"duplicate", func(o *BuildOptions) { o.Entries = append(o.Entries, Entry{RoleCAPF, fx.capf}) }, "listed twice with role capf"},
		{"unknown-role", func(o *BuildOptions) { o.Entries = append(o.Entries, Entry{Role(99), fx.capf}) }, "unknown role Role(99)"},
		{"bad-file-name", func(o *BuildOptions) { o.FileName = "../ITLFile.tlv" }, "only letters, digits"},
		{"no-entries", func(o *BuildOptions) { o.Entries = nil }, "no certificates"},
		{"bad-digest", func(o *BuildOptions) { o.Hash = 2 }, "unsupported digest"},
		{"over-64k", func(o *BuildOptions) {
			for i := range 60 {
				o.Entries = append(o.Entries, Entry{RoleCCM, selfSigned(t, rsaKey(t, 2), pkix.Name{CommonName: "ccm", SerialNumber: string(rune('a' + i%26))}, int64(100+i))})
			}
		}, "phones fail to load files over 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := fx.options(SHA1)
			o.Entries = append([]Entry(nil), o.Entries...)
			tt.change(&o)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || fault.KindOf(err) != fault.Invalid {
				t.Fatalf("Build: %v (kind %s), want Invalid containing %q", err, fault.KindOf(err), tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	fx := newFixture(t)
	good := fx.build(t, SHA1)
	f, _ := Parse(good)
	hl := f.Header.Length
	set := func(at int, v ...byte) []byte {
		c := bytes.Clone(good)
		copy(c[at:], v)
		return c
	}
	tests := []struct {
		name   string
		in     []byte
		offset int
		want   string
	}{
		{"empty", nil, 0, "no element"},
		{"not-version-first", set(0, 2), 0, "want VERSION"},
		{"header-length-past-end", set(8, 0xff, 0xff), 5, "runs past the end"},
		{"header-length-too-short", set(8, 0, 4), 5, "shorter than the elements"},
		{"no-records", good[:hl], hl, "no records"},
		{"record-not-length-first", set(hl, 9), hl, "want RECORD_LENGTH"},
		{"record-length-past-end", set(hl+3, 0xff, 0xff), hl, "runs past the end of the file"},
		{"unterminated-signer-name", set(13+3+len(f.Header.SignerName), 'X'), 13, "SIGNER_NAME: not NUL-terminated"},
		{"huge", make([]byte, MaxParseSize+1), 0, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset != tt.offset || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse: %v, want offset %d and %q", err, tt.offset, tt.want)
			}
		})
	}
}

func TestNameText(t *testing.T) {
	oidCN := asn1.ObjectIdentifier{2, 5, 4, 3}
	tests := []struct {
		name string
		seq  pkix.RDNSequence
		want string
	}{
		{"certificate-order", pkix.RDNSequence{
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 6}, Value: "US"}},
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Example"}},
			{{Type: oidCN, Value: "cucm"}},
		}, "C=US,O=Example,CN=cucm"},
		{"cn-first", pkix.RDNSequence{
			{{Type: oidCN, Value: "cucm"}},
			{{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "VOICE"}},
		}, "CN=cucm,OU=VOICE"},
		{"escaping", pkix.RDNSequence{{{Type: oidCN, Value: ` #a,b+c"d\e;f `}}}, `CN=\ #a\,b\+c\"d\\e\;f\ `},
		{"multi-valued", pkix.RDNSequence{{{Type: oidCN, Value: "a"}, {Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "b"}}}, "CN=a+OU=b"},
		{"unknown-type", pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: "x"}}}, "1.2.3=x"},
		{"non-string", pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: 5}}}, "1.2.3=#020105"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := asn1.Marshal(tt.seq)
			if err != nil {
				t.Fatal(err)
			}
			got, err := NameText(der)
			if err != nil || got != tt.want {
				t.Fatalf("NameText = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := NameText([]byte{0x30, 0x05}); err == nil {
		t.Error("truncated name decoded")
	}
}

func TestSignFile(t *testing.T) {
	fx := newFixture(t)
	content := []byte("<device><deviceSecurityMode>2</deviceSecurityMode></device>\n")
	b, err := SignFile(SignOptions{FileName: "SEP58971ECC97C1.cnf.xml", Hash: SHA512, Signer: fx.primary, Now: testNow}, content)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSigned(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Content, content) || s.Header.FileName != "SEP58971ECC97C1.cnf.xml" {
		t.Fatalf("content %q name %q", s.Content, s.Header.FileName)
	}
	if err := s.Verify(fx.primary.Cert); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(fx.backup.Cert); !errors.Is(err, ErrSignature) {
		t.Errorf("verifies with the wrong certificate: %v", err)
	}
	b[len(b)-2] ^= 1
	s, _ = ParseSigned(b)
	if err := s.Verify(fx.primary.Cert); !errors.Is(err, ErrSignature) {
		t.Errorf("changed content verifies: %v", err)
	}
	if _, err := SignFile(SignOptions{FileName: "x.cnf.xml", Signer: fx.primary}, nil); err == nil {
		t.Error("empty content signed")
	}
}

// TestOpenSSLVerifies checks a built file's signature with openssl, not
// with this package: strip the SIGNATURE element by hand, as the spec says.
func TestOpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	fx := newFixture(t)
	for _, tt := range []struct {
		hash HashAlgorithm
		flag string
	}{{SHA1, "-sha1"}, {SHA512, "-sha512"}} {
		t.Run(tt.hash.String(), func(t *testing.T) {
			b := fx.build(t, tt.hash)
			// SIGNER_INFO is at 10 (after VERSION and HEADER_LENGTH);
			// SIGNATURE_INFO follows it, 3 + 15 bytes; then SIGNATURE.
			sigAt := 10 + 3 + (int(b[11])<<8 | int(b[12]))
			sigAt += 3 + 15
			if b[sigAt] != 12 {
				t.Fatalf("no SIGNATURE at %d", sigAt)
			}
			n := int(b[sigAt+1])<<8 | int(b[sigAt+2])
			sig := b[sigAt+3 : sigAt+3+n]
			data := append(bytes.Clone(b[:sigAt]), b[sigAt+3+n:]...)
			dir := t.TempDir()
			pub, err := x509.MarshalPKIXPublicKey(fx.primary.Cert.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string, v []byte) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, v, 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			pubPath := write("pub.der", pub)
			out, err := exec.Command("openssl", "dgst", tt.flag, "-verify", pubPath, "-keyform", "DER",
				"-signature", write("sig.bin", sig), write("data.bin", data)).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Verified OK") {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
			data[len(data)-1] ^= 1
			write("data.bin", data)
			if out, err := exec.Command("openssl", "dgst", tt.flag, "-verify", pubPath, "-keyform", "DER",
				"-signature", filepath.Join(dir, "sig.bin"), filepath.Join(dir, "data.bin")).CombinedOutput(); err == nil {
				t.Fatalf("openssl accepts changed data:\n%s", out)
			}
		})
	}
}

func TestRoleNames(t *testing.T) {
	for _, s := range []string{"sast", "ccm", "ccm+tftp", "tftp", "capf", "app-server", "tvs"} {
		r, err := ParseRole(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRole(%q) = %s, %v", s, r, err)
		}
	}
	if r, _ := ParseRole("CAPF"); r != RoleCAPF || uint16(r) != 4 {
		t.Errorf("CAPF role = %d", r)
	}
	if _, err := ParseRole("phone"); err == nil || fault.KindOf(err) != fault.Invalid {
		t.Errorf("ParseRole(phone): %v", err)
	}
	if s := Role(99).String(); s != "Role(99)" {
		t.Errorf("Role(99).String() = %q", s)
	}
}
