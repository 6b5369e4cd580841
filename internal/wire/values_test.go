package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

func TestUint8(t *testing.T) {
	tests := []struct {
		name    string
		msg     *wire.Message
		want    uint8
		wantErr error
	}{
		{"ok", msg(wire.CmdEndSession, sid, el(wire.TagReason, "09")), 9, nil},
		{"fail/missing", msg(wire.CmdEndSession, sid), 0, wire.ErrMissing},
		{"fail/empty", msg(wire.CmdEndSession, sid, el(wire.TagReason, "")), 0, wire.ErrMalformed},
		{"fail/two-bytes", msg(wire.CmdEndSession, sid, el(wire.TagReason, "0001")), 0, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.msg.Uint8(wire.TagReason)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Uint8 error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Uint8 = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestUint(t *testing.T) {
	tests := []struct {
		name    string
		value   string // hex; "-" for no element
		want    uint32
		wantErr error
	}{
		{"ok/1-byte", "2a", 42, nil},
		{"ok/2-byte", "012c", 300, nil},
		{"ok/4-byte", "0000003c", 60, nil},
		{"ok/4-byte-max", "ffffffff", 0xFFFFFFFF, nil},
		{"ok/4-byte-big-endian", "01020304", 0x01020304, nil},
		{"fail/missing", "-", 0, wire.ErrMissing},
		{"fail/empty", "", 0, wire.ErrMalformed},
		{"fail/3-byte", "000001", 0, wire.ErrMalformed},
		{"fail/8-byte", "0000000000000001", 0, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := msg(wire.CmdRetryLater, sid)
			if tt.value != "-" {
				m.Add(wire.TagRetryDelay, unhex(tt.value))
			}
			got, err := m.Uint(wire.TagRetryDelay)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Uint error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Uint = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestStringAndCString(t *testing.T) {
	tests := []struct {
		name   string
		value  string // hex; "-" for no element
		want   string
		wantOK bool
	}{
		{"ok/nul-terminated", "4353464a444f4500", "CSFJDOE", true},
		{"ok/no-terminator", "4353464a444f45", "CSFJDOE", true},
		{"ok/only-nul", "00", "", true},
		{"ok/empty-value", "", "", true},
		{"ok/text-after-nul-ignored", "41420043", "AB", true},
		{"missing", "-", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := msg(wire.CmdAuthResponse, sid)
			if tt.value != "-" {
				m.Add(wire.TagDeviceName, unhex(tt.value))
				if got := wire.CString(unhex(tt.value)); got != tt.want {
					t.Errorf("CString = %q, want %q", got, tt.want)
				}
			}
			got, ok := m.String(wire.TagDeviceName)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("String = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWrapCertificate(t *testing.T) {
	tests := []struct {
		name string
		typ  wire.CertType
		der  string
		want string
	}{
		{"lsc", wire.CertLSC, hexDER, hexWrappedLSC},
		{"mic", wire.CertMIC, hexDER, "01 0007 00 02 " + hexDER},
		{"long", wire.CertLSC, "30820100" + string(bytes.Repeat([]byte("ab"), 0x100)),
			"01 0106 00 01 30820100" + string(bytes.Repeat([]byte("ab"), 0x100))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := wire.WrapCertificate(tt.typ, unhex(tt.der)), unhex(tt.want); !bytes.Equal(got, want) {
				t.Errorf("WrapCertificate = %x, want %x", got, want)
			}
		})
	}
}

func TestUnwrapCertificate(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantTyp wire.CertType
		wantDER string
		wantErr bool
	}{
		{"ok/wrapped-lsc", hexWrappedLSC, wire.CertLSC, hexDER, false},
		{"ok/wrapped-mic", "01 0007 00 02 " + hexDER, wire.CertMIC, hexDER, false},
		{"ok/bare-der", hexDER, 0, hexDER, false},
		{"ok/bare-der-one-byte", "30", 0, "30", false},
		{"ok/wrapper-length-not-trusted", "01 ffff 00 01 " + hexDER, wire.CertLSC, hexDER, false},
		{"ok/one-der-byte", "01 0003 00 01 30", wire.CertLSC, "30", false},
		{"fail/empty", "", 0, "", true},
		{"fail/wrapper-only", "01 0002 00 01", 0, "", true},
		{"fail/too-short", "01 00", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, der, err := wire.UnwrapCertificate(unhex(tt.value))
			if tt.wantErr {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Errorf("UnwrapCertificate error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnwrapCertificate: %v", err)
			}
			if typ != tt.wantTyp || !bytes.Equal(der, unhex(tt.wantDER)) {
				t.Errorf("UnwrapCertificate = %v, %x; want %v, %s", typ, der, tt.wantTyp, tt.wantDER)
			}
		})
	}
}

func TestSUDIData(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    wire.SUDIData
		wantErr bool
	}{
		{"ok/three-blocks", hexSUDI, wire.SUDIData{
			Certificate: unhex("3003020107"), SHA1Sig: unhex("5151"), SHA512Sig: unhex("535353")}, false},
		{"ok/any-order", "03 0001 53  00 0001 30  01 0001 51", wire.SUDIData{
			Certificate: unhex("30"), SHA1Sig: unhex("51"), SHA512Sig: unhex("53")}, false},
		{"ok/certificate-only", "00 0001 30", wire.SUDIData{Certificate: unhex("30")}, false},
		{"ok/unknown-block-skipped", "02 0002 ffff  00 0001 30", wire.SUDIData{Certificate: unhex("30")}, false},
		{"fail/empty", "", wire.SUDIData{}, true},
		{"fail/missing-certificate-block", "01 0002 5151  03 0003 535353", wire.SUDIData{}, true},
		{"fail/empty-certificate-block", "00 0000  01 0002 5151", wire.SUDIData{}, true},
		{"fail/truncated-block-header", "00 0001 30  01 00", wire.SUDIData{}, true},
		{"fail/block-past-end", "00 0005 300302", wire.SUDIData{}, true},
		{"fail/certificate-twice", "00 0001 30  01 0001 51  00 0001 31", wire.SUDIData{}, true},
		{"fail/signature-twice", "00 0001 30  03 0001 53  03 0001 54", wire.SUDIData{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ParseSUDIData(unhex(tt.value))
			if tt.wantErr {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Errorf("ParseSUDIData error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSUDIData: %v", err)
			}
			if !bytes.Equal(got.Certificate, tt.want.Certificate) || !bytes.Equal(got.SHA1Sig, tt.want.SHA1Sig) ||
				!bytes.Equal(got.SHA512Sig, tt.want.SHA512Sig) {
				t.Errorf("ParseSUDIData = %x, want %x", got, tt.want)
			}
		})
	}
}

func TestAppendSUDIData(t *testing.T) {
	got := wire.AppendSUDIData([]byte{0xAA}, wire.SUDIData{
		Certificate: unhex("3003020107"), SHA1Sig: unhex("5151"), SHA512Sig: unhex("535353")})
	if want := unhex("aa " + hexSUDI); !bytes.Equal(got, want) {
		t.Errorf("AppendSUDIData = %x, want %x", got, want)
	}
}

func TestSHA2SignedData(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		hash    wire.HashID
		sig     string
		wantErr bool
	}{
		{"ok/sha512", "03 0004 11223344", wire.HashSHA512, "11223344", false},
		{"ok/sha256", "02 0001 99", wire.HashSHA256, "99", false},
		{"ok/empty-signature", "03 0000", wire.HashSHA512, "", false},
		{"fail/empty", "", 0, "", true},
		{"fail/short-header", "03 00", 0, "", true},
		{"fail/signature-past-end", "03 0005 11223344", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, sig, err := wire.ParseSHA2SignedData(unhex(tt.value))
			if tt.wantErr {
				if !errors.Is(err, wire.ErrMalformed) {
					t.Errorf("ParseSHA2SignedData error = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSHA2SignedData: %v", err)
			}
			if h != tt.hash || !bytes.Equal(sig, unhex(tt.sig)) {
				t.Errorf("ParseSHA2SignedData = %v, %x; want %v, %s", h, sig, tt.hash, tt.sig)
			}
			if again := wire.AppendSHA2SignedData(nil, h, sig); !bytes.Equal(again, unhex(tt.value)) {
				t.Errorf("AppendSHA2SignedData = %x, want %s", again, tt.value)
			}
		})
	}
}

func TestSignedPayload(t *testing.T) {
	got := wire.SignedPayload("SEP58971ECC97C1", unhex(hexDER))
	if want := unhex(hexSEPName + hexDER); !bytes.Equal(got, want) {
		t.Errorf("SignedPayload = %x, want %x", got, want)
	}
}

func TestSUDISignedPayload(t *testing.T) {
	tests := []struct {
		name string
		sid  uint32
		want string
	}{
		// Little-endian: the least significant byte first (Cisco's server
		// writes the session id in host byte order).
		{"little-endian", 0x12345678, "78563412 " + hexDER},
		{"one", 1, "01000000 " + hexDER},
		{"max", 0xFFFFFFFF, "ffffffff " + hexDER},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := wire.SUDISignedPayload(tt.sid, unhex(hexDER)), unhex(tt.want); !bytes.Equal(got, want) {
				t.Errorf("SUDISignedPayload = %x, want %x", got, want)
			}
		})
	}
}
