package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

// FuzzDecode checks that Decode never panics, that every error it returns is
// a *DecodeError pointing inside the input, and that whatever it accepts
// encodes back to exactly the input (encode∘decode is the identity). The
// value parsers run on every element of an accepted message, and ReadFrame
// must read the same frame from a stream.
//
// The seed corpus is every hand-written vector, every line of the golden
// sessions and the files in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(v.hex))
	}
	for _, path := range sessionFiles(f) {
		for _, c := range readSession(f, path) {
			f.Add(c.raw)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := wire.Decode(b)
		if err != nil {
			var de *wire.DecodeError
			if !errors.As(err, &de) || !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("Decode error %v (%T) is not a *DecodeError wrapping ErrMalformed", err, err)
			}
			if de.Offset < 0 || de.Offset > len(b) {
				t.Fatalf("DecodeError.Offset = %d outside the %d-byte input", de.Offset, len(b))
			}
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded message: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Encode(Decode(b)) =\n%x\nwant\n%x", again, b)
		}
		if m.PayloadLen() != len(b)-wire.HeaderLen {
			t.Fatalf("PayloadLen = %d, want %d", m.PayloadLen(), len(b)-wire.HeaderLen)
		}
		frame, err := wire.ReadFrame(bytes.NewReader(b), nil, wire.MaxPayloadLen)
		if err != nil || !bytes.Equal(frame, b) {
			t.Fatalf("ReadFrame = %x, %v; want the input", frame, err)
		}
		for _, e := range m.Elements {
			_, _, _ = wire.UnwrapCertificate(e.Value)
			_, _ = wire.ParseSUDIData(e.Value)
			_, _, _ = wire.ParseSHA2SignedData(e.Value)
			_ = wire.CString(e.Value)
			_, _ = m.String(e.Tag)
			_, _ = m.Uint8(e.Tag)
			_, _ = m.Uint(e.Tag)
			if typ, der, err := wire.UnwrapCertificate(e.Value); err == nil && isCanonicalWrapper(e.Value, len(der)) {
				if re := wire.WrapCertificate(typ, der); !bytes.Equal(re, e.Value) {
					t.Fatalf("WrapCertificate = %x, want %x", re, e.Value)
				}
			}
			if h, sig, err := wire.ParseSHA2SignedData(e.Value); err == nil && 3+len(sig) == len(e.Value) {
				if re := wire.AppendSHA2SignedData(nil, h, sig); !bytes.Equal(re, e.Value) {
					t.Fatalf("AppendSHA2SignedData = %x, want %x", re, e.Value)
				}
			}
		}
	})
}

// isCanonicalWrapper reports whether v starts with the wrapper
// WrapCertificate writes for a DER of derLen bytes.
func isCanonicalWrapper(v []byte, derLen int) bool {
	return len(v) == derLen+5 && v[0] == 0x01 && int(v[1])<<8|int(v[2]) == derLen+2 && v[3] == 0x00
}
