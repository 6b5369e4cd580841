package kek

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

const goodHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

// writeFile writes content to a new file of mode perm and returns its path.
func writeFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		content string
		perm    os.FileMode
		kind    fault.Kind // Internal: no error
		want    string
	}{
		{"hex", goodHex, 0o600, fault.Internal, ""},
		{"hex-newline", goodHex + "\n", 0o600, fault.Internal, ""},
		{"hex-crlf", goodHex + "\r\n", 0o600, fault.Internal, ""},
		{"upper-hex", strings.ToUpper(goodHex), 0o400, fault.Internal, ""},
		{"group-readable", goodHex, 0o640, fault.Invalid, "has mode 0640: group or others may access it"},
		{"world-readable", goodHex, 0o604, fault.Invalid, "has mode 0604"},
		{"group-writable", goodHex, 0o620, fault.Invalid, "has mode 0620"},
		{"short", goodHex[:62], 0o600, fault.Invalid, "it holds 62 characters: want 64 hex digits"},
		{"long", goodHex + "00", 0o600, fault.Invalid, "it holds 66 characters"},
		{"much-longer", strings.Repeat(goodHex, 100), 0o600, fault.Invalid, "characters: want 64 hex digits"},
		{"raw-bytes", string(bytes.Repeat([]byte{0x8f, 0x11}, 16)), 0o600, fault.Invalid, "it holds 32 characters"},
		{"not-hex", goodHex[:10] + "zz" + goodHex[12:], 0o600, fault.Invalid, "character 11 is not a hex digit"},
		{"two-newlines", goodHex + "\n\n", 0o600, fault.Invalid, "it holds 65 characters"},
		{"all-zero", strings.Repeat("0", 64), 0o600, fault.Invalid, "not a random key"},
		{"empty", "", 0o600, fault.Invalid, "it holds 0 characters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.content, c.perm)
			k, err := Load(p)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if k.Path() != p || !strings.HasPrefix(k.ID(), "kek-") {
					t.Errorf("Path %q ID %q", k.Path(), k.ID())
				}
				return
			}
			if err == nil {
				t.Fatalf("Load accepted %q (mode %04o)", c.content, c.perm)
			}
			if fault.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Load: %v (kind %v), want kind %v saying %q and naming the file", err, fault.KindOf(err), c.kind, c.want)
			}
		})
	}
}

func TestLoadMissingAndNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "none")); fault.KindOf(err) != fault.NotFound || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Load(""); fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), EnvFile) {
		t.Errorf("no path: %v", err)
	}
}

func TestGenerate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kek")
	k, err := Generate(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	again, err := Load(p)
	if err != nil {
		t.Fatalf("Load of a generated file: %v", err)
	}
	if again.ID() != k.ID() {
		t.Errorf("ID after reload %s, want %s", again.ID(), k.ID())
	}
	if _, err := Generate(p, nil); fault.KindOf(err) != fault.Conflict {
		t.Errorf("Generate over an existing file: %v, want a Conflict", err)
	}
	other, err := Generate(filepath.Join(t.TempDir(), "kek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID() == k.ID() {
		t.Error("two generated KEKs have the same ID")
	}
}

func TestSealOpen(t *testing.T) {
	k, err := Load(writeFile(t, goodHex, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Load(writeFile(t, strings.Replace(goodHex, "00", "01", 1), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("PKCS#8 of the CAPF key")
	sealed, err := k.Seal("capf", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed form holds the plaintext")
	}
	sealed2, _ := k.Seal("capf", secret)
	if bytes.Equal(sealed[1:13], sealed2[1:13]) {
		t.Error("two seals used the same nonce")
	}
	got, err := k.Open("capf", k.ID(), sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name     string
		k        *KEK
		keyID    string
		kekID    string
		sealed   []byte
		wrongKEK bool
		want     string
	}{
		{"tampered-ciphertext", k, "capf", k.ID(), flip(len(sealed) / 2), false, "does not authenticate"},
		{"tampered-tag", k, "capf", k.ID(), flip(len(sealed) - 1), false, "does not authenticate"},
		{"tampered-nonce", k, "capf", k.ID(), flip(1), false, "does not authenticate"},
		{"wrong-version", k, "capf", k.ID(), flip(0), false, "damaged"},
		{"truncated", k, "capf", k.ID(), sealed[:20], false, "damaged"},
		{"wrong-aad", k, "sast-primary", k.ID(), sealed, false, "does not authenticate"},
		{"wrong-kek", other, "capf", k.ID(), sealed, true, "is not the one this cluster's keys were sealed with"},
		{"wrong-kek-claimed-right", other, "capf", other.ID(), sealed, false, "does not authenticate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.k.Open(c.keyID, c.kekID, c.sealed)
			if err == nil {
				t.Fatalf("Open succeeded: %q", got)
			}
			if errors.Is(err, ErrWrongKEK) != c.wrongKEK || fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open: %v (wrong KEK %v, kind %v), want %q", err, errors.Is(err, ErrWrongKEK), fault.KindOf(err), c.want)
			}
		})
	}
	if _, err := k.Seal("", secret); err == nil {
		t.Error("Seal with an empty key id succeeded")
	}
}
