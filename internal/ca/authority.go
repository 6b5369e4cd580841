package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/certserial"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
)

// KeyAlgorithm names the type and size of the CAPF key.
type KeyAlgorithm string

// The CAPF key algorithms.
const (
	RSA2048 KeyAlgorithm = "rsa2048" // RSA, 2048-bit modulus (the default)
	RSA3072 KeyAlgorithm = "rsa3072" // RSA, 3072-bit modulus
	RSA4096 KeyAlgorithm = "rsa4096" // RSA, 4096-bit modulus
	ECP256  KeyAlgorithm = "ec256"   // ECDSA on NIST P-256
	ECP384  KeyAlgorithm = "ec384"   // ECDSA on NIST P-384
)

// ParseKeyAlgorithm returns the KeyAlgorithm named by s (case-insensitive,
// surrounding spaces ignored).
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	switch k := KeyAlgorithm(strings.ToLower(strings.TrimSpace(s))); k {
	case RSA2048, RSA3072, RSA4096, ECP256, ECP384:
		return k, nil
	}
	return "", fault.Invalidf("unknown CAPF key algorithm %q: want one of rsa2048, rsa3072, rsa4096, ec256, ec384", s)
}

// generate makes a new private key of algorithm k.
func (k KeyAlgorithm) generate(r io.Reader) (crypto.Signer, error) {
	switch k {
	case RSA2048:
		return rsa.GenerateKey(r, 2048)
	case RSA3072:
		return rsa.GenerateKey(r, 3072)
	case RSA4096:
		return rsa.GenerateKey(r, 4096)
	case ECP256:
		return ecdsa.GenerateKey(elliptic.P256(), r)
	case ECP384:
		return ecdsa.GenerateKey(elliptic.P384(), r)
	}
	return nil, fault.Invalidf("unknown CAPF key algorithm %q", string(k))
}

// File names inside Options.Dir.
const (
	KeyFile  = "capf.key" // the CAPF private key, PKCS#8 PEM, mode 0600
	CertFile = "capf.pem" // the CAPF certificate, PEM
)

// DefaultLSCValidity is the validity of an issued LSC when
// Options.LSCValidity is zero: five years of 365 days.
const DefaultLSCValidity = 5 * 365 * 24 * time.Hour

// Options configures LoadOrCreate and Load.
type Options struct {
	// Dir holds capf.key and capf.pem. It is created with mode 0700 if it
	// does not exist.
	Dir string
	// KeyAlgorithm is the type of key generated when the CAPF certificate
	// is created; it is ignored when loading. Default RSA2048.
	KeyAlgorithm KeyAlgorithm
	// Subject is the subject of the CAPF certificate when it is created;
	// ignored when loading. The zero value means CN "CAPF-" followed by 8
	// random hex digits, O "CAPF", OU "VOICE"; a subject without a common
	// name gets the generated CN.
	Subject pkix.Name
	// Validity is the lifetime of the CAPF certificate when it is created.
	// Zero means five calendar years.
	Validity time.Duration
	// LSCValidity is the lifetime of issued LSCs. Zero means
	// DefaultLSCValidity.
	LSCValidity time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of randomness for serial numbers, the generated
	// subject and signatures; nil means crypto/rand.Reader. (Since Go 1.26
	// the standard library ignores it for key generation and signing unless
	// GODEBUG=cryptocustomrand=1; serials and the subject always use it.)
	Rand io.Reader
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, fault.Invalidf("CAPF certificate directory not set")
	}
	if o.KeyAlgorithm == "" {
		o.KeyAlgorithm = RSA2048
	}
	if o.LSCValidity == 0 {
		o.LSCValidity = DefaultLSCValidity
	}
	if o.Validity < 0 || o.LSCValidity < 0 {
		return o, fault.Invalidf("certificate validity must be positive")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o, nil
}

