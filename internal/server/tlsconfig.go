package server

import (
	"crypto/tls"
	"fmt"
)

// Profile names accepted by TLSConfig.
const (
	ProfileModern = "modern"
	ProfileLegacy = "legacy"
)

var modernSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// legacySuites is what 79xx-era phones speak, offered only to clients that
// cannot do TLS 1.2: CBC suites for TLS 1.0/1.1 and, since those phones know
// no ECDHE, plain RSA key exchange (no forward secrecy). Go leaves RSA key
// exchange out of its defaults, so the list is explicit.
var legacySuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// TLSConfig returns the server TLS configuration for a profile: "modern"
// (TLS 1.2 and 1.3, ECDHE only) or "legacy" (adds TLS 1.0/1.1 for older
// phones). Under legacy the suites are chosen per ClientHello: a client that
// offers TLS 1.2 or later gets the modern suites, so RSA key exchange and
// CBC are offered only to clients that can do nothing better. No client
// certificate is asked for: phones authenticate inside the CAPF protocol.
func TLSConfig(profile string, cert tls.Certificate) (*tls.Config, error) {
	return tlsConfig(profile, &tls.Config{Certificates: []tls.Certificate{cert}})
}

// TLSConfigFunc is TLSConfig with the certificate given at each handshake
// by get (tls.Config.GetCertificate): a server whose CAPF certificate
// changes while it runs presents the new one from the next handshake on.
func TLSConfigFunc(profile string, get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) (*tls.Config, error) {
	return tlsConfig(profile, &tls.Config{GetCertificate: get})
}

// tlsConfig completes c, which gives the certificate, for profile.
func tlsConfig(profile string, c *tls.Config) (*tls.Config, error) {
	c.ClientAuth = tls.NoClientCert
	// One message, one TLS record: a softphone reads each message with a
	// single read, and dynamic sizing would split the first large ones.
	c.DynamicRecordSizingDisabled = true
	// Classical ECDHE only. Phones do not offer the post-quantum hybrid
	// (X25519MLKEM768), which costs a softphone handshake several times
	// the CPU of X25519; what crosses a CAPF session is public keys and
	// certificates plus a single-use authentication string.
	c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	switch profile {
	case ProfileModern, "":
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = modernSuites
	case ProfileLegacy:
		modern := c.Clone()
		modern.MinVersion = tls.VersionTLS12
		modern.CipherSuites = modernSuites
		old := c.Clone()
		old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		old.CipherSuites = legacySuites
		c.MinVersion = tls.VersionTLS10
		c.CipherSuites = modernSuites
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			return suitesFor(hello.SupportedVersions, modern, old), nil
		}
	default:
		return nil, fmt.Errorf("tls profile %q: want modern or legacy", profile)
	}
	return c, nil
}

// suitesFor picks the legacy profile's configuration for a client that
// supports versions: modern when it offers TLS 1.2 or later, old otherwise.
// (For a ClientHello without the supported_versions extension, crypto/tls
// fills in every version up to the one the client advertises.) GREASE
// values (0x?a?a, RFC 8701) say nothing and are skipped.
func suitesFor(versions []uint16, modern, old *tls.Config) *tls.Config {
	for _, v := range versions {
		if v >= tls.VersionTLS12 && v&0x0f0f != 0x0a0a {
			return modern
		}
	}
	return old
}
