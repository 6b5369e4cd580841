package phonesim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// This file is a small scripted CAPF server for the tests. It knows nothing
// of the server packages: it speaks the protocol through wire only.

// testCA is a throwaway certificate authority: it signs the fake server's
// TLS certificate and the LSCs it issues.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial atomic.Int64

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// issue signs a leaf certificate for pub.
func (ca *testCA) issue(t *testing.T, cn string, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1) + 1000),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// credential issues a certificate for a new key of the given kind.
func (ca *testCA) credential(t *testing.T, cn string, rsaKey bool) *Credential {
	t.Helper()
	var key crypto.Signer = testRSAKey(t)
	if !rsaKey {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
	}
	return &Credential{Certificate: ca.issue(t, cn, key.Public()), Key: key}
}

// rsaKeys caches RSA keys: generating them is the slow part of these tests.
var rsaKeys = struct {
	sync.Mutex
	keys []*rsa.PrivateKey
	next int
}{}

// testRSAKey returns a 2048-bit RSA key, a different one for each of the
// first few calls of the test binary, then reused round robin.
func testRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	return cachedRSAKey()
}

func cachedRSAKey() *rsa.PrivateKey {
	rsaKeys.Lock()
	defer rsaKeys.Unlock()
	if len(rsaKeys.keys) < 4 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKeys.keys = append(rsaKeys.keys, k)
		return k
	}
	k := rsaKeys.keys[rsaKeys.next%len(rsaKeys.keys)]
	rsaKeys.next++
	return k
}

// fakeServer accepts TLS connections and runs script on each, with the
// connection's index (0 for the first).
type fakeServer struct {
	t       *testing.T
	ln      net.Listener
	ca      *testCA // issues LSCs and the server certificate
	tlsCert *x509.Certificate
	conns   atomic.Int32
	wg      sync.WaitGroup
	script  func(c *srvConn, n int)
	mu      sync.Mutex
	states  []tls.ConnectionState
}

type serverOpt func(*tls.Config, *fakeServer)

// withRSACert makes the server present an RSA certificate (needed for the
// TLS 1.0 RSA key-exchange suites).
func withRSACert() serverOpt {
	return func(cfg *tls.Config, s *fakeServer) {
		key := testRSAKey(s.t)
		cert := s.ca.issue(s.t, "CAPF-rsa", key.Public())
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{cert.Raw, s.ca.cert.Raw}, PrivateKey: key, Leaf: cert}}
		s.tlsCert = cert
	}
}

// withLegacyTLS limits the server to TLS 1.0 with RSA key exchange.
func withLegacyTLS() serverOpt {
	return func(cfg *tls.Config, _ *fakeServer) {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		cfg.CipherSuites = LegacyCipherSuites()
	}
}

func newFakeServer(t *testing.T, script func(c *srvConn, n int), opts ...serverOpt) *fakeServer {
	t.Helper()
	s := &fakeServer{t: t, ca: newTestCA(t, "CAPF-test"), script: script}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s.ca.issue(t, "CAPF-server", key.Public())
	s.tlsCert = leaf
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw, s.ca.cert.Raw}, PrivateKey: key, Leaf: leaf}},
		// A CAPF server must write each message in one TLS record.
		DynamicRecordSizingDisabled: true,
	}
	for _, o := range opts {
		o(cfg, s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = tls.NewListener(ln, cfg)
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		s.ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// sessions returns the number of connections accepted.
func (s *fakeServer) sessions() int { return int(s.conns.Load()) }

func (s *fakeServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		n := int(s.conns.Add(1)) - 1
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			c := &srvConn{t: s.t, conn: conn.(*tls.Conn), id: 0x5E55_0000 + uint32(n), srv: s}
			defer conn.Close()
			defer func() {
				if r := recover(); r != nil && r != errAbort {
					panic(r)
				}
			}()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if err := c.conn.Handshake(); err != nil {
				return // the phone refused us, or we it
			}
			s.mu.Lock()
			s.states = append(s.states, c.conn.ConnectionState())
			s.mu.Unlock()
			s.script(c, n)
		}()
	}
}

var errAbort = errors.New("script aborted")

