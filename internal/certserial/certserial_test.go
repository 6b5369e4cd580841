package certserial

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"testing/iotest"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		r       func() *bytes.Reader
		wantErr bool
	}{
		{"high-bit-cleared", func() *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)) }, false},
		{"zeros", func() *bytes.Reader { return bytes.NewReader(make([]byte, 16*100)) }, true},
		{"short", func() *bytes.Reader { return bytes.NewReader([]byte{1, 2, 3}) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.r())
			if (err != nil) != tt.wantErr {
				t.Fatalf("New: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (s.Sign() <= 0 || s.BitLen() > 127 || s.BitLen() < 64) {
				t.Errorf("serial %x: want positive, 64 to 127 bits", s)
			}
		})
	}
	if _, err := New(iotest.ErrReader(errors.New("boom"))); err == nil {
		t.Error("a failing reader gave a serial")
	}
	a, _ := New(rand.Reader)
	b, _ := New(rand.Reader)
	if a.Cmp(b) == 0 {
		t.Error("two serials from crypto/rand are equal")
	}
}
