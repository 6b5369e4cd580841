package wire_test

import (
	"bytes"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

// BenchmarkDecodeAuthResponse decodes the certificate variant of
// AUTH_RESPONSE, the largest message a phone sends at the start of a session.
func BenchmarkDecodeAuthResponse(b *testing.B) {
	frame := unhex(vectors[4].hex) // auth-response/certificate
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeStoreRequest encodes STORE_CERTIFICATE_REQUEST with a 1 KiB
// certificate into a reused buffer, as a session does.
func BenchmarkEncodeStoreRequest(b *testing.B) {
	der := bytes.Repeat([]byte{0x5A}, 1024)
	der[0], der[1], der[2], der[3] = 0x30, 0x82, 0x03, 0xFC
	m := wire.New(wire.CmdStoreCertificateRequest, sid).
		AddUint8(wire.TagCertificateType, uint8(wire.CertLSC)).
		Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, der))
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(wire.HeaderLen + m.PayloadLen()))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFrame reads one AUTH_RESPONSE frame from a stream into a
// reused buffer.
func BenchmarkReadFrame(b *testing.B) {
	frame := unhex(vectors[4].hex)
	r := bytes.NewReader(frame)
	buf := make([]byte, 0, 512)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		var err error
		if buf, err = wire.ReadFrame(r, buf, wire.MaxPayloadLen); err != nil {
			b.Fatal(err)
		}
	}
}
