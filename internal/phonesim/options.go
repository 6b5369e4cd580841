package phonesim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// AuthMode is how the phone authenticates, as set by capfAuthMode in its
// configuration file.
type AuthMode string

// The authentication modes (capfAuthMode 1 to 4).
const (
	AuthModeString AuthMode = "string" // capfAuthMode 1: PASSWORD carries the authentication string
	AuthModeNull   AuthMode = "null"   // capfAuthMode 2: PASSWORD is empty, just the NUL
	AuthModeLSC    AuthMode = "lsc"    // capfAuthMode 3: present the LSC if the phone has one, else the MIC
	AuthModeMIC    AuthMode = "mic"    // capfAuthMode 4: present the MIC if the phone has one, else the LSC
)

// ParseAuthMode returns the mode named s ("string", "null", "lsc" or
// "lsc-then-mic", or "mic").
func ParseAuthMode(s string) (AuthMode, error) {
	switch m := AuthMode(strings.ToLower(s)); m {
	case AuthModeString, AuthModeNull, AuthModeLSC, AuthModeMIC:
		return m, nil
	case "lsc-then-mic":
		return AuthModeLSC, nil
	}
	return "", fmt.Errorf("unknown authentication mode %q (want string, null, lsc (lsc-then-mic) or mic)", s)
}

// KeySpec is the key pair a KEY_GENERATE_REQUEST asks for.
type KeySpec struct {
	Type  wire.KeyType
	Bits  int        // RSA modulus size; 0 for EC
	Curve wire.Curve // EC only
}

// String describes the key, e.g. "RSA-2048" or "EC-P-256".
func (s KeySpec) String() string {
	if s.Type == wire.KeyRSA {
		return fmt.Sprintf("RSA-%d", s.Bits)
	}
	return fmt.Sprintf("%s-%s", s.Type, s.Curve)
}

// KeyGenFunc makes a key pair for a KEY_GENERATE_REQUEST. It runs on its
// own goroutine while the phone reports progress; a function shared by
// concurrent runs must be safe for concurrent use.
type KeyGenFunc func(ctx context.Context, spec KeySpec) (crypto.Signer, error)

// MaxRSABits is the largest RSA key [GenerateKey] makes, as on the phones.
const MaxRSABits = 4096

// GenerateKey is the default [KeyGenFunc]: a fresh key from crypto/rand.
// RSA keys smaller than Go allows (1024 bits) or larger than [MaxRSABits]
// fail, and so does an unknown key type or curve; the phone then answers
// that key generation failed.
func GenerateKey(_ context.Context, spec KeySpec) (crypto.Signer, error) {
	switch spec.Type {
	case wire.KeyRSA:
		if spec.Bits <= 0 || spec.Bits > MaxRSABits {
			return nil, fmt.Errorf("unsupported RSA key size %d", spec.Bits)
		}
		return rsa.GenerateKey(rand.Reader, spec.Bits)
	case wire.KeyEC:
		c, err := ellipticCurve(spec.Curve)
		if err != nil {
			return nil, err
		}
		return ecdsa.GenerateKey(c, rand.Reader)
	}
	return nil, fmt.Errorf("unsupported key type %s", spec.Type)
}

