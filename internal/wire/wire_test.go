package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

// The vectors below were written by hand from docs/capf-protocol.md, byte by
// byte, not produced by the encoder: header (0x55 · command · session id ·
// payload length) then tag · length · value elements. Spaces in the hex only
// separate the header and the elements for the reader.

// sid is the session id of the vectors: four distinct bytes, so that a byte
// order mistake shows.
const sid = 0x12345678

// Hand-encoded values shared by several vectors.
const (
	// DEVICE_NAME value "SEP58971ECC97C1" and its NUL.
	hexSEPName = "53455035383937314543433937433100"
	// A stand-in DER certificate: SEQUENCE { INTEGER 5 }.
	hexDER = "3003020105"
	// The CERTIFICATE value for hexDER as an LSC: 0x01 · DER length + 2 ·
	// 0x00 · type 1 · DER.
	hexWrappedLSC = "01 0007 00 01 " + hexDER
	// A stand-in SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID } }.
	hexSPKI = "30053003060100"
	// SUDI_DATA value: (0, SUDI certificate), (1 SHA-1, signature),
	// (3 SHA-512, signature).
	hexSUDI = "00 0005 3003020107  01 0002 5151  03 0003 535353"
)

// vector is one message of the protocol in its encoded and decoded form.
type vector struct {
	name  string
	hex   string
	msg   *wire.Message
	check func(t *testing.T, m *wire.Message) // optional: typed accessors on the decoded message
}

// unhex decodes hex that may contain spaces; it panics on bad input, which
// can only be a mistake in a test table.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic("bad hex in test table: " + err.Error())
	}
	return b
}

func msg(cmd wire.Command, id uint32, elems ...wire.Element) *wire.Message {
	return &wire.Message{Command: cmd, SessionID: id, Elements: elems}
}

func el(tag wire.Tag, hexValue string) wire.Element {
	return wire.Element{Tag: tag, Value: unhex(hexValue)}
}

func endSession(reason string) vector {
	return vector{
		name: "end-session/reason-" + reason,
		hex:  "55 0f 12345678 0004  01 0001 0" + reason,
		msg:  msg(wire.CmdEndSession, sid, el(wire.TagReason, "0"+reason)),
	}
}