// Authority is the CAPF: its certificate and private key, and the LSC
// issuance that uses them. It is safe for concurrent use.
type Authority struct {
	cert        *x509.Certificate
	certPEM     []byte
	key         crypto.Signer
	roots       *x509.CertPool
	issuers     []*x509.Certificate // further LSC trust anchors (IssuersFile)
	chain       [][]byte            // DER of the certificates above cert sent on TLS (SetChain)
	sigAlg      x509.SignatureAlgorithm
	now         func() time.Time
	rand        io.Reader
	lscValidity atomic.Int64 // time.Duration
}

// LoadOrCreate loads the CAPF key and certificate from opts.Dir, or creates
// them if neither file exists; created reports which happened. If only one
// of the two files exists it returns an error rather than overwrite it.
func LoadOrCreate(opts Options) (a *Authority, created bool, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, false, err
	}
	keyOK, certOK, err := present(opts.Dir)
	if err != nil {
		return nil, false, err
	}
	switch {
	case keyOK && certOK:
		a, err = load(opts)
		return a, false, err
	case keyOK || certOK:
		return nil, false, onlyOne(opts.Dir, keyOK)
	}
	a, err = create(opts)
	if err != nil {
		return nil, false, err
	}
	return a, true, nil
}

// Load loads the CAPF key and certificate from opts.Dir. It returns a
// fault.NotFound error when neither file exists, and never creates anything.
func Load(opts Options) (*Authority, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	keyOK, certOK, err := present(opts.Dir)
	if err != nil {
		return nil, err
	}
	switch {
	case !keyOK && !certOK:
		return nil, fault.NotFoundf("no CAPF certificate in %s; start `capf serve` once to create it", opts.Dir)
	case !keyOK || !certOK:
		return nil, onlyOne(opts.Dir, keyOK)
	}
	return load(opts)
}

// present reports which of the two files exist in dir.
func present(dir string) (key, cert bool, err error) {
	exists := func(name string) (bool, error) {
		_, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		}
		return false, fmt.Errorf("ca: %w", err)
	}
	if key, err = exists(KeyFile); err != nil {
		return false, false, err
	}
	cert, err = exists(CertFile)
	return key, cert, err
}

func onlyOne(dir string, keyExists bool) error {
	have, missing := CertFile, KeyFile
	if keyExists {
		have, missing = KeyFile, CertFile
	}
	return fault.Conflictf("%s exists in %s but %s does not; refusing to overwrite it: restore %s, or move %s away to create a new CAPF certificate",
		have, dir, missing, missing, have)
}

// load reads and checks the two files.
func load(opts Options) (*Authority, error) {
	keyPath, certPath := filepath.Join(opts.Dir, KeyFile), filepath.Join(opts.Dir, CertFile)
	if err := checkKeyMode(keyPath); err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("ca: read CAPF key: %w", err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("ca: read CAPF certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", keyPath, err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", certPath, err)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fault.Invalidf("the CAPF key %s does not match the public key of the certificate %s", keyPath, certPath)
	}
	issuers, err := readLSCIssuers(opts.Dir)
	if err != nil {
		return nil, err
	}
	a, err := newAuthority(cert, key, opts)
	if err != nil {
		return nil, err
	}
	a.TrustLSCIssuers(issuers...)
	return a, nil
}

// checkKeyMode refuses a CAPF key that group or others may read or write:
// whoever holds it can issue LSCs every phone trusts. It is not fixed
// silently, because a key that was exposed may have been copied; the
// administrator decides (chmod it, or replace the CAPF certificate).
// Windows has no such mode bits and is not checked.
func checkKeyMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("ca: CAPF key: %w", err)
	}
	if m := st.Mode().Perm(); m&0o077 != 0 {
		return fault.Invalidf("the CAPF key %s is accessible by group or others (mode %04o); refusing to use it: run `chmod 600 %s` (and replace the CAPF certificate if others may have copied it)", path, m, path)
	}
	return nil
}

