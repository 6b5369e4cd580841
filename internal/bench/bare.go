package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/fault"
	capfserver "github.com/capf-server/capf/internal/server"
)

// ModeBare is the mode of a run against the bare loop (RunBare).
const ModeBare = "bare"

// bareMaxKey bounds the public key a bare-loop client may send.
const bareMaxKey = 4096

// bareTimeout bounds one bare-loop connection on either side.
const bareTimeout = 30 * time.Second

// RunBare measures the reference that docs/performance.md compares capf
// against: a bare TLS-plus-signing loop, in this process, with nothing of
// capf's but its TLS configuration (server.TLSConfig, profile modern) and
// its certificate authority (ca.Issue). Each phone dials (from the
// loopback source addresses, at TLS 1.2 unless o.TLS13, checking the
// server's certificate against the CA as phones do), sends the DER public
// key of a pooled key pair, and reads back the certificate the server
// issued for it after the handshake; no protocol, database, session or
// logging. The report has the same rate and latency fields as Run's; the
// server's CPU is not measured apart from the phones'. Options used:
// Phones, Concurrency, PhoneKey, CAPFKey, KeyPool, SourceAddrs, TLS13,
// Timeout.
func RunBare(ctx context.Context, o Options, logf Logf) (*Report, error) {
	o, err := o.withDefaults()
	if err == nil && (o.mode() != ModeSpawned || o.DB != "" || o.Nodes > 1 || o.Waiting > 0 || o.CPUProfile != "") {
		err = errors.New("the bare loop takes no server, database, nodes, waiting phones or CPU profile")
	}
	if err != nil {
		return nil, fault.Invalidf("bench: %v", err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	setupStart := time.Now()
	alg, err := ca.ParseKeyAlgorithm(o.CAPFKey)
	if err != nil {
		return nil, fault.Invalidf("bench: CAPF key: %v", err)
	}
	auth, err := ca.Generate(ca.Options{KeyAlgorithm: alg})
	if err != nil {
		return nil, fmt.Errorf("bench: bare loop CA: %w", err)
	}
	cfg, err := capfserver.TLSConfig(capfserver.ProfileModern, auth.TLSCertificate())
	if err != nil {
		return nil, fmt.Errorf("bench: bare loop TLS: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: bare loop: %w", err)
	}
	srv := &bareServer{ln: ln, auth: auth, tls: cfg}
	go srv.serve()
	defer srv.stop()

	spec, _ := phoneKeySpec(o.PhoneKey)
	logf("bare loop on %s, CAPF key %s; generating %d %s phone keys", ln.Addr(), o.CAPFKey, o.KeyPool, spec)
	pool, err := newKeyPool(ctx, spec, o.KeyPool)
	if err != nil {
		return nil, fmt.Errorf("bench: phone keys: %w", err)
	}
	pubs := make([][]byte, len(pool.keys))
	for i, k := range pool.keys {
		if pubs[i], err = x509.MarshalPKIXPublicKey(k.Public()); err != nil {
			return nil, fmt.Errorf("bench: phone key: %w", err)
		}
	}
	rep := &Report{
		Params: Params{Mode: ModeBare, Server: ln.Addr().String(), Phones: o.Phones, Concurrency: o.Concurrency,
			PhoneKey: o.PhoneKey, CAPFKey: o.CAPFKey, Operation: "none", KeyPool: o.KeyPool,
			CPUs: runtime.NumCPU(), TLSMax: tlsMax(o.TLS13)},
		FirstErrors: []string{},
		Notes:       []string{"bare TLS-plus-signing loop in this process: the server's CPU is in the client CPU"},
	}
	if o.SourceAddrs > 1 {
		rep.Params.SourceAddrs = o.SourceAddrs
	}
	client := &tls.Config{
		InsecureSkipVerify: true, // checked against the CA below, as phones check their CTL
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !cs.PeerCertificates[0].Equal(auth.Certificate()) {
				return errors.New("server certificate is not the CAPF certificate")
			}
			return nil
		},
		MaxVersion: tls.VersionTLS12,
	}
	if o.TLS13 {
		client.MaxVersion = 0
	}
	rep.Setup = time.Since(setupStart)

	tctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	lat := make([]time.Duration, o.Phones)
	okFlags := make([]bool, o.Phones)
	var (
		mu   sync.Mutex
		errs errorLog
		next atomic.Int64
		wg   sync.WaitGroup
	)
	clientStart, clientErr := procCPU(os.Getpid())
	start := time.Now()
	for range min(o.Concurrency, o.Phones) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.Phones || tctx.Err() != nil {
					return
				}
				var local net.Addr
				if n := rep.Params.SourceAddrs; n > 1 {
					local = &net.TCPAddr{IP: net.ParseIP(sourceAddr(i % n))}
				}
				t0 := time.Now()
				err := bareEnrol(tctx, ln.Addr().String(), local, client, pubs[i%len(pubs)])
				lat[i] = time.Since(t0)
				okFlags[i] = err == nil
				if err != nil {
					mu.Lock()
					errs.add(err.Error())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	rep.Duration = time.Since(start)
	if clientEnd, err := procCPU(os.Getpid()); err == nil && clientErr == nil {
		rep.ClientCPU = clientEnd - clientStart
	}
	succeeded := make([]time.Duration, 0, o.Phones)
	for i, ok := range okFlags {
		if ok {
			succeeded = append(succeeded, lat[i])
		}
		if ok || lat[i] > 0 {
			rep.Attempted++
		}
	}
	rep.Succeeded = len(succeeded)
	rep.Failed = rep.Attempted - rep.Succeeded
	rep.FirstErrors = errs.list()
	rep.setLatencies(succeeded)
	if rep.Duration > 0 {
		rep.PerSecond = float64(rep.Succeeded) / rep.Duration.Seconds()
	}
	if rep.Attempted < o.Phones {
		return rep, fmt.Errorf("bench: only %d of %d phones ran: %w", rep.Attempted, o.Phones, tctx.Err())
	}
	return rep, nil
}

// bareEnrol is one phone of the bare loop: TLS handshake, its public key
// out, its certificate back, checked to certify that key.
func bareEnrol(ctx context.Context, addr string, local net.Addr, cfg *tls.Config, pub []byte) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: local, Timeout: bareTimeout}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(bareTimeout))
	if err := writeBlob(conn, pub); err != nil {
		return fmt.Errorf("send key: %w", err)
	}
	der, err := readBlob(conn, 1<<16)
	if err != nil {
		return fmt.Errorf("read certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	got, err := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if err != nil || string(got) != string(pub) {
		return errors.New("the certificate does not certify the key sent")
	}
	return nil
}

