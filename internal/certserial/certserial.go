// Package certserial draws X.509 serial numbers: positive, at most 127
// bits (RFC 5280 allows 20 octets), and at least 64 random bits as the
// CA/Browser Forum asks, so that serials neither collide nor can be
// predicted.
package certserial

import (
	"errors"
	"fmt"
	"io"
	"math/big"
)

// New draws a serial from r (crypto/rand.Reader in production). It fails
// when r fails, or when r keeps returning values under 64 bits (a broken
// source of randomness).
func New(r io.Reader) (*big.Int, error) {
	var b [16]byte
	for range 100 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("random serial: %w", err)
		}
		b[0] &= 0x7f
		if s := new(big.Int).SetBytes(b[:]); s.BitLen() >= 64 {
			return s, nil
		}
	}
	return nil, errors.New("random serial: the random source returns zeros")
}
