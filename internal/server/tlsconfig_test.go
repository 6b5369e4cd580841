package server

import (
	"crypto/tls"
	"slices"
	"testing"
)

func TestTLSConfig(t *testing.T) {
	tests := []struct {
		profile    string
		minVersion uint16
		rsaKex     bool
		wantErr    bool
	}{
		{profile: "modern", minVersion: tls.VersionTLS12},
		{profile: "", minVersion: tls.VersionTLS12},
		{profile: "legacy", minVersion: tls.VersionTLS10, rsaKex: true},
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
			if got := slices.Contains(c.CipherSuites, tls.TLS_RSA_WITH_AES_128_CBC_SHA); got != tt.rsaKex {
				t.Errorf("RSA key exchange offered: %v, want %v", got, tt.rsaKex)
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
