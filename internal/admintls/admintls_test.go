package admintls_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/fault"
)

var t0 = time.Now()

func create(t *testing.T, dir string, hosts []string, now time.Time) admintls.Result {
	t.Helper()
	res, err := admintls.LoadOrCreate(dir, hosts, now)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	return res
}

func TestCreatesCAAndServerCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), admintls.DirName)
	res := create(t, dir, []string{"capf.example.net", "192.0.2.7", "", "0.0.0.0"}, t0)
	if !res.CACreated || !res.Issued || res.CA == nil {
		t.Fatalf("first LoadOrCreate: created %v issued %v CA %v", res.CACreated, res.Issued, res.CA)
	}
	host, _ := os.Hostname()
	if want := "CAPF admin CA " + host; res.CA.Subject.CommonName != strings.TrimSpace(want) {
		t.Errorf("CA CN %q, want %q", res.CA.Subject.CommonName, want)
	}
	if d := res.CA.NotAfter.Sub(t0); d < 3649*24*time.Hour {
		t.Errorf("CA valid for %s, want 10 years", d)
	}
	leaf := res.Certificate.Leaf
	if d := leaf.NotAfter.Sub(t0); d < 824*24*time.Hour || d > 826*24*time.Hour {
		t.Errorf("server certificate valid for %s, want 825 days", d)
	}
	for _, name := range []string{"localhost", "capf.example.net", strings.ToLower(host)} {
		if !slices.Contains(leaf.DNSNames, name) {
			t.Errorf("server certificate DNS names %v lack %q", leaf.DNSNames, name)
		}
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "192.0.2.7", "::1"}; !sameSet(ips, want) {
		t.Errorf("server certificate IPs %v, want %v", ips, want)
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{admintls.CAKeyFile, 0o600}, {admintls.ServerKeyFile, 0o600}, {admintls.CAFile, 0o644}, {admintls.ServerFile, 0o644}} {
		fi, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil || fi.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, %v; want %04o", f.name, fi.Mode().Perm(), err, f.mode)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("admin TLS directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestOpenSSLVerifies(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	dir := t.TempDir()
	create(t, dir, []string{"capf.example.net"}, t0)
	out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, admintls.CAFile),
		"-purpose", "sslserver", filepath.Join(dir, admintls.ServerFile)).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(": OK")) {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	out, err = exec.Command("openssl", "verify", "-CAfile", filepath.Join(dir, admintls.CAFile),
		"-verify_hostname", "capf.example.net", filepath.Join(dir, admintls.ServerFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl verify -verify_hostname: %v\n%s", err, out)
	}
}

func TestTLSClientTrustingTheCAConnects(t *testing.T) {
	dir := t.TempDir()
	res := create(t, dir, nil, t0)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{res.Certificate}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	pemCA, err := os.ReadFile(filepath.Join(dir, admintls.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, host := range []string{"localhost", "127.0.0.1"} {
		t.Run(host, func(t *testing.T) {
			c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), &tls.Config{RootCAs: pool, ServerName: host})
			if err != nil {
				t.Fatalf("dial trusting ca.pem as %s: %v", host, err)
			}
			c.Close()
		})
	}
	// A client that trusts only the system roots refuses it.
	if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost"}); err == nil {
		c.Close()
		t.Fatal("a client without ca.pem accepted the admin certificate")
	}
}

func TestReissue(t *testing.T) {
	tests := []struct {
		name      string
		hosts     []string
		now       time.Time
		wantIssue bool
		wantNewCA string // why the CA is replaced; "": kept
	}{
		{"same-names-kept", []string{"a.example"}, t0.Add(24 * time.Hour), false, ""},
		{"same-names-other-order-kept", []string{"a.example", "localhost", "127.0.0.1"}, t0, false, ""},
		{"subdomain-within-constraints", []string{"a.example", "www.a.example"}, t0, true, ""},
		{"new-name", []string{"a.example", "b.example"}, t0, true, "do not cover b.example"},
		{"new-address", []string{"a.example", "192.0.2.9"}, t0, true, "do not cover 192.0.2.9"},
		{"name-gone", nil, t0, true, ""},
		{"expires-within-30-days", []string{"a.example"}, t0.Add(800 * 24 * time.Hour), true, ""},
		{"not-yet-31-days-before", []string{"a.example"}, t0.Add(790 * 24 * time.Hour), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first := create(t, dir, []string{"a.example"}, t0)
			again := create(t, dir, tt.hosts, tt.now)
			if tt.wantNewCA != "" {
				if !again.CACreated || !strings.Contains(again.CAReplaced, tt.wantNewCA) || again.CA.Equal(first.CA) {
					t.Fatalf("CA created %v, replaced %q; want a new CA because it %s", again.CACreated, again.CAReplaced, tt.wantNewCA)
				}
				if err := again.Certificate.Leaf.CheckSignatureFrom(again.CA); err != nil || !again.Issued {
					t.Fatalf("server certificate not issued by the new CA: %v", err)
				}
				verify(t, again.CA, again.Certificate.Leaf)
				return
			}
			if again.CACreated || again.CAReplaced != "" {
				t.Fatalf("the CA was created again (%s)", again.CAReplaced)
			}
			if !again.CA.Equal(first.CA) {
				t.Fatal("the CA changed")
			}
			changed := !again.Certificate.Leaf.Equal(first.Certificate.Leaf)
			if again.Issued != tt.wantIssue || changed != tt.wantIssue {
				t.Fatalf("issued %v (certificate changed %v), want %v", again.Issued, changed, tt.wantIssue)
			}
			if err := again.Certificate.Leaf.CheckSignatureFrom(first.CA); err != nil {
				t.Fatalf("server certificate not signed by the CA: %v", err)
			}
		})
	}
}

func TestBrokenCARefused(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string) error
		want   string
	}{
		{"key-missing", func(dir string) error { return os.Remove(filepath.Join(dir, admintls.CAKeyFile)) }, "need both"},
		{"key-readable-by-others", func(dir string) error { return os.Chmod(filepath.Join(dir, admintls.CAKeyFile), 0o644) }, "readable by others"},
		{"cert-garbage", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, admintls.CAFile), []byte("junk"), 0o644)
		}, admintls.CAFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			create(t, dir, nil, t0)
			if err := tt.damage(dir); err != nil {
				t.Fatal(err)
			}
			_, err := admintls.LoadOrCreate(dir, nil, t0)
			if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want Invalid mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	res := create(t, dir, nil, t0)
	cert, key := filepath.Join(dir, admintls.ServerFile), filepath.Join(dir, admintls.ServerKeyFile)
	got, err := admintls.LoadFiles(cert, key, t0)
	if err != nil || !got.Certificate.Leaf.Equal(res.Certificate.Leaf) {
		t.Fatalf("LoadFiles = %v", err)
	}
	if _, err := admintls.LoadFiles(cert, key, t0.Add(900*24*time.Hour)); fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("LoadFiles of an expired certificate: %v", err)
	}
	if _, err := admintls.LoadFiles(cert, filepath.Join(dir, admintls.CAKeyFile), t0); fault.KindOf(err) != fault.Invalid {
		t.Fatalf("LoadFiles with the wrong key: %v", err)
	}
}