// bareServer is the server side of the bare loop.
type bareServer struct {
	ln    net.Listener
	auth  *ca.Authority
	tls   *tls.Config
	wg    sync.WaitGroup
	count atomic.Uint64
}

// serve accepts until the listener closes; each connection on its own
// goroutine.
func (s *bareServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.handle(c) })
	}
}

// handle is one connection: handshake, a bounded public key in, the
// certificate capf's CA issues for it out.
func (s *bareServer) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(bareTimeout))
	conn := tls.Server(c, s.tls)
	ctx, cancel := context.WithTimeout(context.Background(), bareTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		return
	}
	der, err := readBlob(conn, bareMaxKey)
	if err != nil {
		return
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return
	}
	n := s.count.Add(1)
	issued, err := s.auth.Issue(ctx, ca.IssueRequest{DeviceName: fmt.Sprintf("SEP%012X", n), PublicKey: pub})
	if err != nil {
		return
	}
	_ = writeBlob(conn, issued.DER)
}

// stop closes the listener and waits for the connections.
func (s *bareServer) stop() {
	_ = s.ln.Close()
	s.wg.Wait()
}

// writeBlob writes b with a 4-byte big-endian length.
func writeBlob(w io.Writer, b []byte) error {
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	_, err := w.Write(append(buf, b...))
	return err
}

// readBlob reads what writeBlob wrote, refusing more than limit bytes.
func readBlob(r io.Reader, limit int) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > uint32(limit) {
		return nil, fmt.Errorf("%d bytes: over the limit of %d", size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}
