package keyref_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
)

// pemKeys returns one key in each encoding ParsePEM reads.
func pemKeys(t *testing.T) (rsaKey *rsa.PrivateKey, ecKey *ecdsa.PrivateKey, encodings map[string][]byte) {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p8rsa, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p8ec, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	return rsaKey, ecKey, map[string][]byte{
		"rsa-pkcs8": enc("PRIVATE KEY", p8rsa),
		"rsa-pkcs1": enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)),
		"ec-pkcs8":  enc("PRIVATE KEY", p8ec),
		"ec-sec1":   enc("EC PRIVATE KEY", sec1),
	}
}

func TestParsePEM(t *testing.T) {
	rsaKey, ecKey, keys := pemKeys(t)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p8ed, _ := x509.MarshalPKCS8PrivateKey(edKey)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not parsed")})
	tests := []struct {
		name     string
		in       []byte
		want     crypto.PublicKey
		sentinel error
		errHas   string
	}{
		{"rsa-pkcs8", keys["rsa-pkcs8"], &rsaKey.PublicKey, nil, ""},
		{"rsa-pkcs1", keys["rsa-pkcs1"], &rsaKey.PublicKey, nil, ""},
		{"ec-pkcs8", keys["ec-pkcs8"], &ecKey.PublicKey, nil, ""},
		{"ec-sec1", keys["ec-sec1"], &ecKey.PublicKey, nil, ""},
		{"certificate-first", append(append([]byte{}, cert...), keys["ec-sec1"]...), &ecKey.PublicKey, nil, ""},
		{"no-key", cert, nil, keyref.ErrKeyFile, "no PEM private key"},
		{"not-pem", []byte("hello"), nil, keyref.ErrKeyFile, "no PEM private key"},
		{"garbage-key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 1, 2}}), nil, keyref.ErrKeyFile, "bad private key"},
		{"pkcs1-label-on-ec", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{0x30, 0}}), nil, keyref.ErrKeyFile, "bad private key"},
		{"ed25519", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8ed}), nil, keyref.ErrUnsupportedKey, "want RSA or ECDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := keyref.ParsePEM(tt.in)
			if tt.sentinel != nil {
				if !errors.Is(err, tt.sentinel) || !errors.Is(err, fault.ErrInvalid) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %v (Invalid) saying %q", err, tt.sentinel, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !k.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Fatal("wrong key")
			}
			switch k.(type) {
			case *rsa.PrivateKey, *ecdsa.PrivateKey:
			default:
				t.Fatalf("key is a %T, want the crypto/rsa or crypto/ecdsa type itself", k)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	rsaKey, _, keys := pemKeys(t)
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.pem", keys["rsa-pkcs1"], 0o600)
	readable := write("readable.pem", keys["rsa-pkcs1"], 0o640)
	empty := write("empty.pem", nil, 0o600)
	big := write("big.pem", make([]byte, 2<<20), 0o600)

	k, err := keyref.LoadString(context.Background(), good, keyref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if !rsaKey.PublicKey.Equal(k.Public()) || k.Ref().Path != good {
		t.Fatal("wrong key or reference")
	}
	d, err := k.Decrypter()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*rsa.PrivateKey); !ok {
		t.Fatalf("Decrypter of a file key is a %T", d)
	}

	for _, tt := range []struct {
		name, path string
		kind       error
		has        string
	}{
		{"group-readable", readable, fault.ErrInvalid, "mode 0640"},
		{"missing", filepath.Join(dir, "nope.pem"), fault.ErrNotFound, "no such file"},
		{"empty", empty, fault.ErrInvalid, "no PEM private key"},
		{"too-big", big, fault.ErrInvalid, "larger than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyref.LoadString(context.Background(), tt.path, keyref.Options{})
			if !errors.Is(err, keyref.ErrKeyFile) || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.has) {
				t.Fatalf("err = %v, want ErrKeyFile (%v) saying %q", err, tt.kind, tt.has)
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := keyref.LoadString(ctx, good, keyref.Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func TestECDSAFileKeyDoesNotDecrypt(t *testing.T) {
	_, _, keys := pemKeys(t)
	p := filepath.Join(t.TempDir(), "ec.pem")
	if err := os.WriteFile(p, keys["ec-sec1"], 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := keyref.LoadString(context.Background(), p, keyref.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Decrypter(); !errors.Is(err, keyref.ErrNotDecrypter) {
		t.Fatalf("Decrypter of an ECDSA key: %v", err)
	}
}

func TestReadPINFile(t *testing.T) {
	// The PIN has letters and a sign so that it cannot turn up by chance
	// in the random digits of the temporary directory an error names.
	const pin = "Pin-Sec+ret"
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, path, want, has string
	}{
		{"lf", write("lf", pin+"\n", 0o600), pin, ""},
		{"crlf", write("crlf", pin+"\r\n", 0o400), pin, ""},
		{"bare", write("bare", "p a s s", 0o600), "p a s s", ""},
		{"not-given", "", "", "--pin-file"},
		{"missing", filepath.Join(dir, "none"), "", "no such file"},
		{"group-readable", write("g", pin+"\n", 0o640), "", "mode 0640"},
		{"world-readable", write("w", pin+"\n", 0o604), "", "mode 0604"},
		{"empty", write("empty", "\n", 0o600), "", "is empty"},
		{"two-lines", write("two", pin+"\n5678\n", 0o600), "", "alone on one line"},
		{"too-long", write("long", strings.Repeat("9", 300), 0o600), "", "larger than"},
		{"directory", dir, "", "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := keyref.ReadPINFile(tt.path)
			if tt.has != "" {
				if !errors.Is(err, keyref.ErrPINFile) || !strings.Contains(err.Error(), tt.has) {
					t.Fatalf("err = %v, want ErrPINFile saying %q", err, tt.has)
				}
				if strings.Contains(err.Error(), pin) {
					t.Fatalf("error %q shows the PIN", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ReadPINFile = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