// parseKeyPEM returns the first private key in data: PKCS#8, or PKCS#1 and
// SEC 1 for keys imported from elsewhere (see keyref.ParsePEM).
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	return keyref.ParsePEM(data)
}

// parseCertPEM returns the first certificate in data.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fault.Invalidf("no PEM certificate found")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fault.Invalidf("bad certificate: %v", err)
		}
		return c, nil
	}
}

// Generate makes a new CAPF key and self-signed CA certificate in memory,
// as LoadOrCreate does on first start, and writes nothing: for keys kept
// elsewhere than in files (see package keys). opts.Dir is not used.
func Generate(opts Options) (*Authority, error) {
	if opts.Dir == "" {
		opts.Dir = "-"
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cert, key, err := generate(opts)
	if err != nil {
		return nil, err
	}
	return newAuthority(cert, key, opts)
}

// New assembles an Authority from a CAPF certificate and its private key
// kept elsewhere than in files (see package keys); the key must match the
// certificate. opts.Dir, KeyAlgorithm, Subject and Validity are not used.
func New(cert *x509.Certificate, key crypto.Signer, opts Options) (*Authority, error) {
	if opts.Dir == "" {
		opts.Dir = "-"
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if cert == nil || key == nil {
		return nil, fault.Invalidf("the CAPF certificate and its key are both needed")
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fault.Invalidf("the CAPF key does not match the public key of the certificate %s", cert.Subject)
	}
	if !cert.IsCA {
		return nil, fault.Invalidf("the CAPF certificate %s is not a CA certificate", cert.Subject)
	}
	return newAuthority(cert, key, opts)
}

// create generates a key and a self-signed CA certificate and writes both.
func create(opts Options) (*Authority, error) {
	cert, key, err := generate(opts)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encode CAPF key: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	// The key first: a crash between the two writes leaves a key without a
	// certificate, which LoadOrCreate refuses rather than overwrites.
	if err := atomicfile.Write(filepath.Join(opts.Dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, false); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(filepath.Join(opts.Dir, CertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644, false); err != nil {
		return nil, err
	}
	return newAuthority(cert, key, opts)
}

// generate makes a key and a self-signed CA certificate.
func generate(opts Options) (*x509.Certificate, crypto.Signer, error) {
	key, err := opts.KeyAlgorithm.generate(opts.Rand)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate CAPF key: %w", err)
	}
	cert, err := selfSign(opts, key)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// SelfSign makes a self-signed CAPF certificate for key, a key kept
// elsewhere (a PKCS #11 token) that signs it: the same certificate a
// generated key gets (opts.Subject, opts.Validity; KeyAlgorithm and Dir
// are not used).
func SelfSign(key crypto.Signer, opts Options) (*x509.Certificate, error) {
	opts.Dir = "-"
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return selfSign(opts, key)
}

// selfSign makes the self-signed CAPF certificate of key.
func selfSign(opts Options, key crypto.Signer) (*x509.Certificate, error) {
	sigAlg, err := signatureAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	subject, err := caSubject(opts.Subject, opts.Rand)
	if err != nil {
		return nil, err
	}
	serial, err := certserial.New(opts.Rand)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	now := opts.Now()
	notAfter := now.AddDate(5, 0, 0)
	if opts.Validity > 0 {
		notAfter = now.Add(opts.Validity)
	}
	usage := x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
	if _, isRSA := key.Public().(*rsa.PublicKey); isRSA {
		// Old phones only do TLS with RSA key exchange, which encrypts the
		// premaster secret to this certificate's key.
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     usage,
		// serverAuth for the CAPF's own TLS role. Verifiers (Go, OpenSSL
		// with a purpose, Windows) also read a CA's extended key usage as
		// a limit on the certificates below it, so the LSC usages are
		// listed too; with serverAuth alone, LSCs would not verify as
		// client certificates (SIP-TLS, 802.1X).
		ExtKeyUsage:           lscExtKeyUsage,
		BasicConstraintsValid: true, // Go marks basic constraints critical
		IsCA:                  true,
		// Path length 1: room for one issuing CA below it (capf ca issuer
		// create; ADR 0017), none below that. CAPF certificates made
		// before had 0 and stay valid: they only cannot sign an issuing CA.
		MaxPathLen:         1,
		SubjectKeyId:       ski,
		SignatureAlgorithm: sigAlg,
	}
	der, err := x509.CreateCertificate(opts.Rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign CAPF certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse new CAPF certificate: %w", err)
	}
	return cert, nil
}

// caSubject fills in the default CAPF subject.
func caSubject(s pkix.Name, r io.Reader) (pkix.Name, error) {
	if s.CommonName != "" {
		return s, nil
	}
	if s.String() == "" {
		s.Organization = []string{"CAPF"}
		s.OrganizationalUnit = []string{"VOICE"}
	}
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return s, fmt.Errorf("ca: random subject: %w", err)
	}
	s.CommonName = "CAPF-" + hex.EncodeToString(b[:])
	return s, nil
}

// newAuthority assembles an Authority around a loaded or created pair.
func newAuthority(cert *x509.Certificate, key crypto.Signer, opts Options) (*Authority, error) {
	sigAlg, err := signatureAlgorithm(key.Public())
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	a := &Authority{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:     key,
		roots:   roots,
		sigAlg:  sigAlg,
		now:     opts.Now,
		rand:    opts.Rand,
	}
	a.lscValidity.Store(int64(opts.LSCValidity))
	return a, nil
}

// signatureAlgorithm picks the signature algorithm for a CAPF key: SHA-256
// with RSA, or ECDSA with the hash that matches the curve.
func signatureAlgorithm(pub crypto.PublicKey) (x509.SignatureAlgorithm, error) {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA, nil
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return x509.ECDSAWithSHA256, nil
		case elliptic.P384():
			return x509.ECDSAWithSHA384, nil
		case elliptic.P521():
			return x509.ECDSAWithSHA512, nil
		}
		return 0, fault.Invalidf("unsupported CAPF key curve %s", pub.Curve.Params().Name)
	}
	return 0, fault.Invalidf("unsupported CAPF key type %T: want RSA or ECDSA", pub)
}

// subjectKeyID computes a key identifier by method (1) of RFC 5280 section
// 4.2.1.2: the SHA-1 hash of the subjectPublicKey BIT STRING.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: encode public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("ca: decode public key: %w", err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:], nil
}

