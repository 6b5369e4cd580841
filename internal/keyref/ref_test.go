package keyref_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     keyref.Ref
		errHas   string // "" means success
	}{
		{"file/relative", "capf-data/ca/capf-key.pem", keyref.Ref{Path: "capf-data/ca/capf-key.pem"}, ""},
		{"file/absolute", "/etc/capf/key.pem", keyref.Ref{Path: "/etc/capf/key.pem"}, ""},
		{"file/windows-drive", `C:\capf\key.pem`, keyref.Ref{Path: `C:\capf\key.pem`}, ""},
		{"file/dot-colon", "./keys:old.pem", keyref.Ref{Path: "./keys:old.pem"}, ""},
		{"pkcs11/object", "pkcs11:token=CAPF;object=capf-ca", keyref.Ref{Token: "CAPF", Object: "capf-ca"}, ""},
		{"pkcs11/id", "pkcs11:token=CAPF;id=%01%A2", keyref.Ref{Token: "CAPF", ID: []byte{1, 0xa2}}, ""},
		{"pkcs11/both-type-case", "PKCS11:object=sast%201;TOKEN=My%20HSM;type=private;id=%07", keyref.Ref{Token: "My HSM", Object: "sast 1", ID: []byte{7}}, ""},
		{"pkcs11/trailing-semicolon", "pkcs11:token=T;object=o;", keyref.Ref{Token: "T", Object: "o"}, ""},

		{"bad/empty", "", keyref.Ref{}, "empty key reference"},
		{"bad/nul", "key\x00.pem", keyref.Ref{}, "NUL"},
		{"bad/scheme-file", "file:///etc/key.pem", keyref.Ref{}, `unknown scheme "file"`},
		{"bad/scheme-engine", "engine:pkcs11:foo", keyref.Ref{}, `unknown scheme "engine"`},
		{"bad/no-token", "pkcs11:object=ca", keyref.Ref{}, "token=LABEL is required"},
		{"bad/no-object", "pkcs11:token=T", keyref.Ref{}, "object=NAME"},
		{"bad/pin-value-query", "pkcs11:token=T;object=o?pin-value=1234", keyref.Ref{}, "pin-value is refused"},
		{"bad/pin-value-path", "pkcs11:token=T;object=o;pin-value=1234", keyref.Ref{}, "pin-value is refused"},
		{"bad/module-query", "pkcs11:token=T;object=o?module-path=/x.so", keyref.Ref{}, "query attributes"},
		{"bad/unknown-attr", "pkcs11:token=T;object=o;slot-id=3", keyref.Ref{}, `"slot-id" is not supported`},
		{"bad/twice", "pkcs11:token=T;object=o;token=U", keyref.Ref{}, `"token" given twice`},
		{"bad/no-value", "pkcs11:token=T;object", keyref.Ref{}, "has no value"},
		{"bad/empty-value", "pkcs11:token=;object=o", keyref.Ref{}, "token is empty"},
		{"bad/pct", "pkcs11:token=T;object=%zz", keyref.Ref{}, "bad percent-encoding"},
		{"bad/type-cert", "pkcs11:token=T;object=o;type=cert", keyref.Ref{}, "type=private"},
		{"bad/token-too-long", "pkcs11:token=" + strings.Repeat("x", 33) + ";object=o", keyref.Ref{}, "longer than 32"},
		{"bad/huge", "pkcs11:token=T;object=" + strings.Repeat("x", 5000), keyref.Ref{}, "longer than 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyref.Parse(tt.in)
			if tt.errHas != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %+v, want an error with %q", tt.in, got, tt.errHas)
				}
				if !errors.Is(err, keyref.ErrBadReference) || !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("error %v: want ErrBadReference and fault.Invalid", err)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not say %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "1234") {
					t.Errorf("error %q repeats the PIN", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got.Path != tt.want.Path || got.Token != tt.want.Token || got.Object != tt.want.Object || !bytes.Equal(got.ID, tt.want.ID) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if got.IsPKCS11() != (tt.want.Path == "") {
				t.Errorf("IsPKCS11 = %v", got.IsPKCS11())
			}
			// The canonical form parses back to the same reference.
			again, err := keyref.Parse(got.String())
			if err != nil || again.String() != got.String() || !bytes.Equal(again.ID, got.ID) || again.Object != got.Object || again.Token != got.Token {
				t.Errorf("round trip of %q via %q: %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"pkcs11:token=T;object=o", "pkcs11:token=T;id=%01", "/k.pem", "pkcs11:token=a%20b;object=c;type=private"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := keyref.Parse(s)
		if err != nil {
			if !errors.Is(err, keyref.ErrBadReference) {
				t.Fatalf("error %v does not wrap ErrBadReference", err)
			}
			return
		}
		if !r.IsPKCS11() {
			return
		}
		again, err := keyref.Parse(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("%q: canonical %q does not parse back: %v", s, r.String(), err)
		}
	})
}