var vectors = []vector{
	{
		name: "auth-request/version-only",
		hex:  "55 01 12345678 0004  07 0001 03",
		msg:  msg(wire.CmdAuthRequest, sid, el(wire.TagVersion, "03")),
	},
	{
		name: "auth-request/with-auth-type-none",
		hex:  "55 01 12345678 0008  07 0001 03  08 0001 00",
		msg:  msg(wire.CmdAuthRequest, sid, el(wire.TagVersion, "03"), el(wire.TagAuthType, "00")),
	},
	{
		name: "auth-response/password",
		hex:  "55 02 12345678 0025  07 0001 03  0d 0010 " + hexSEPName + "  08 0001 01  0b 0007 31323334353600",
		msg: msg(wire.CmdAuthResponse, sid,
			el(wire.TagVersion, "03"),
			el(wire.TagDeviceName, hexSEPName),
			el(wire.TagAuthType, "01"),
			el(wire.TagPassword, "31323334353600")),
		check: func(t *testing.T, m *wire.Message) {
			wantString(t, m, wire.TagDeviceName, "SEP58971ECC97C1")
			wantUint8(t, m, wire.TagAuthType, uint8(wire.AuthPassword))
			wantString(t, m, wire.TagPassword, "123456")
		},
	},
	{
		name: "auth-response/null-string",
		hex:  "55 02 12345678 001f  07 0001 03  0d 0010 " + hexSEPName + "  08 0001 02  0b 0001 00",
		msg: msg(wire.CmdAuthResponse, sid,
			el(wire.TagVersion, "03"),
			el(wire.TagDeviceName, hexSEPName),
			el(wire.TagAuthType, "02"),
			el(wire.TagPassword, "00")),
		check: func(t *testing.T, m *wire.Message) {
			wantUint8(t, m, wire.TagAuthType, uint8(wire.AuthNoPassword))
			wantString(t, m, wire.TagPassword, "")
		},
	},
	{
		name: "auth-response/certificate",
		hex: "55 02 12345678 004f  07 0001 03  0d 0010 " + hexSEPName + "  08 0001 03" +
			"  04 000a " + hexWrappedLSC +
			"  06 0004 aabbccdd" +
			"  14 0007 03 0004 11223344" +
			"  10 0013 " + hexSUDI,
		msg: msg(wire.CmdAuthResponse, sid,
			el(wire.TagVersion, "03"),
			el(wire.TagDeviceName, hexSEPName),
			el(wire.TagAuthType, "03"),
			el(wire.TagCertificate, hexWrappedLSC),
			el(wire.TagSignedData, "aabbccdd"),
			el(wire.TagSHA2SignedData, "03 0004 11223344"),
			el(wire.TagSUDIData, hexSUDI)),
		check: func(t *testing.T, m *wire.Message) {
			wantUint8(t, m, wire.TagAuthType, uint8(wire.AuthLSC))
			v, _ := m.Get(wire.TagCertificate)
			typ, der, err := wire.UnwrapCertificate(v)
			if err != nil || typ != wire.CertLSC || !bytes.Equal(der, unhex(hexDER)) {
				t.Errorf("UnwrapCertificate = %v, %x, %v; want LSC, %s, nil", typ, der, err, hexDER)
			}
			v, _ = m.Get(wire.TagSHA2SignedData)
			h, sig, err := wire.ParseSHA2SignedData(v)
			if err != nil || h != wire.HashSHA512 || !bytes.Equal(sig, unhex("11223344")) {
				t.Errorf("ParseSHA2SignedData = %v, %x, %v; want SHA-512, 11223344, nil", h, sig, err)
			}
			v, _ = m.Get(wire.TagSUDIData)
			s, err := wire.ParseSUDIData(v)
			if err != nil || !bytes.Equal(s.Certificate, unhex("3003020107")) ||
				!bytes.Equal(s.SHA1Sig, unhex("5151")) || !bytes.Equal(s.SHA512Sig, unhex("535353")) {
				t.Errorf("ParseSUDIData = %x, %v", s, err)
			}
		},
	},
	{
		name: "auth-response/softphone-version-2-no-password",
		hex:  "55 02 12345678 0013  07 0001 02  0d 0008 4353464a444f4500  08 0001 02",
		msg: msg(wire.CmdAuthResponse, sid,
			el(wire.TagVersion, "02"),
			el(wire.TagDeviceName, "4353464a444f4500"),
			el(wire.TagAuthType, "02")),
		check: func(t *testing.T, m *wire.Message) {
			wantString(t, m, wire.TagDeviceName, "CSFJDOE")
			wantUint8(t, m, wire.TagVersion, 2)
			if m.Has(wire.TagPassword) {
				t.Error("Has(PASSWORD) = true")
			}
		},
	},
	{
		name: "key-generate-request/rsa",
		hex:  "55 03 12345678 0009  11 0001 00  0a 0002 0800",
		msg:  msg(wire.CmdKeyGenerateRequest, sid, el(wire.TagKeyType, "00"), el(wire.TagKeySize, "0800")),
		check: func(t *testing.T, m *wire.Message) {
			wantUint8(t, m, wire.TagKeyType, uint8(wire.KeyRSA))
			wantUint(t, m, wire.TagKeySize, 2048)
		},
	},
	{
		name: "key-generate-request/ec",
		hex:  "55 03 12345678 0008  11 0001 01  12 0001 01",
		msg:  msg(wire.CmdKeyGenerateRequest, sid, el(wire.TagKeyType, "01"), el(wire.TagCurve, "01")),
		check: func(t *testing.T, m *wire.Message) {
			wantUint8(t, m, wire.TagKeyType, uint8(wire.KeyEC))
			wantUint8(t, m, wire.TagCurve, uint8(wire.CurveP384))
		},
	},
	{
		name: "key-generate-request/key-size-only",
		hex:  "55 03 12345678 0005  0a 0002 0800",
		msg:  msg(wire.CmdKeyGenerateRequest, sid, el(wire.TagKeySize, "0800")),
	},
	{
		name: "key-generate-response/public-key",
		hex:  "55 04 12345678 000a  09 0007 " + hexSPKI,
		msg:  msg(wire.CmdKeyGenerateResponse, sid, el(wire.TagPublicKey, hexSPKI)),
	},
	{
		name: "key-generate-response/failed",
		hex:  "55 04 12345678 0004  01 0001 07",
		msg:  msg(wire.CmdKeyGenerateResponse, sid, el(wire.TagReason, "07")),
	},
	{
		name: "store-certificate-request",
		hex:  "55 09 12345678 0011  03 0001 01  04 000a " + hexWrappedLSC,
		msg:  msg(wire.CmdStoreCertificateRequest, sid, el(wire.TagCertificateType, "01"), el(wire.TagCertificate, hexWrappedLSC)),
	},
	{
		name: "store-certificate-response",
		hex:  "55 0a 12345678 0004  01 0001 01",
		msg:  msg(wire.CmdStoreCertificateResponse, sid, el(wire.TagReason, "01")),
	},
	{
		name: "fetch-certificate-request/with-type",
		hex:  "55 0b 12345678 0004  03 0001 01",
		msg:  msg(wire.CmdFetchCertificateRequest, sid, el(wire.TagCertificateType, "01")),
	},
	{
		name: "fetch-certificate-request/without-type",
		hex:  "55 0b 12345678 0000",
		msg:  msg(wire.CmdFetchCertificateRequest, sid),
	},
	{
		name: "fetch-certificate-response/certificate",
		hex:  "55 0c 12345678 0011  01 0001 01  04 000a " + hexWrappedLSC,
		msg:  msg(wire.CmdFetchCertificateResponse, sid, el(wire.TagReason, "01"), el(wire.TagCertificate, hexWrappedLSC)),
	},
	{
		name: "fetch-certificate-response/none",
		hex:  "55 0c 12345678 0004  01 0001 07",
		msg:  msg(wire.CmdFetchCertificateResponse, sid, el(wire.TagReason, "07")),
	},
	{
		name: "delete-certificate-request",
		hex:  "55 0d 12345678 0000",
		msg:  msg(wire.CmdDeleteCertificateRequest, sid),
	},
	{
		name: "delete-certificate-response/deleted",
		hex:  "55 0e 12345678 0004  01 0001 01",
		msg:  msg(wire.CmdDeleteCertificateResponse, sid, el(wire.TagReason, "01")),
	},
	{
		name: "delete-certificate-response/nothing-to-delete",
		hex:  "55 0e 12345678 0004  01 0001 07",
		msg:  msg(wire.CmdDeleteCertificateResponse, sid, el(wire.TagReason, "07")),
	},
	endSession("0"),
	endSession("1"),
	endSession("7"),
	endSession("9"),
	{
		name: "end-session/with-reason-info",
		hex:  "55 0f 12345678 000d  01 0001 07  02 0006 64656e696564",
		msg:  msg(wire.CmdEndSession, sid, el(wire.TagReason, "07"), el(wire.TagReasonInfo, "64656e696564")),
		check: func(t *testing.T, m *wire.Message) {
			wantString(t, m, wire.TagReasonInfo, "denied")
		},
	},
	{
		name: "end-session/largest-session-id",
		hex:  "55 0f ffffffff 0004  01 0001 01",
		msg:  msg(wire.CmdEndSession, 0xFFFFFFFF, el(wire.TagReason, "01")),
	},
	{
		name: "retry-later/4-byte-delay",
		hex:  "55 10 12345678 0007  0c 0004 0000003c",
		msg:  msg(wire.CmdRetryLater, sid, el(wire.TagRetryDelay, "0000003c")),
		check: func(t *testing.T, m *wire.Message) {
			wantUint(t, m, wire.TagRetryDelay, 60)
		},
	},
	{
		name: "retry-later/2-byte-delay",
		hex:  "55 10 12345678 0005  0c 0002 012c",
		msg:  msg(wire.CmdRetryLater, sid, el(wire.TagRetryDelay, "012c")),
		check: func(t *testing.T, m *wire.Message) {
			wantUint(t, m, wire.TagRetryDelay, 300)
		},
	},
	{
		name: "request-in-progress",
		hex:  "55 11 12345678 0000",
		msg:  msg(wire.CmdRequestInProgress, sid),
	},
}