// Certificate returns the CAPF certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// CertificatePEM returns the CAPF certificate PEM-encoded.
func (a *Authority) CertificatePEM() []byte { return append([]byte(nil), a.certPEM...) }

// Signer returns the CAPF private key as a crypto.Signer.
func (a *Authority) Signer() crypto.Signer { return a.key }

// TLSCertificate returns the CAPF certificate and key for the TLS listener,
// with Leaf set.
func (a *Authority) TLSCertificate() tls.Certificate {
	return tls.Certificate{
		Certificate: append([][]byte{a.cert.Raw}, a.chain...),
		PrivateKey:  a.key,
		Leaf:        a.cert,
	}
}

// Roots returns a new pool holding the CAPF certificate: the trust anchor
// for verifying the LSCs it issued.
func (a *Authority) Roots() *x509.CertPool { return a.roots.Clone() }

// SetLSCValidity changes the lifetime of LSCs issued from now on. A value
// of zero or less restores DefaultLSCValidity.
func (a *Authority) SetLSCValidity(d time.Duration) {
	if d <= 0 {
		d = DefaultLSCValidity
	}
	a.lscValidity.Store(int64(d))
}

// LSCValidity returns the lifetime of LSCs issued now.
func (a *Authority) LSCValidity() time.Duration { return time.Duration(a.lscValidity.Load()) }
