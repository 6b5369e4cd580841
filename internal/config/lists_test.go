package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/server"
)

// The name lists of this package are the source for help and validation;
// these tests hold them equal to the packages that implement the names,
// which config may not import.

func TestPhoneKeysAreDeviceKeySpecs(t *testing.T) {
	for _, k := range PhoneKeys {
		got, err := device.ParseKeySpec(k)
		if err != nil || string(got) != k {
			t.Errorf("device.ParseKeySpec(%q) = %q, %v; want it accepted as is", k, got, err)
		}
	}
	all := []device.KeySpec{device.RSA512, device.RSA1024, device.RSA2048, device.RSA3072, device.RSA4096, device.EC256, device.EC384, device.EC521}
	for _, k := range all {
		if !slices.Contains(PhoneKeys, string(k)) {
			t.Errorf("device key %q missing from PhoneKeys", k)
		}
	}
	_, err := device.ParseKeySpec("dsa1024")
	if err == nil || !strings.Contains(err.Error(), Choices(PhoneKeys)) {
		t.Errorf("device.ParseKeySpec error %v does not list %s", err, Choices(PhoneKeys))
	}
}

func TestCAPFKeysAreCAKeyAlgorithms(t *testing.T) {
	for _, k := range CAPFKeys {
		got, err := ca.ParseKeyAlgorithm(k)
		if err != nil || string(got) != k {
			t.Errorf("ca.ParseKeyAlgorithm(%q) = %q, %v; want it accepted as is", k, got, err)
		}
	}
	for _, k := range []ca.KeyAlgorithm{ca.RSA2048, ca.RSA3072, ca.RSA4096, ca.ECP256, ca.ECP384} {
		if !slices.Contains(CAPFKeys, string(k)) {
			t.Errorf("CAPF key %q missing from CAPFKeys", k)
		}
	}
	if _, err := ca.ParseKeyAlgorithm("ec521"); err == nil {
		t.Error("ca.ParseKeyAlgorithm accepts ec521, which CAPFKeys leaves out")
	}
}

func TestTLSProfilesAreServerProfiles(t *testing.T) {
	for _, p := range TLSProfiles {
		if _, err := server.TLSConfig(p, tls.Certificate{}); err != nil {
			t.Errorf("server.TLSConfig(%q): %v", p, err)
		}
	}
	for _, p := range []string{server.ProfileModern, server.ProfileLegacy} {
		if !slices.Contains(TLSProfiles, p) {
			t.Errorf("server profile %q missing from TLSProfiles", p)
		}
	}
	if _, err := server.TLSConfig("medieval", tls.Certificate{}); err == nil {
		t.Error("server.TLSConfig accepts an unknown profile")
	}
}
