package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

func TestReadFrameTwoFrames(t *testing.T) {
	first := unhex(vectors[2].hex) // auth-response/password
	second := unhex("55 11 12345678 0000")
	r := bytes.NewReader(append(bytes.Clone(first), second...))

	got, err := wire.ReadFrame(r, nil, wire.MaxPayloadLen)
	if err != nil {
		t.Fatalf("first ReadFrame: %v", err)
	}
	if !bytes.Equal(got, first) {
		t.Errorf("first frame = %x, want %x", got, first)
	}
	if r.Len() != len(second) {
		t.Errorf("ReadFrame left %d bytes, want %d: it must read exactly one frame", r.Len(), len(second))
	}
	got, err = wire.ReadFrame(r, got, wire.MaxPayloadLen)
	if err != nil {
		t.Fatalf("second ReadFrame: %v", err)
	}
	if !bytes.Equal(got, second) {
		t.Errorf("second frame = %x, want %x", got, second)
	}
	if _, err := wire.ReadFrame(r, got, wire.MaxPayloadLen); err != io.EOF {
		t.Errorf("third ReadFrame error = %v, want io.EOF", err)
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	frame := unhex(vectors[2].hex)
	buf := make([]byte, 0, 1024)
	got, err := wire.ReadFrame(bytes.NewReader(frame), buf, wire.MaxPayloadLen)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &buf[:1][0] {
		t.Error("ReadFrame allocated although buf was large enough")
	}
	// A buffer too small for the payload is grown, keeping the header.
	got, err = wire.ReadFrame(bytes.NewReader(frame), make([]byte, 0, wire.HeaderLen), wire.MaxPayloadLen)
	if err != nil || !bytes.Equal(got, frame) {
		t.Errorf("ReadFrame with a small buffer = %x, %v; want %x", got, err, frame)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name       string
		input      string
		maxPayload int
		wantErr    error
	}{
		{"eof/empty-stream", "", wire.MaxPayloadLen, io.EOF},
		{"unexpected-eof/mid-header", "55 01 1234", wire.MaxPayloadLen, io.ErrUnexpectedEOF},
		{"unexpected-eof/mid-payload", "55 01 12345678 0004  07 00", wire.MaxPayloadLen, io.ErrUnexpectedEOF},
		{"unexpected-eof/header-only", "55 01 12345678 0004", wire.MaxPayloadLen, io.ErrUnexpectedEOF},
		{"malformed/wrong-protocol-id", "56 01 12345678 0000", wire.MaxPayloadLen, wire.ErrMalformed},
		{"malformed/oversize-payload", "55 09 12345678 0011  03 0001 01  04 000a " + hexWrappedLSC, 16, wire.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ReadFrame(bytes.NewReader(unhex(tt.input)), nil, tt.maxPayload)
			if err == nil {
				t.Fatalf("ReadFrame = %x, want error %v", got, tt.wantErr)
			}
			if tt.wantErr == io.EOF && err != io.EOF {
				t.Errorf("error = %v, want exactly io.EOF", err)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestReadFrameLimitIsInclusive(t *testing.T) {
	frame := unhex("55 0f 12345678 0004  01 0001 00")
	if _, err := wire.ReadFrame(bytes.NewReader(frame), nil, 4); err != nil {
		t.Errorf("payload of exactly maxPayload refused: %v", err)
	}
	if _, err := wire.ReadFrame(bytes.NewReader(frame), nil, 3); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("payload over maxPayload: error = %v, want ErrMalformed", err)
	}
}

// headerOnlyReader serves a header and fails the test if anything reads
// past it.
type headerOnlyReader struct {
	t      *testing.T
	header []byte
}

func (r *headerOnlyReader) Read(p []byte) (int, error) {
	if len(r.header) == 0 {
		r.t.Error("ReadFrame read past the header of an oversize frame")
		return 0, errors.New("read past the header")
	}
	n := copy(p, r.header)
	r.header = r.header[n:]
	return n, nil
}

func TestReadFrameOversizeRefusedBeforeReading(t *testing.T) {
	r := &headerOnlyReader{t: t, header: unhex("55 09 12345678 ffff")}
	_, err := wire.ReadFrame(r, nil, 4096)
	if !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("error = %v, want ErrMalformed", err)
	}
	var de *wire.DecodeError
	if !errors.As(err, &de) || de.Offset != 6 {
		t.Errorf("error = %#v, want a DecodeError at the length field (offset 6)", err)
	}
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadFramePassesIOErrors(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := wire.ReadFrame(errReader{boom}, nil, wire.MaxPayloadLen)
	if !errors.Is(err, boom) || errors.Is(err, wire.ErrMalformed) {
		t.Errorf("error = %v, want the reader's error, not ErrMalformed", err)
	}
	// A failure in the payload is passed on too.
	r := io.MultiReader(bytes.NewReader(unhex("55 01 12345678 0004")), errReader{boom})
	if _, err := wire.ReadFrame(r, nil, wire.MaxPayloadLen); !errors.Is(err, boom) {
		t.Errorf("payload error = %v, want %v", err, boom)
	}
}

// TestReadFrameThenDecode reads every vector from one stream and decodes it.
func TestReadFrameThenDecode(t *testing.T) {
	var stream []byte
	for _, v := range vectors {
		stream = append(stream, unhex(v.hex)...)
	}
	r := bytes.NewReader(stream)
	var buf []byte
	for _, v := range vectors {
		frame, err := wire.ReadFrame(r, buf, wire.MaxPayloadLen)
		if err != nil {
			t.Fatalf("%s: ReadFrame: %v", v.name, err)
		}
		m, err := wire.Decode(frame)
		if err != nil {
			t.Fatalf("%s: Decode: %v", v.name, err)
		}
		equalMessage(t, m, v.msg)
		buf = frame
	}
	if _, err := wire.ReadFrame(r, buf, wire.MaxPayloadLen); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}