// srvConn is the server end of one session.
type srvConn struct {
	t    *testing.T
	conn *tls.Conn
	id   uint32
	srv  *fakeServer
}

// fail reports a test failure and ends the script.
func (c *srvConn) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("fake server: "+format, args...)
	panic(errAbort)
}

// msg returns a new message in this session.
func (c *srvConn) msg(cmd wire.Command) *wire.Message { return wire.New(cmd, c.id) }

// send writes m in one write.
func (c *srvConn) send(m *wire.Message) {
	c.t.Helper()
	b, err := m.Encode()
	if err != nil {
		c.fail("encode: %v", err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.fail("write %s: %v", m.Command, err)
	}
}

// sendRaw writes b as it is.
func (c *srvConn) sendRaw(b []byte) {
	c.t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		c.fail("write: %v", err)
	}
}

// recv reads one message; a read error is returned, a malformed message
// fails the test.
func (c *srvConn) recv() (*wire.Message, error) {
	c.t.Helper()
	frame, err := wire.ReadFrame(c.conn, nil, wire.MaxPayloadLen)
	if err != nil {
		return nil, err
	}
	m, err := wire.Decode(frame)
	if err != nil {
		c.fail("phone sent a malformed message: %v", err)
	}
	if m.SessionID != c.id {
		c.fail("%s carries session id %08x, want %08x", m.Command, m.SessionID, c.id)
	}
	return m, nil
}

// expect reads one message and requires its command.
func (c *srvConn) expect(cmd wire.Command) *wire.Message {
	c.t.Helper()
	m, err := c.recv()
	if err != nil {
		c.fail("waiting for %s: %v", cmd, err)
	}
	if m.Command != cmd {
		c.fail("got %s, want %s", m.Command, cmd)
	}
	return m
}

// expectEOF requires the phone to close the connection.
func (c *srvConn) expectEOF() {
	c.t.Helper()
	m, err := c.recv()
	if err == nil {
		c.fail("got %s, want the connection closed", m.Command)
	}
}

// auth sends AUTH_REQUEST and returns the AUTH_RESPONSE.
func (c *srvConn) auth() *wire.Message {
	c.t.Helper()
	c.send(c.msg(wire.CmdAuthRequest).AddUint8(wire.TagVersion, 3))
	return c.expect(wire.CmdAuthResponse)
}

// end sends END_SESSION with reason.
func (c *srvConn) end(reason wire.Reason) {
	c.t.Helper()
	c.send(c.msg(wire.CmdEndSession).AddUint8(wire.TagReason, uint8(reason)))
}

// keygen sends a KEY_GENERATE_REQUEST and returns the parsed public key of
// the response (nil with the response's reason when the phone failed).
func (c *srvConn) keygen(req *wire.Message) (crypto.PublicKey, *wire.Message) {
	c.t.Helper()
	c.send(req)
	for {
		m, err := c.recv()
		if err != nil {
			c.fail("waiting for KEY_GENERATE_RESPONSE: %v", err)
		}
		if m.Command == wire.CmdRequestInProgress {
			continue
		}
		if m.Command != wire.CmdKeyGenerateResponse {
			c.fail("got %s, want KEY_GENERATE_RESPONSE", m.Command)
		}
		der, ok := m.Get(wire.TagPublicKey)
		if !ok {
			return nil, m
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			c.fail("PUBLIC_KEY: %v", err)
		}
		return pub, m
	}
}

// install runs a whole install: key generation, issue, store, END_SESSION
// with the store's reason. It returns the issued certificate.
func (c *srvConn) install(name string, req *wire.Message) *x509.Certificate {
	c.t.Helper()
	pub, _ := c.keygen(req)
	if pub == nil {
		c.fail("key generation failed")
	}
	cert := c.srv.ca.issue(c.t, name, pub)
	c.send(c.msg(wire.CmdStoreCertificateRequest).
		AddUint8(wire.TagCertificateType, uint8(wire.CertLSC)).
		Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, cert.Raw)))
	resp := c.expect(wire.CmdStoreCertificateResponse)
	r, err := resp.Uint8(wire.TagReason)
	if err != nil {
		c.fail("STORE_CERTIFICATE_RESPONSE: %v", err)
	}
	c.end(wire.Reason(r))
	return cert
}
