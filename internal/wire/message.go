package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Element is one tag·length·value item of a message payload. Value is the raw
// value bytes; its length is at most 65,535.
type Element struct {
	Tag   Tag
	Value []byte
}

// Message is one decoded CAPF message: its command, the session id from the
// header and its elements in the order they appeared on the wire.
type Message struct {
	Command   Command
	SessionID uint32
	Elements  []Element
}

// New returns an empty message with the given command and session id.
func New(cmd Command, sessionID uint32) *Message {
	return &Message{Command: cmd, SessionID: sessionID}
}

// Header is the fixed 8-byte prefix of every message.
type Header struct {
	Command   Command
	SessionID uint32
	Length    uint16 // payload length in bytes
}

// ErrMalformed is wrapped by every decoding error, so callers can tell a
// protocol violation by the peer from an I/O failure with errors.Is.
var ErrMalformed = errors.New("malformed CAPF message")

// DecodeError describes where and why a message could not be decoded.
type DecodeError struct {
	Offset int    // byte offset from the start of the message
	Reason string // what was wrong there
}

// Error implements error.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("malformed CAPF message at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap lets errors.Is(err, ErrMalformed) match.
func (e *DecodeError) Unwrap() error { return ErrMalformed }

func malformed(offset int, format string, args ...any) error {
	return &DecodeError{Offset: offset, Reason: fmt.Sprintf(format, args...)}
}

// ParseHeader decodes the 8-byte header at the start of b. It rejects a short
// buffer and a protocol id other than [ProtocolID].
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, malformed(len(b), "truncated header: %d of %d bytes", len(b), HeaderLen)
	}
	if b[0] != ProtocolID {
		return Header{}, malformed(0, "protocol id 0x%02x, want 0x%02x", b[0], ProtocolID)
	}
	return Header{
		Command:   Command(b[1]),
		SessionID: binary.BigEndian.Uint32(b[2:6]),
		Length:    binary.BigEndian.Uint16(b[6:8]),
	}, nil
}

// Decode parses one complete message. b must hold exactly one message: the
// header and a payload of the length the header gives. Unknown commands and
// tags are accepted; a tag that appears twice is rejected, because two
// different values for one element (two device names, say) leave the meaning
// of the message ambiguous.
//
// The returned message's element values alias b.
func Decode(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	end := HeaderLen + int(h.Length)
	if len(b) < end {
		return nil, malformed(len(b), "truncated payload: header says %d bytes, %d present", h.Length, len(b)-HeaderLen)
	}
	if len(b) > end {
		return nil, malformed(end, "%d bytes after the end of the message", len(b)-end)
	}
	m := &Message{Command: h.Command, SessionID: h.SessionID}
	var seen [256]bool
	for off := HeaderLen; off < end; {
		if end-off < 3 {
			return nil, malformed(off, "truncated element header: %d bytes left", end-off)
		}
		tag := Tag(b[off])
		n := int(binary.BigEndian.Uint16(b[off+1 : off+3]))
		if off+3+n > end {
			return nil, malformed(off, "element %s length %d runs past the payload end", tag, n)
		}
		if seen[tag] {
			return nil, malformed(off, "element %s appears twice", tag)
		}
		seen[tag] = true
		m.Elements = append(m.Elements, Element{Tag: tag, Value: b[off+3 : off+3+n : off+3+n]})
		off += 3 + n
	}
	return m, nil
}

// PayloadLen returns the encoded size of the message payload.
func (m *Message) PayloadLen() int {
	n := 0
	for _, e := range m.Elements {
		n += 3 + len(e.Value)
	}
	return n
}

// Append encodes the message and appends it to dst. It fails if an element
// value or the payload is longer than the 16-bit length fields allow.
func (m *Message) Append(dst []byte) ([]byte, error) {
	n := m.PayloadLen()
	if n > MaxPayloadLen {
		return dst, fmt.Errorf("encode %s: payload of %d bytes exceeds %d", m.Command, n, MaxPayloadLen)
	}
	dst = append(dst, ProtocolID, byte(m.Command))
	dst = binary.BigEndian.AppendUint32(dst, m.SessionID)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	for _, e := range m.Elements {
		dst = append(dst, byte(e.Tag))
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.Value)))
		dst = append(dst, e.Value...)
	}
	return dst, nil
}

