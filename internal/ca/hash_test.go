package ca

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

// attr is one attribute of a test name, with its ASN.1 string tag.
type attr struct {
	oid asn1.ObjectIdentifier
	tag int
	val []byte
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidL     = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidST    = asn1.ObjectIdentifier{2, 5, 4, 8}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidSN    = asn1.ObjectIdentifier{2, 5, 4, 5}
)

func ps(oid asn1.ObjectIdentifier, s string) attr {
	return attr{oid, asn1.TagPrintableString, []byte(s)}
}
func utf8s(oid asn1.ObjectIdentifier, s string) attr { return attr{oid, asn1.TagUTF8String, []byte(s)} }

func bmp(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return b
}

func ucs4(s string) []byte {
	var b []byte
	for _, r := range s {
		b = binary.BigEndian.AppendUint32(b, uint32(r))
	}
	return b
}

// rawName encodes a Name whose RDNs are the given attribute sets, in the
// order given (a multi-valued RDN is deliberately left unsorted).
func rawName(t *testing.T, rdns ...[]attr) []byte {
	t.Helper()
	var sets []byte
	for _, rdn := range rdns {
		var atvs []byte
		for _, a := range rdn {
			b, err := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{a.oid, asn1.RawValue{Tag: a.tag, Bytes: a.val}})
			if err != nil {
				t.Fatal(err)
			}
			atvs = append(atvs, b...)
		}
		b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: atvs})
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, b...)
	}
	b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: sets})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubjectHashOpenSSL(t *testing.T) {
	openssl := needOpenSSL(t)
	a := testAuthority(t, ECP256)
	pub := phoneKey(t, "ec256").Public()
	one := func(a ...attr) []attr { return a }
	for _, tc := range []struct {
		name    string
		subject []byte
	}{
		{"ok/capf-default", nil},
		{"ok/plain", rawName(t, one(ps(oidCN, "SEP001122334455")))},
		{"ok/mixed-case-extra-spaces", rawName(t,
			one(ps(oidO, "  Cisco   Systems ")), one(ps(oidCN, "  Mixed  CASE   Name  ")))},
		{"ok/utf8-tabs-newlines", rawName(t, one(utf8s(oidCN, "\tFoo \t\n Bar\r\n")))},
		{"ok/several-attributes", rawName(t,
			one(ps(oidC, "JP")), one(utf8s(oidST, "Tokyo")), one(utf8s(oidL, "Chiyoda-ku")),
			one(ps(oidO, "Example Corp")), one(ps(oidOU, "VOICE")), one(ps(oidOU, "Second OU")), one(ps(oidCN, "CAPF-0A1B2C3D")))},
		{"ok/multi-valued-rdn-unsorted", rawName(t,
			one(ps(oidO, "Org")), one(ps(oidCN, "zzz"), ps(oidOU, "AAA"), utf8s(oidO, "b")))},
		{"ok/ia5-email", rawName(t, one(attr{oidEmail, asn1.TagIA5String, []byte("John.Doe@Example.COM")}), one(ps(oidCN, "X")))},
		{"ok/t61-latin1", rawName(t, one(attr{oidCN, asn1.TagT61String, []byte("Caf\xc9 \xc4BC")}))},
		{"ok/bmp", rawName(t, one(attr{oidCN, 30, bmp(" Ünïcode  ÄB ")}))},
		{"ok/universal-string", rawName(t, one(attr{oidCN, 28, ucs4("ÜNI  Code")}))},
		{"ok/utf8-non-ascii", rawName(t, one(utf8s(oidCN, "ÄÖÜ Straße  ABC")))},
		{"ok/numeric-string-kept", rawName(t, one(attr{oidSN, asn1.TagNumericString, []byte("0012 345")}), one(ps(oidCN, "N")))},
		{"ok/empty-value", rawName(t, one(ps(oidOU, "")), one(ps(oidCN, "   ")))},
		{"ok/long-value", rawName(t, one(utf8s(oidCN, strings.Repeat("Long Name ", 30))))},
		{"ok/empty-name", rawName(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := a.Certificate()
			if tc.subject != nil {
				tmpl := &x509.Certificate{
					SerialNumber: big.NewInt(1),
					RawSubject:   tc.subject,
					Subject:      pkix.Name{}, // ignored: RawSubject wins
					NotBefore:    testNow,
					NotAfter:     testNow.Add(time.Hour),
					DNSNames:     []string{"example.test"},
				}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Certificate(), pub, a.Signer())
				if err != nil {
					t.Fatal(err)
				}
				// crypto/x509 cannot parse every string type
				// (UniversalString, VisibleString); SubjectHash
				// only reads RawSubject.
				cert = &x509.Certificate{Raw: der, RawSubject: tc.subject}
				if parsed, err := x509.ParseCertificate(der); err == nil && !bytes.Equal(parsed.RawSubject, tc.subject) {
					t.Fatal("subject was re-encoded")
				}
			}
			file := filepath.Join(t.TempDir(), "c.pem")
			if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(openssl, "x509", "-hash", "-noout", "-in", file).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl x509 -hash: %v\n%s", err, out)
			}
			want := strings.TrimSpace(string(out))
			got, err := HashFileName(cert)
			if err != nil {
				t.Fatal(err)
			}
			if got != want+".0" {
				t.Errorf("HashFileName = %s, openssl says %s", got, want)
			}
		})
	}
}

func TestSubjectHashRefusesGarbage(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"fail/empty", nil},
		{"fail/not-a-sequence", []byte{0x31, 0x00}},
		{"fail/trailing-bytes", []byte{0x30, 0x00, 0x00}},
		{"fail/rdn-not-a-set", []byte{0x30, 0x02, 0x30, 0x00}},
		{"fail/truncated", []byte{0x30, 0x05, 0x31, 0x03, 0x30}},
		{"fail/bad-utf8", rawName(t, []attr{utf8s(oidCN, "\xff")})},
		{"fail/odd-bmp", rawName(t, []attr{{oidCN, 30, []byte{0}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SubjectHash(&x509.Certificate{RawSubject: tc.raw}); err == nil {
				t.Error("SubjectHash accepted a bad name")
			}
		})
	}
}

func TestCanonicalString(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"   ":             "",
		"ABC":             "abc",
		"  a  B\t\nc  ":   "a b c",
		"ÄB":              "Äb",
		"x\v\fy\r":        "x y",
		"Mixed CASE 0-9_": "mixed case 0-9_",
	} {
		if got := string(canonicalString([]byte(in))); got != want {
			t.Errorf("canonicalString(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	a, _, err := LoadOrCreate(testOptions(t, ECP256))
	if err != nil {
		t.Fatal(err)
	}
	c := a.Certificate()
	d, err := Describe(c)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := HashFileName(c)
	if d.HashName != name || len(d.SHA1) != 40 || len(d.SHA256) != 64 || d.Serial == "" || !d.NotAfter.Equal(c.NotAfter) {
		t.Errorf("description %+v", d)
	}
	if d.SHA256 != strings.ToUpper(d.SHA256) {
		t.Errorf("fingerprint %q not upper-case", d.SHA256)
	}
	// The serial as openssl x509 -serial prints it and the inventory keys
	// it: every byte in two digits, a leading zero kept.
	lead := *c
	lead.SerialNumber = big.NewInt(0x0abcde)
	if d, err := Describe(&lead); err != nil || d.Serial != "0ABCDE" {
		t.Errorf("serial %q, %v; want 0ABCDE", d.Serial, err)
	}
}
