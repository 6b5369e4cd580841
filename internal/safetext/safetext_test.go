package safetext

import (
	"strings"
	"testing"
)

func TestBound(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "short-clean", in: "SEP001122334455", n: 64, want: "SEP001122334455"},
		{name: "exact-length", in: "abcd", n: 4, want: "abcd"},
		{name: "empty", in: "", n: 8, want: ""},
		{name: "truncated", in: "abcdefgh", n: 3, want: "abc…(8 bytes)"},
		{name: "zero-n", in: "abc", n: 0, want: "…(3 bytes)"},
		{name: "negative-n", in: "abc", n: -5, want: "…(3 bytes)"},
		{name: "newline-forged-line", in: "CSF\nlevel=ERROR msg=forged", n: 64, want: "CSF?level=ERROR msg=forged"},
		{name: "control-and-escape", in: "a\x00b\x1b[31mc\x7f", n: 64, want: "a?b?[31mc?"},
		{name: "non-ascii-bytes", in: "é", n: 64, want: "??"},
		{name: "invalid-utf8", in: "\xff\xfe", n: 64, want: "??"},
		{name: "dirty-then-cut", in: "\tab\ncd", n: 4, want: "?ab?…(6 bytes)"},
		{name: "quotes-kept", in: `""""`, n: 2, want: `""…(4 bytes)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Bound(tt.in, tt.n); got != tt.want {
				t.Errorf("Bound(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
		})
	}
}

func TestBoundHostileLength(t *testing.T) {
	in := strings.Repeat(`"`, 16<<10)
	got := Bound(in, 64)
	if max := 64 + len(MarkerFor(len(in))); len(got) > max {
		t.Fatalf("len %d, want at most %d", len(got), max)
	}
	if !strings.HasSuffix(got, "(16384 bytes)") {
		t.Errorf("no length marker: %q", got)
	}
	for i := 0; i < 64; i++ {
		if got[i] != '"' {
			t.Fatalf("byte %d = %q", i, got[i])
		}
	}
}
