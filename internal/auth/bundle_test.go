package auth

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/fault"
)

func TestLoadBundle(t *testing.T) {
	pk := testPKI(t)
	pemOf := func(cs ...cred) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der()})...)
		}
		return b
	}
	good := pemOf(pk.mfgRSA)
	corrupt := strings.Replace(string(good), "\n", "\n!!!!", 3)
	for _, tc := range []struct {
		name    string
		content []byte // nil: no file
		want    int
		detail  string
	}{
		{"ok/one", good, 1, ""},
		{"ok/several-with-comments", append(append([]byte("# Cisco manufacturing CAs\n"), pemOf(pk.mfgRSA, pk.mfgEC)...), []byte("trailing text\n")...), 2, ""},
		{"ok/der", append(append([]byte{}, pk.mfgRSA.der()...), pk.mfgEC.der()...), 2, ""},
		{"fail/unreadable", nil, 0, "no such file"},
		{"fail/empty", []byte(" \n"), 0, "no certificates"},
		{"fail/no-certificates", []byte("just some text\n"), 0, "neither PEM nor DER"},
		{"fail/bad-pem-block-first", []byte(corrupt + string(pemOf(pk.mfgEC))), 0, "bad PEM block 1"},
		{"fail/bad-pem-block-last", []byte(string(pemOf(pk.mfgEC)) + corrupt), 0, "bad PEM block 2"},
		{"fail/not-a-certificate", append(good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...), 0, `PEM block 2 is "PRIVATE KEY"`},
		{"fail/bad-certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}), 0, "certificate 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mfg-ca.pem")
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			pool, n, err := LoadBundle(path)
			if tc.detail != "" {
				if err == nil || !strings.Contains(err.Error(), tc.detail) || !strings.Contains(err.Error(), path) {
					t.Fatalf("LoadBundle = %v; want an error naming %s and containing %q", err, path, tc.detail)
				}
				if tc.content == nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("error %v does not wrap the file error", err)
				}
				if tc.content != nil && !errors.Is(err, fault.ErrInvalid) {
					t.Errorf("error %v is not fault.Invalid", err)
				}
				return
			}
			if err != nil || n != tc.want || pool == nil {
				t.Fatalf("LoadBundle = %v, %d, %v; want %d certificates", pool, n, err, tc.want)
			}
			if _, err := pk.micRSA.cert.Verify(x509VerifyOptions(pool)); err != nil {
				t.Errorf("MIC does not verify against the loaded bundle: %v", err)
			}
		})
	}
}

func x509VerifyOptions(roots *x509.CertPool) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: roots, CurrentTime: testNow, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
}