// Encode returns the encoded message.
func (m *Message) Encode() ([]byte, error) {
	return m.Append(make([]byte, 0, HeaderLen+m.PayloadLen()))
}

// ReadFrame reads one whole message (header and payload) from r into buf,
// growing it as needed, and returns the frame bytes. It refuses a payload
// longer than maxPayload before reading it, so a peer cannot make the reader
// allocate more than it allows. A connection closed before the first byte
// gives io.EOF; one closed mid-message gives io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte, maxPayload int) ([]byte, error) {
	if cap(buf) < HeaderLen {
		buf = make([]byte, HeaderLen, 512)
	}
	buf = buf[:HeaderLen]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return nil, err
	}
	if int(h.Length) > maxPayload {
		return nil, malformed(6, "payload length %d exceeds the limit of %d", h.Length, maxPayload)
	}
	total := HeaderLen + int(h.Length)
	if cap(buf) < total {
		nb := make([]byte, total)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:total]
	if _, err := io.ReadFull(r, buf[HeaderLen:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// Get returns the value of the element with the given tag.
func (m *Message) Get(tag Tag) ([]byte, bool) {
	for _, e := range m.Elements {
		if e.Tag == tag {
			return e.Value, true
		}
	}
	return nil, false
}

// Has reports whether the message carries an element with the given tag.
func (m *Message) Has(tag Tag) bool {
	_, ok := m.Get(tag)
	return ok
}

// Add appends an element with a raw value and returns m for chaining.
func (m *Message) Add(tag Tag, value []byte) *Message {
	m.Elements = append(m.Elements, Element{Tag: tag, Value: value})
	return m
}

// AddUint8 appends a one-byte element.
func (m *Message) AddUint8(tag Tag, v uint8) *Message { return m.Add(tag, []byte{v}) }

// AddUint16 appends a two-byte big-endian element.
func (m *Message) AddUint16(tag Tag, v uint16) *Message {
	return m.Add(tag, binary.BigEndian.AppendUint16(nil, v))
}

// AddUint32 appends a four-byte big-endian element.
func (m *Message) AddUint32(tag Tag, v uint32) *Message {
	return m.Add(tag, binary.BigEndian.AppendUint32(nil, v))
}

// AddString appends a NUL-terminated ASCII string element.
func (m *Message) AddString(tag Tag, s string) *Message {
	v := make([]byte, 0, len(s)+1)
	v = append(v, s...)
	return m.Add(tag, append(v, 0))
}

// Uint8 returns the value of a one-byte element. It fails when the element
// is absent or not exactly one byte long.
func (m *Message) Uint8(tag Tag) (uint8, error) {
	v, ok := m.Get(tag)
	if !ok {
		return 0, fmt.Errorf("%s: %w", tag, ErrMissing)
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%s: %w: %d bytes, want 1", tag, ErrMalformed, len(v))
	}
	return v[0], nil
}

// Uint is the value of an unsigned big-endian element of 1, 2 or 4 bytes.
func (m *Message) Uint(tag Tag) (uint32, error) {
	v, ok := m.Get(tag)
	if !ok {
		return 0, fmt.Errorf("%s: %w", tag, ErrMissing)
	}
	switch len(v) {
	case 1:
		return uint32(v[0]), nil
	case 2:
		return uint32(binary.BigEndian.Uint16(v)), nil
	case 4:
		return binary.BigEndian.Uint32(v), nil
	}
	return 0, fmt.Errorf("%s: %w: %d bytes, want 1, 2 or 4", tag, ErrMalformed, len(v))
}

// String returns a string element without its NUL terminator. Phones end
// strings with a NUL; a value without one is accepted as it is, and anything
// after the first NUL is ignored.
func (m *Message) String(tag Tag) (string, bool) {
	v, ok := m.Get(tag)
	if !ok {
		return "", false
	}
	return CString(v), true
}

// CString returns v up to (not including) its first NUL byte.
func CString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

// ErrMissing is wrapped when a required element is absent.
var ErrMissing = errors.New("element missing")
