package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTLSConfig(t *testing.T) {
	tests := []struct {
		profile    string
		minVersion uint16
		perHello   bool
		wantErr    bool
	}{
		{profile: "modern", minVersion: tls.VersionTLS12},
		{profile: "", minVersion: tls.VersionTLS12},
		{profile: "legacy", minVersion: tls.VersionTLS10, perHello: true},
		{profile: "ancient", wantErr: true},
	}
	for _, tt := range tests {
		t.Run("profile/"+tt.profile, func(t *testing.T) {
			c, err := TLSConfig(tt.profile, tls.Certificate{})
			if tt.wantErr {
				if err == nil {
					t.Fatal("unknown profile accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.MinVersion != tt.minVersion {
				t.Errorf("MinVersion %x, want %x", c.MinVersion, tt.minVersion)
			}
			if slices.ContainsFunc(c.CipherSuites, isRSAKex) {
				t.Error("the base configuration offers RSA key exchange")
			}
			if got := c.GetConfigForClient != nil; got != tt.perHello {
				t.Errorf("suites per ClientHello: %v, want %v", got, tt.perHello)
			}
			if !c.DynamicRecordSizingDisabled {
				t.Error("dynamic record sizing would split large messages across TLS records; a softphone reads a message with one read")
			}
			if c.ClientAuth != tls.NoClientCert {
				t.Error("phones authenticate inside the protocol; no client certificate may be requested")
			}
			if slices.Contains(c.CurvePreferences, tls.X25519MLKEM768) || len(c.CurvePreferences) == 0 {
				t.Errorf("curves %v, want classical ECDHE only", c.CurvePreferences)
			}
		})
	}
}

func isRSAKex(id uint16) bool {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if s.ID == id {
			return strings.HasPrefix(s.Name, "TLS_RSA_")
		}
	}
	return false
}

func TestLegacySuitesPerClientHello(t *testing.T) {
	c, err := TLSConfig(ProfileLegacy, tls.Certificate{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		versions []uint16
		rsaKex   bool
	}{
		{name: "tls13-client", versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}},
		{name: "tls12-max-client", versions: []uint16{tls.VersionTLS12, tls.VersionTLS11, tls.VersionTLS10}},
		{name: "grease-and-tls12", versions: []uint16{0x2a2a, tls.VersionTLS12}},
		{name: "tls11-max-client", versions: []uint16{tls.VersionTLS11, tls.VersionTLS10}, rsaKex: true},
		{name: "tls10-only-79xx", versions: []uint16{tls.VersionTLS10}, rsaKex: true},
		{name: "grease-only", versions: []uint16{0x1a1a, tls.VersionTLS10}, rsaKex: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.GetConfigForClient(&tls.ClientHelloInfo{SupportedVersions: tt.versions})
			if err != nil {
				t.Fatal(err)
			}
			if rsa := slices.ContainsFunc(got.CipherSuites, isRSAKex); rsa != tt.rsaKex {
				t.Errorf("RSA key exchange offered: %v, want %v (suites %v)", rsa, tt.rsaKex, got.CipherSuites)
			}
			if tt.rsaKex && got.MaxVersion != tls.VersionTLS11 {
				t.Errorf("old-client config allows up to %x", got.MaxVersion)
			}
			if !got.DynamicRecordSizingDisabled || len(got.Certificates) != 1 {
				t.Error("the per-client configuration lost the base settings")
			}
		})
	}
}

// rsaCert is a self-signed RSA certificate, as the legacy profile needs.
func rsaCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "CAPF-legacy-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsEcho serves TLS with cfg on loopback, completing each handshake.
func tlsEcho(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if tc := c.(*tls.Conn); tc.Handshake() == nil {
					_, _ = tc.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestLegacyProfileHandshakes(t *testing.T) {
	cert := rsaCert(t)
	rsaKex := []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
	tests := []struct {
		profile   string
		name      string
		min, max  uint16
		suites    []uint16 // nil: Go's defaults
		wantOK    bool
		wantSuite func(uint16) bool
	}{
		{profile: "legacy", name: "tls12-client-rsa-kex-only-refused", min: tls.VersionTLS12, max: tls.VersionTLS12, suites: rsaKex},
		{profile: "legacy", name: "tls10-11-12-client-rsa-kex-only-refused", min: tls.VersionTLS10, max: tls.VersionTLS12, suites: rsaKex},
		{profile: "legacy", name: "tls10-client-rsa-kex-served", min: tls.VersionTLS10, max: tls.VersionTLS10, suites: rsaKex, wantOK: true, wantSuite: isRSAKex},
		{profile: "legacy", name: "tls11-client-rsa-kex-served", min: tls.VersionTLS11, max: tls.VersionTLS11, suites: rsaKex, wantOK: true, wantSuite: isRSAKex},
		{profile: "legacy", name: "tls12-client-default-gets-ecdhe", min: tls.VersionTLS12, max: tls.VersionTLS12, wantOK: true,
			wantSuite: func(id uint16) bool { return slices.Contains(modernSuites, id) }},
		{profile: "legacy", name: "tls13-client", min: tls.VersionTLS13, max: tls.VersionTLS13, wantOK: true},
		{profile: "modern", name: "tls10-client-refused", min: tls.VersionTLS10, max: tls.VersionTLS10, suites: rsaKex},
		{profile: "modern", name: "tls12-client-rsa-kex-only-refused", min: tls.VersionTLS12, max: tls.VersionTLS12, suites: rsaKex},
	}
	addrs := map[string]string{}
	for _, p := range []string{ProfileLegacy, ProfileModern} {
		cfg, err := TLSConfig(p, cert)
		if err != nil {
			t.Fatal(err)
		}
		addrs[p] = tlsEcho(t, cfg)
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tt.min, MaxVersion: tt.max, CipherSuites: tt.suites}}
			c, err := d.DialContext(ctx, "tcp", addrs[tt.profile])
			if !tt.wantOK {
				if err == nil {
					st := c.(*tls.Conn).ConnectionState()
					c.Close()
					t.Fatalf("handshake succeeded with %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			st := c.(*tls.Conn).ConnectionState()
			if tt.wantSuite != nil && !tt.wantSuite(st.CipherSuite) {
				t.Errorf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

// TestLegacyProfileOpenSSL checks the same with openssl s_client, the
// client an administrator probes with: TLS 1.2 with RSA key exchange only
// is refused, TLS 1.0 with it is served.
func TestLegacyProfileOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	cert := rsaCert(t)
	cfg, err := TLSConfig(ProfileLegacy, cert)
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsEcho(t, cfg)
	tests := []struct {
		name   string
		args   []string
		wantOK bool
	}{
		{name: "tls12-rsa-kex-refused", args: []string{"-tls1_2", "-cipher", "AES128-SHA:AES256-SHA:AES128-GCM-SHA256"}},
		{name: "tls10-rsa-kex-served", args: []string{"-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"}, wantOK: true},
		{name: "tls12-ecdhe-served", args: []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"s_client", "-connect", addr, "-brief"}, tt.args...)
			cmd := exec.CommandContext(ctx, "openssl", args...)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			ok := err == nil && strings.Contains(string(out), "CONNECTION ESTABLISHED")
			if ok != tt.wantOK {
				t.Errorf("openssl %s: established %v, want %v\n%s", strings.Join(tt.args, " "), ok, tt.wantOK, out)
			}
		})
	}
}
