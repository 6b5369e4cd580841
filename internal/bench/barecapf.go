package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/phonesim"
	capfserver "github.com/capf-server/capf/internal/server"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/wire"
)

// ModeBareCAPF is the mode of a run against the bare CAPF server
// (Options.BareCAPF, [ServeBareCAPF]).
const ModeBareCAPF = "bare-capf"

// BareServerCommand is the hidden command of capf that runs
// [ServeBareCAPF] (the CLI registers it), which Options.BareCAPF spawns.
const BareServerCommand = "bench-bare-server"

// BareCAFile is the name of the CAPF certificate [ServeBareCAPF] writes in
// its directory, for the phones' trust.
const BareCAFile = "capf.pem"

// BareServerOptions configures [ServeBareCAPF].
type BareServerOptions struct {
	// Dir receives the CAPF certificate (BareCAFile).
	Dir string
	// Listen is the phone address, e.g. 127.0.0.1:0.
	Listen string
	// CAPFKey is the CAPF key algorithm (rsa2048, ec256, …).
	CAPFKey string
	// PhoneKey is the key KEY_GENERATE_REQUEST asks for (ec256, rsa2048,
	// …), as capf asks for the device's key.
	PhoneKey string
}

// ServeBareCAPF runs the reference server that docs/performance.md
// compares capf against, driven by the same simulated phones: the least
// work that answers a phone's install session. It does the TLS handshake
// with capf's TLS configuration (server.TLSConfig, profile modern),
// sends AUTH_REQUEST, reads AUTH_RESPONSE (the device name, nothing
// checked), asks for the phone's key, issues the LSC with capf's CA
// (ca.Issue, the validity of capf's default), sends it in
// STORE_CERTIFICATE_REQUEST and ends the session with success: the same
// messages and bytes as a capf session, without database, session state
// machine, authentication, admission limits or logging. It writes its
// CAPF certificate to o.Dir, prints "listening (phones): ADDR" on stdout
// as capf serve does, and serves until ctx ends. For measurement only:
// it authenticates no one.
func ServeBareCAPF(ctx context.Context, o BareServerOptions, stdout io.Writer) error {
	alg, err := ca.ParseKeyAlgorithm(o.CAPFKey)
	if err != nil {
		return fault.Invalidf("bare CAPF server: CAPF key: %v", err)
	}
	spec, err := phoneKeySpec(o.PhoneKey)
	if err != nil {
		return fault.Invalidf("bare CAPF server: phone key: %v", err)
	}
	auth, err := ca.Generate(ca.Options{KeyAlgorithm: alg})
	if err != nil {
		return fmt.Errorf("bare CAPF server: CA: %w", err)
	}
	cfg, err := capfserver.TLSConfig(capfserver.ProfileModern, auth.TLSCertificate())
	if err != nil {
		return fmt.Errorf("bare CAPF server: TLS: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: auth.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(o.Dir, BareCAFile), caPEM, 0o600); err != nil {
		return fmt.Errorf("bare CAPF server: %w", err)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("bare CAPF server: %w", err)
	}
	keyReq := wire.New(wire.CmdKeyGenerateRequest, 0).AddUint8(wire.TagKeyType, uint8(spec.Type))
	if spec.Type == wire.KeyRSA {
		keyReq.AddUint16(wire.TagKeySize, uint16(spec.Bits))
	} else {
		keyReq.AddUint8(wire.TagCurve, uint8(spec.Curve))
	}
	s := &bareCAPF{ln: ln, auth: auth, tls: cfg, keyReq: keyReq,
		validity: time.Duration(config.Defaults().CertificateValidityDays) * 24 * time.Hour}
	if _, err := fmt.Fprintf(stdout, "listening (phones): %s\n", ln.Addr()); err != nil {
		_ = ln.Close()
		return fmt.Errorf("bare CAPF server: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	s.serve()
	return nil
}

// bareCAPF is the state of [ServeBareCAPF]: no more than a session
// counter.
type bareCAPF struct {
	ln       net.Listener
	auth     *ca.Authority
	tls      *tls.Config
	keyReq   *wire.Message // KEY_GENERATE_REQUEST of session id 0
	validity time.Duration
	ids      atomic.Uint32
	wg       sync.WaitGroup
}

// serve accepts until the listener closes, each connection on its own
// goroutine, then waits for them.
func (s *bareCAPF) serve() {
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { _ = s.session(c) })
	}
}

// errBareUnexpected is a message out of the install session's order.
var errBareUnexpected = errors.New("unexpected message")

// session plays one install session on c: what capf sends, none of what
// it checks or records. The error is for tests; the server drops it.
func (s *bareCAPF) session(c net.Conn) error {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(bareTimeout))
	conn := tls.Server(c, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), bareTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		return err
	}
	id := s.ids.Add(1)
	buf := make([]byte, 0, 2048)
	send := func(m *wire.Message) error {
		b, err := m.Append(buf[:0])
		if err != nil {
			return err
		}
		buf = b[:0]
		_, err = conn.Write(b)
		return err
	}
	var rbuf []byte
	recv := func(want wire.Command) (*wire.Message, error) {
		frame, err := wire.ReadFrame(conn, rbuf, wire.MaxPayloadLen)
		if err != nil {
			return nil, err
		}
		rbuf = frame[:0]
		m, err := wire.Decode(frame)
		if err != nil {
			return nil, err
		}
		if m.Command != want || m.SessionID != id {
			return nil, fmt.Errorf("%w: %s of session %08x, want %s", errBareUnexpected, m.Command, m.SessionID, want)
		}
		return m, nil
	}

	if err := send(wire.New(wire.CmdAuthRequest, id).AddUint8(wire.TagVersion, session.ProtocolVersion)); err != nil {
		return err
	}
	m, err := recv(wire.CmdAuthResponse)
	if err != nil {
		return err
	}
	name, _ := m.String(wire.TagDeviceName)
	keyReq := *s.keyReq
	keyReq.SessionID = id
	if err := send(&keyReq); err != nil {
		return err
	}
	if m, err = recv(wire.CmdKeyGenerateResponse); err != nil {
		return err
	}
	der, _ := m.Get(wire.TagPublicKey)
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return err
	}
	issued, err := s.auth.Issue(ctx, ca.IssueRequest{DeviceName: name, PublicKey: pub, Validity: s.validity})
	if err != nil {
		return err
	}
	if err := send(wire.New(wire.CmdStoreCertificateRequest, id).
		AddUint8(wire.TagCertificateType, uint8(wire.CertLSC)).
		Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, issued.DER))); err != nil {
		return err
	}
	if _, err := recv(wire.CmdStoreCertificateResponse); err != nil {
		return err
	}
	return send(wire.New(wire.CmdEndSession, id).AddUint8(wire.TagReason, uint8(wire.ReasonSuccess)))
}

// startBareCAPF spawns the executable's bare CAPF server in dir, as the
// run's one node, and loads its certificate for the phones.
func (b *bench) startBareCAPF(ctx context.Context, dir string) error {
	exe := b.o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("find this program to spawn the bare CAPF server: %w", err)
		}
	}
	args := []string{BareServerCommand, "--dir", dir, "--listen", nodeListen(0),
		"--capf-key", b.o.CAPFKey, "--phone-key", b.o.PhoneKey}
	if b.o.CPUProfile != "" {
		args = append(args, "--cpu-profile", b.o.CPUProfile)
	}
	s, err := spawnCmd(ctx, exe, dir, args)
	if err != nil {
		return err
	}
	b.nodes, b.srv = []*server{s}, s
	b.logf("bare CAPF server listening on %s", s.addr)
	if b.trust, err = phonesim.LoadTrust(filepath.Join(dir, BareCAFile)); err != nil {
		_ = s.stop()
		return fmt.Errorf("CAPF certificate: %w", err)
	}
	return nil
}