func ellipticCurve(c wire.Curve) (elliptic.Curve, error) {
	switch c {
	case wire.CurveP256:
		return elliptic.P256(), nil
	case wire.CurveP384:
		return elliptic.P384(), nil
	case wire.CurveP521:
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("unsupported curve %s", c)
}

// Options configures one simulated phone. The zero value of every field but
// Server (or Servers), Trust and DeviceName is a usable default.
type Options struct {
	// Server is the CAPF address, host:port: a capfList of one.
	Server string
	// Servers is the phone's capfList: up to [MaxServers] CAPF addresses,
	// host:port, tried in order (see [Run]). Server and Servers exclude
	// each other; [ParseServerList] reads the list as an administrator
	// writes it.
	Servers []string
	// Trust holds the CAPF certificate(s) from the phone's CTL/ITL. The TLS
	// server is trusted if its leaf certificate equals one of them or chains
	// to one. The host name is not checked, as phones do not.
	Trust []*x509.Certificate

	// DeviceName is sent as DEVICE_NAME, e.g. SEP58971ECC97C1 or CSFJDOE.
	// It is not validated beyond being non-empty, so that a server can be
	// tested with bad names.
	DeviceName string
	// AuthMode is how the phone authenticates. Empty means: string if
	// AuthString is set, else mic if MIC is set, else lsc if LSC is set or
	// the state directory holds an LSC, else null.
	AuthMode AuthMode
	// AuthString is the authentication string the user typed (digits).
	AuthString string

	// StateDir is the phone's flash: lsc.pem and lsc-key.pem (its LSC),
	// mic.pem and mic-key.pem (its MIC), sudi.pem and sudi-key.pem (its
	// SUDI) and pending-key.pem (the key pair being enrolled). Empty keeps
	// the state in memory for this run only.
	StateDir string
	// LSC, when set, is installed in the state before the run, as if an
	// earlier enrolment had stored it.
	LSC *Credential
	// MIC is the manufacturer-installed certificate and key. When nil, a
	// MIC saved in the state directory by an earlier run is used.
	MIC *Credential
	// SUDI is the Secure Unique Device Identifier credential; when set (or
	// saved in the state directory) the phone sends SUDI_DATA.
	SUDI *Credential

	// SendAuthType adds AUTH_TYPE to AUTH_RESPONSE. Phones never send it
	// and a strict server refuses it; it exists for compatibility
	// experiments only.
	SendAuthType bool

	// Version is the VERSION the phone announces; 0 means 2 for softphone
	// names (CSF, BOT, TCT, TAB) and 3 otherwise.
	Version uint8
	// SingleRead reads every server message with one Read of at most 4096
	// bytes and fails if that is not exactly one complete message, as one
	// softphone does; it catches servers that split a message across
	// writes or TLS records. It is on by default for softphone names.
	SingleRead bool
	// FramedReads turns the softphone default of SingleRead off.
	FramedReads bool

	// KeygenDelay is how long key generation takes at least (old phones take
	// minutes). While generating, the phone sends REQUEST_IN_PROGRESS every
	// ProgressInterval; 0 sends none.
	KeygenDelay      time.Duration
	ProgressInterval time.Duration
	// KeyGen makes key pairs; nil means [GenerateKey]. A benchmark can
	// hand out pre-generated keys.
	KeyGen KeyGenFunc

	// Retries is how many more sessions the phone tries after a
	// communication failure or a RETRY_LATER: 0 means 3, negative means
	// none. RetryInterval is the wait between them (0 means 30 s); a
	// RETRY_LATER with a RETRY_DELAY waits that long instead.
	Retries       int
	RetryInterval time.Duration
	// MessageTimeout bounds the wait for each server message, each write,
	// the TCP connect and the TLS handshake; 0 means 60 s.
	MessageTimeout time.Duration
	// LocalAddr is the source IP address to connect from, e.g. "127.3.4.5"
	// (the port is chosen by the system). Empty lets the system choose. A
	// load test spreads phones over many loopback addresses with it, as
	// real phones come from many addresses.
	LocalAddr string

	// MinVersion, MaxVersion and CipherSuites override the TLS defaults
	// (TLS 1.2 or later, Go's default suites). To act like an old 79xx
	// phone set MinVersion and MaxVersion to tls.VersionTLS10 and
	// CipherSuites to [LegacyCipherSuites].
	MinVersion   uint16
	MaxVersion   uint16
	CipherSuites []uint16

	// FailKeygen answers the first N KEY_GENERATE_REQUESTs of the run with
	// REASON 7 and no PUBLIC_KEY.
	FailKeygen int
	// DisconnectOnStore closes the connection without answering the first
	// N STORE_CERTIFICATE_REQUESTs of the run (a communication failure, so
	// the phone retries).
	DisconnectOnStore int
	// RefuseStore answers every STORE_CERTIFICATE_REQUEST with REASON 7.
	RefuseStore bool
	// DisconnectAfterAuth closes the connection right after AUTH_RESPONSE,
	// as a phone losing power would; the run then ends with [ErrFault]
	// and is not retried.
	DisconnectAfterAuth bool

	// Logger receives a debug line per message and warnings; nil discards.
	Logger *slog.Logger
}

// Defaults of the phone.
const (
	DefaultVersion        = 3
	SoftphoneVersion      = 2
	DefaultRetries        = 3
	DefaultRetryInterval  = 30 * time.Second
	DefaultMessageTimeout = 60 * time.Second
	DefaultRSABits        = 2048
	singleReadSize        = 4096
)

// IsSoftphone reports whether a device name is one of a Cisco softphone
// (Jabber CSF, BOT, TCT, TAB).
func IsSoftphone(deviceName string) bool {
	n := strings.ToUpper(deviceName)
	for _, p := range []string{"CSF", "BOT", "TCT", "TAB"} {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// LegacyCipherSuites returns the RSA key-exchange suites that old phones
// (79x1, 79x5 and older) speak over TLS 1.0. Go leaves them out of its
// default list, so they must be named explicitly.
func LegacyCipherSuites() []uint16 {
	return []uint16{
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	}
}

// config is Options with defaults applied and checked.
type config struct {
	Options
	mode       AuthMode
	singleRead bool
	retries    int
	servers    []string     // the capfList: Server, or Servers
	localAddr  *net.TCPAddr // nil: any
}

func (o *Options) config() (*config, error) {
	c := &config{Options: *o}
	var errs []error
	switch {
	case c.Server != "" && len(c.Servers) > 0:
		errs = append(errs, errors.New("both Server and Servers are set: give the capfList in Servers only"))
	case c.Server != "":
		c.servers = []string{c.Server}
	case len(c.Servers) > MaxServers:
		errs = append(errs, fmt.Errorf("%d servers: a phone's capfList holds at most %d", len(c.Servers), MaxServers))
	case len(c.Servers) > 0:
		c.servers = slices.Clone(c.Servers)
	default:
		errs = append(errs, errors.New("no server address"))
	}
	for i, a := range c.servers {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("server %d %q: %v", i+1, bound(a), err))
		}
	}
	if len(c.Trust) == 0 {
		errs = append(errs, errors.New("no trusted CAPF certificate"))
	}
	if c.DeviceName == "" {
		errs = append(errs, errors.New("no device name"))
	}
	if c.LocalAddr != "" {
		ip := net.ParseIP(c.LocalAddr)
		if ip == nil {
			errs = append(errs, fmt.Errorf("local address %q is not an IP address", c.LocalAddr))
		}
		c.localAddr = &net.TCPAddr{IP: ip}
	}
	if c.AuthMode != "" {
		m, err := ParseAuthMode(string(c.AuthMode))
		if err != nil {
			errs = append(errs, err)
		}
		c.mode = m
	}
	if c.Version == 0 {
		c.Version = DefaultVersion
		if IsSoftphone(c.DeviceName) {
			c.Version = SoftphoneVersion
		}
	}
	c.singleRead = c.SingleRead || (IsSoftphone(c.DeviceName) && !c.FramedReads)
	switch {
	case c.Retries == 0:
		c.retries = DefaultRetries
	case c.Retries > 0:
		c.retries = c.Retries
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.MessageTimeout <= 0 {
		c.MessageTimeout = DefaultMessageTimeout
	}
	if c.KeyGen == nil {
		c.KeyGen = GenerateKey
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("phonesim: %w", err)
	}
	return c, nil
}

// tlsConfig returns the client TLS configuration: the server certificate is
// checked against Trust only (CTL semantics), never against a host name.
func (c *config) tlsConfig() *tls.Config {
	trust := c.Trust
	return &tls.Config{
		// Verification is done by VerifyConnection against the CTL.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyServer(cs.PeerCertificates, trust)
		},
		MinVersion:   c.MinVersion,
		MaxVersion:   c.MaxVersion,
		CipherSuites: c.CipherSuites,
	}
}

// verifyServer accepts a server whose leaf certificate is one of trust or
// chains to one of them (through the intermediates it sent).
func verifyServer(chain []*x509.Certificate, trust []*x509.Certificate) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no certificate presented", ErrUntrusted)
	}
	leaf := chain[0]
	roots := x509.NewCertPool()
	for _, t := range trust {
		if leaf.Equal(t) {
			return nil
		}
		roots.AddCert(t)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUntrusted, leaf.Subject, err)
	}
	return nil
}
