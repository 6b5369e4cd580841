// Package safetext makes text that came from the network safe to write to a
// log line or a database row: it bounds its length and replaces every byte
// that is not printable ASCII, so a phone can neither flood the log nor
// forge lines or terminal escapes in it. It imports nothing internal.
package safetext

import (
	"strconv"
	"strings"
)

// Replacement stands in for every control, non-printable or non-ASCII byte.
const Replacement = '?'

// Bound returns s with every byte outside printable ASCII (0x20-0x7E)
// replaced by [Replacement] and, when s is longer than n bytes, cut to its
// first n bytes followed by a marker giving the original length:
// "…(16384 bytes)". n <= 0 keeps nothing but the marker. The result is at
// most n + len(MarkerFor(len(s))) bytes long.
func Bound(s string, n int) string {
	n = max(n, 0)
	keep := min(len(s), n)
	clean := true
	for i := 0; i < keep; i++ {
		if !printable(s[i]) {
			clean = false
			break
		}
	}
	if clean && keep == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(keep + 24)
	for i := 0; i < keep; i++ {
		c := s[i]
		if !printable(c) {
			c = Replacement
		}
		b.WriteByte(c)
	}
	if keep < len(s) {
		b.WriteString(MarkerFor(len(s)))
	}
	return b.String()
}

// MarkerFor is the marker Bound appends to a string of total bytes that it
// cut.
func MarkerFor(total int) string {
	return "…(" + strconv.Itoa(total) + " bytes)"
}

func printable(c byte) bool { return c >= 0x20 && c <= 0x7e }
