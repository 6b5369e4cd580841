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

// legacySuites adds what 79xx-era phones speak: CBC suites for TLS 1.0 and,
// since those phones know no ECDHE, plain RSA key exchange. Go leaves RSA key
// exchange out of its defaults, so the list is explicit.
var legacySuites = append(append([]uint16{}, modernSuites...),
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
)

// TLSConfig returns the server TLS configuration for a profile: "modern"
// (TLS 1.2 and 1.3, ECDHE only) or "legacy" (adds TLS 1.0/1.1, CBC and RSA
// key-exchange suites for older phones). No client certificate is asked
// for: phones authenticate inside the CAPF protocol.
func TLSConfig(profile string, cert tls.Certificate) (*tls.Config, error) {
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.NoClientCert,
		// One message, one TLS record: a softphone reads each message with a
		// single read, and dynamic sizing would split the first large ones.
		DynamicRecordSizingDisabled: true,
		// Classical ECDHE only. Phones do not offer the post-quantum hybrid
		// (X25519MLKEM768), which costs a softphone handshake several times
		// the CPU of X25519; what crosses a CAPF session is public keys and
		// certificates plus a single-use authentication string.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384},
	}
	switch profile {
	case ProfileModern, "":
		c.MinVersion = tls.VersionTLS12
		c.CipherSuites = modernSuites
	case ProfileLegacy:
		c.MinVersion = tls.VersionTLS10
		c.CipherSuites = legacySuites
	default:
		return nil, fmt.Errorf("tls profile %q: want modern or legacy", profile)
	}
	return c, nil
}