func wantString(t *testing.T, m *wire.Message, tag wire.Tag, want string) {
	t.Helper()
	if got, ok := m.String(tag); !ok || got != want {
		t.Errorf("String(%s) = %q, %v; want %q, true", tag, got, ok, want)
	}
}

func wantUint8(t *testing.T, m *wire.Message, tag wire.Tag, want uint8) {
	t.Helper()
	if got, err := m.Uint8(tag); err != nil || got != want {
		t.Errorf("Uint8(%s) = %d, %v; want %d", tag, got, err, want)
	}
}

func wantUint(t *testing.T, m *wire.Message, tag wire.Tag, want uint32) {
	t.Helper()
	if got, err := m.Uint(tag); err != nil || got != want {
		t.Errorf("Uint(%s) = %d, %v; want %d", tag, got, err, want)
	}
}

// equalMessage reports the differences between two messages: command,
// session id and the elements in order.
func equalMessage(t *testing.T, got, want *wire.Message) {
	t.Helper()
	if got.Command != want.Command {
		t.Errorf("command = %s, want %s", got.Command, want.Command)
	}
	if got.SessionID != want.SessionID {
		t.Errorf("session id = %#08x, want %#08x", got.SessionID, want.SessionID)
	}
	if len(got.Elements) != len(want.Elements) {
		t.Fatalf("%d elements %v, want %d %v", len(got.Elements), got.Elements, len(want.Elements), want.Elements)
	}
	for i := range want.Elements {
		g, w := got.Elements[i], want.Elements[i]
		if g.Tag != w.Tag || !bytes.Equal(g.Value, w.Value) {
			t.Errorf("element %d = %s %x, want %s %x", i, g.Tag, g.Value, w.Tag, w.Value)
		}
	}
}

func TestEncodeVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			got, err := v.msg.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if want := unhex(v.hex); !bytes.Equal(got, want) {
				t.Errorf("Encode =\n%x\nwant\n%x", got, want)
			}
		})
	}
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			m, err := wire.Decode(unhex(v.hex))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			equalMessage(t, m, v.msg)
			if v.check != nil {
				v.check(t, m)
			}
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	prefix := []byte("prefix")
	got, err := vectors[0].msg.Append(bytes.Clone(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if want := append(bytes.Clone(prefix), unhex(vectors[0].hex)...); !bytes.Equal(got, want) {
		t.Errorf("Append = %x, want %x", got, want)
	}
}

func TestEncodeTooLong(t *testing.T) {
	tests := []struct {
		name string
		msg  *wire.Message
		ok   bool
	}{
		{"ok/largest-payload", msg(wire.CmdStoreCertificateRequest, sid, wire.Element{Tag: wire.TagCertificate, Value: make([]byte, wire.MaxPayloadLen-3)}), true},
		{"fail/one-element-too-long", msg(wire.CmdStoreCertificateRequest, sid, wire.Element{Tag: wire.TagCertificate, Value: make([]byte, 0x10000)}), false},
		{"fail/payload-too-long", msg(wire.CmdStoreCertificateRequest, sid,
			wire.Element{Tag: wire.TagCertificate, Value: make([]byte, 0x8000)},
			wire.Element{Tag: wire.TagPublicKey, Value: make([]byte, 0x8000)}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.msg.Encode()
			if (err == nil) != tt.ok {
				t.Fatalf("Encode error = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && len(b) != wire.HeaderLen+wire.MaxPayloadLen {
				t.Errorf("len = %d", len(b))
			}
		})
	}
}

func TestBuilders(t *testing.T) {
	tests := []struct {
		name string
		msg  *wire.Message
		hex  string
	}{
		{"add-uint8", wire.New(wire.CmdEndSession, sid).AddUint8(wire.TagReason, uint8(wire.ReasonUnknownDevice)), "55 0f 12345678 0004  01 0001 09"},
		{"add-uint16", wire.New(wire.CmdKeyGenerateRequest, sid).AddUint8(wire.TagKeyType, uint8(wire.KeyRSA)).AddUint16(wire.TagKeySize, 2048), "55 03 12345678 0009  11 0001 00  0a 0002 0800"},
		{"add-uint32", wire.New(wire.CmdRetryLater, sid).AddUint32(wire.TagRetryDelay, 60), "55 10 12345678 0007  0c 0004 0000003c"},
		{"add-string", wire.New(wire.CmdAuthResponse, sid).AddString(wire.TagDeviceName, "CSFJDOE"), "55 02 12345678 000b  0d 0008 4353464a444f4500"},
		{"add-empty-string", wire.New(wire.CmdAuthResponse, sid).AddString(wire.TagPassword, ""), "55 02 12345678 0004  0b 0001 00"},
		{"add-raw", wire.New(wire.CmdKeyGenerateResponse, sid).Add(wire.TagPublicKey, unhex(hexSPKI)), "55 04 12345678 000a  09 0007 " + hexSPKI},
		{"new-is-empty", wire.New(wire.CmdRequestInProgress, sid), "55 11 12345678 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.msg.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(tt.hex); !bytes.Equal(got, want) {
				t.Errorf("Encode = %x, want %x", got, want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		offset int
		reason string // a word the reason must contain
	}{
		{"fail/empty", "", 0, "truncated header"},
		{"fail/wrong-protocol-id", "56 01 12345678 0000", 0, "protocol id"},
		{"fail/truncated-header", "55 01 1234", 4, "truncated header"},
		{"fail/header-one-byte-short", "55 01 12345678 00", 7, "truncated header"},
		{"fail/truncated-payload", "55 01 12345678 0004  07 00", 10, "truncated payload"},
		{"fail/header-only-but-length-given", "55 01 12345678 0004", 8, "truncated payload"},
		{"fail/element-length-past-payload-end", "55 01 12345678 0004  07 0002 03", 8, "runs past"},
		{"fail/second-element-past-end", "55 01 12345678 0008  07 0001 03  08 0002 00", 12, "runs past"},
		{"fail/truncated-element-header", "55 01 12345678 0006  07 0001 03  08 00", 12, "truncated element header"},
		{"fail/one-byte-element-header", "55 01 12345678 0001  07", 8, "truncated element header"},
		{"fail/trailing-bytes", "55 0f 12345678 0004  01 0001 00  ff", 12, "after the end"},
		{"fail/trailing-frame", "55 11 12345678 0000  55 11 12345678 0000", 8, "after the end"},
		{"fail/duplicate-tag", "55 01 12345678 0008  07 0001 03  07 0001 03", 12, "twice"},
		{"fail/duplicate-tag-different-values", "55 02 12345678 000b  0d 0001 41  08 0001 01  0d 0000", 16, "twice"},
		{"fail/duplicate-unknown-tag", "55 02 12345678 0006  ee 0000  ee 0000", 11, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := wire.Decode(unhex(tt.hex))
			if err == nil {
				t.Fatalf("Decode = %+v, want an error", m)
			}
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if de.Offset != tt.offset {
				t.Errorf("Offset = %d, want %d (%v)", de.Offset, tt.offset, err)
			}
			if !strings.Contains(de.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to mention %q", de.Reason, tt.reason)
			}
			if !strings.Contains(err.Error(), "at byte") {
				t.Errorf("Error() = %q does not give the offset", err)
			}
		})
	}
}

func TestDecodeLiberal(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want *wire.Message
	}{
		{"ok/unknown-tag-kept", "55 02 12345678 0007  ee 0000  07 0001 03",
			msg(wire.CmdAuthResponse, sid, el(0xEE, ""), el(wire.TagVersion, "03"))},
		{"ok/unknown-tag-with-value", "55 02 12345678 0006  0e 0003 010203",
			msg(wire.CmdAuthResponse, sid, el(14, "010203"))},
		{"ok/unknown-command-kept", "55 63 12345678 0004  01 0001 01",
			msg(99, sid, el(wire.TagReason, "01"))},
		{"ok/unobserved-command", "55 14 12345678 0000", msg(wire.CmdAbortRequest, sid)},
		{"ok/empty-payload", "55 0f 00000000 0000", msg(wire.CmdEndSession, 0)},
		{"ok/zero-length-element", "55 02 12345678 0003  0b 0000", msg(wire.CmdAuthResponse, sid, el(wire.TagPassword, ""))},
		{"ok/reason-not-in-table", "55 0f 12345678 0004  01 0001 2a", msg(wire.CmdEndSession, sid, el(wire.TagReason, "2a"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := unhex(tt.hex)
			m, err := wire.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			equalMessage(t, m, tt.want)
			again, err := m.Encode()
			if err != nil || !bytes.Equal(again, b) {
				t.Errorf("re-encoded = %x, %v; want %x", again, err, b)
			}
		})
	}
}

// TestDecodeValuesAreCapped checks that appending to a decoded value cannot
// overwrite the element after it in the frame.
func TestDecodeValuesAreCapped(t *testing.T) {
	b := unhex("55 01 12345678 0008  07 0001 03  08 0001 00")
	m, err := wire.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m.Elements[0].Value, 0xFF)
	if v, _ := m.Get(wire.TagAuthType); !bytes.Equal(v, []byte{0}) {
		t.Errorf("AUTH_TYPE = %x after append to VERSION", v)
	}
}

func TestParseHeader(t *testing.T) {
	h, err := wire.ParseHeader(unhex("55 0f 12345678 0004  01 0001 00"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (wire.Header{Command: wire.CmdEndSession, SessionID: sid, Length: 4}); h != want {
		t.Errorf("ParseHeader = %+v, want %+v", h, want)
	}
}

func TestGetHas(t *testing.T) {
	m, err := wire.Decode(unhex(vectors[2].hex)) // auth-response/password
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.Get(wire.TagAuthType); !ok || !bytes.Equal(v, []byte{1}) {
		t.Errorf("Get(AUTH_TYPE) = %x, %v", v, ok)
	}
	if v, ok := m.Get(wire.TagCertificate); ok || v != nil {
		t.Errorf("Get(CERTIFICATE) = %x, %v; want nil, false", v, ok)
	}
	if !m.Has(wire.TagPassword) || m.Has(wire.TagSUDIData) {
		t.Errorf("Has(PASSWORD), Has(SUDI_DATA) = %v, %v", m.Has(wire.TagPassword), m.Has(wire.TagSUDIData))
	}
}

func TestStringers(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"command/known", wire.CmdAuthRequest.String(), "AUTH_REQUEST"},
		{"command/unknown", wire.Command(99).String(), "Command(99)"},
		{"command/zero", wire.Command(0).String(), "Command(0)"},
		{"command/last", wire.CmdSignCertificateResponse.String(), "SIGN_CERTIFICATE_RESPONSE"},
		{"command/past-last", wire.Command(24).String(), "Command(24)"},
		{"command/end-session", wire.CmdEndSession.String(), "END_SESSION"},
		{"command/request-in-progress", wire.CmdRequestInProgress.String(), "REQUEST_IN_PROGRESS"},
		{"tag/known", wire.TagDeviceName.String(), "DEVICE_NAME"},
		{"tag/gap", wire.Tag(14).String(), "Tag(14)"},
		{"tag/after-gap", wire.TagSUDIData.String(), "SUDI_DATA"},
		{"tag/last", wire.TagSHA2SignedData.String(), "SHA2_SIGNED_DATA"},
		{"tag/unknown", wire.Tag(0xEE).String(), "Tag(238)"},
		{"reason/no-action", wire.ReasonNoAction.String(), "no-action"},
		{"reason/unknown-device", wire.ReasonUnknownDevice.String(), "unknown-device"},
		{"reason/undocumented", wire.Reason(2).String(), "Reason(2)"},
		{"auth-type/mic", wire.AuthMIC.String(), "MIC"},
		{"auth-type/unknown", wire.AuthType(5).String(), "AuthType(5)"},
		{"key-type/ec", wire.KeyEC.String(), "EC"},
		{"curve/p521", wire.CurveP521.String(), "P-521"},
		{"curve/unknown", wire.Curve(3).String(), "Curve(3)"},
		{"cert-type/zero", wire.CertType(0).String(), "CertType(0)"},
		{"cert-type/mic", wire.CertMIC.String(), "MIC"},
		{"hash/sha512", wire.HashSHA512.String(), "SHA-512"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("String() = %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// TestCommandNames checks every command name against the protocol notes, so
// that a stale types_string.go cannot go unnoticed.
func TestCommandNames(t *testing.T) {
	names := []string{
		"AUTH_REQUEST", "AUTH_RESPONSE", "KEY_GENERATE_REQUEST", "KEY_GENERATE_RESPONSE",
		"ENCRYPT_REQUEST", "ENCRYPT_RESPONSE", "DECRYPT_REQUEST", "DECRYPT_RESPONSE",
		"STORE_CERTIFICATE_REQUEST", "STORE_CERTIFICATE_RESPONSE",
		"FETCH_CERTIFICATE_REQUEST", "FETCH_CERTIFICATE_RESPONSE",
		"DELETE_CERTIFICATE_REQUEST", "DELETE_CERTIFICATE_RESPONSE",
		"END_SESSION", "RETRY_LATER", "REQUEST_IN_PROGRESS", "STATUS_REQUEST", "STATUS_RESPONSE",
		"ABORT_REQUEST", "ABORT_RESPONSE", "SIGN_CERTIFICATE_REQUEST", "SIGN_CERTIFICATE_RESPONSE",
	}
	for i, want := range names {
		if got := wire.Command(i + 1).String(); got != want {
			t.Errorf("Command(%d) = %q, want %q", i+1, got, want)
		}
	}
	tags := map[wire.Tag]string{
		1: "REASON", 2: "REASON_INFO", 3: "CERTIFICATE_TYPE", 4: "CERTIFICATE", 5: "CERTIFICATE_ID",
		6: "SIGNED_DATA", 7: "VERSION", 8: "AUTH_TYPE", 9: "PUBLIC_KEY", 10: "KEY_SIZE", 11: "PASSWORD",
		12: "RETRY_DELAY", 13: "DEVICE_NAME", 16: "SUDI_DATA", 17: "KEY_TYPE", 18: "CURVE",
		19: "DIGEST_TYPE", 20: "SHA2_SIGNED_DATA",
	}
	for tag, want := range tags {
		if got := tag.String(); got != want {
			t.Errorf("Tag(%d) = %q, want %q", uint8(tag), got, want)
		}
	}
}
