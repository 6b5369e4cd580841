package phonesim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

// runner holds what lasts across the sessions of one run.
type runner struct {
	c          *config
	st         *state
	res        *Result
	mode       AuthMode
	failKeygen int // KEY_GENERATE_REQUESTs still to fail
	dropStore  int // STORE_CERTIFICATE_REQUESTs still to drop
	log        *slog.Logger
}

// outcome is how a session ended without error: END_SESSION, or
// RETRY_LATER asking for a new session after delay.
type outcome struct {
	retryLater bool
	delay      time.Duration
}

// session is one connection to the server.
type session struct {
	r     *runner
	conn  net.Conn
	id    uint32
	idSet bool
	buf   []byte
	log   *slog.Logger
}

var errDropped = errors.New("injected fault: connection closed instead of answering STORE_CERTIFICATE_REQUEST")

// session connects to server, authenticates and answers the server until
// it ends the session.
func (r *runner) session(ctx context.Context, server string) (outcome, error) {
	cred, authType, err := r.authCredential()
	if err != nil {
		return outcome{}, err
	}
	d := net.Dialer{Timeout: r.c.MessageTimeout}
	if r.c.localAddr != nil {
		d.LocalAddr = r.c.localAddr
	}
	raw, err := d.DialContext(ctx, "tcp", server)
	if err != nil {
		return outcome{}, comm("connect", err)
	}
	r.res.Sessions++
	r.res.Server = server
	conn := tls.Client(raw, r.c.tlsConfig())
	defer conn.Close()
	// Closing is the only way to interrupt a blocked read for sure: a
	// deadline set here could be overwritten by the next per-message one.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	conn.SetDeadline(time.Now().Add(r.c.MessageTimeout))
	if err := conn.HandshakeContext(ctx); err != nil {
		return outcome{}, handshakeError(err)
	}
	cs := conn.ConnectionState()
	r.log.Debug("connected", "server", server, "tls", tls.VersionName(cs.Version), "cipher", tls.CipherSuiteName(cs.CipherSuite))
	conn.SetDeadline(time.Time{})

	s := &session{r: r, conn: conn, log: r.log}
	return s.run(ctx, cred, authType)
}

// handshakeError classifies a TLS handshake failure: a broken or timed-out
// connection is a communication failure, anything else (an untrusted
// certificate, no common version or suite, an alert) is permanent.
func handshakeError(err error) error {
	if errors.Is(err, ErrUntrusted) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return comm("TLS handshake", err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op != "remote error" && oe.Op != "local error" {
		return comm("TLS handshake", err)
	}
	return fmt.Errorf("TLS handshake: %w", err)
}

// authCredential returns the certificate to present (nil for the password
// modes) and what kind of authentication that is, as an AUTH_TYPE (sent
// only with SendAuthType).
func (r *runner) authCredential() (*Credential, wire.AuthType, error) {
	switch r.mode {
	case AuthModeString:
		return nil, wire.AuthPassword, nil
	case AuthModeNull:
		return nil, wire.AuthNoPassword, nil
	case AuthModeLSC:
		if r.st.lsc != nil {
			return r.st.lsc, wire.AuthLSC, nil
		}
		if r.st.mic != nil {
			return r.st.mic, wire.AuthMIC, nil
		}
	case AuthModeMIC:
		if r.st.mic != nil {
			return r.st.mic, wire.AuthMIC, nil
		}
		if r.st.lsc != nil {
			return r.st.lsc, wire.AuthLSC, nil
		}
	}
	return nil, 0, fmt.Errorf("authentication mode %s: the phone has neither an LSC nor a MIC", r.mode)
}

func (s *session) run(ctx context.Context, cred *Credential, authType wire.AuthType) (outcome, error) {
	m, err := s.read()
	if err != nil {
		return outcome{}, err
	}
	s.id, s.idSet = m.SessionID, true
	s.log = s.log.With("session", fmt.Sprintf("%08x", s.id))
	switch m.Command {
	case wire.CmdAuthRequest:
		if v, err := m.Uint8(wire.TagVersion); err != nil || v != DefaultVersion {
			s.log.Debug("AUTH_REQUEST with an unusual VERSION", "version", v, "err", err)
		}
	case wire.CmdRetryLater:
		return s.retryLater(m), nil
	case wire.CmdEndSession:
		return outcome{}, s.endSession(m)
	default:
		return outcome{}, fmt.Errorf("%w: first message is %s, want AUTH_REQUEST", ErrProtocol, m.Command)
	}

	auth, err := s.authResponse(cred, authType)
	if err != nil {
		return outcome{}, err
	}
	if err := s.send(auth); err != nil {
		return outcome{}, err
	}
	if s.r.c.DisconnectAfterAuth {
		s.conn.Close()
		return outcome{}, fmt.Errorf("%w: disconnected after AUTH_RESPONSE", ErrFault)
	}

	for {
		m, err := s.read()
		if err != nil {
			return outcome{}, err
		}
		switch m.Command {
		case wire.CmdKeyGenerateRequest:
			err = s.keyGenerate(ctx, m)
		case wire.CmdStoreCertificateRequest:
			err = s.store(m)
		case wire.CmdFetchCertificateRequest:
			err = s.fetch(m)
		case wire.CmdDeleteCertificateRequest:
			err = s.delete(m)
		case wire.CmdRetryLater:
			return s.retryLater(m), nil
		case wire.CmdEndSession:
			return outcome{}, s.endSession(m)
		default:
			// Phones ignore what they do not know.
			s.log.Warn("ignoring unexpected message", "command", m.Command)
		}
		if err != nil {
			return outcome{}, err
		}
	}
}

// read reads and decodes one server message within MessageTimeout and
// checks its session id.
func (s *session) read() (*wire.Message, error) {
	s.conn.SetReadDeadline(time.Now().Add(s.r.c.MessageTimeout))
	var frame []byte
	if s.r.c.singleRead {
		// One softphone reads a message with a single 4 KiB read.
		if cap(s.buf) < singleReadSize {
			s.buf = make([]byte, singleReadSize)
		}
		n, err := s.conn.Read(s.buf[:singleReadSize])
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, comm("read", err)
		}
		frame = s.buf[:n]
		h, err := wire.ParseHeader(frame)
		if err != nil {
			if len(frame) < wire.HeaderLen {
				return nil, fmt.Errorf("%w: single read returned %d bytes, not a whole header", ErrProtocol, n)
			}
			return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if want := wire.HeaderLen + int(h.Length); n < want {
			return nil, fmt.Errorf("%w: %s split across reads: single read returned %d of %d bytes", ErrProtocol, h.Command, n, want)
		}
	} else {
		var err error
		frame, err = wire.ReadFrame(s.conn, s.buf, wire.MaxPayloadLen)
		if err != nil {
			if errors.Is(err, wire.ErrMalformed) {
				return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
			}
			return nil, comm("read", err)
		}
		s.buf = frame[:0]
	}
	m, err := wire.Decode(frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	if s.idSet && m.SessionID != s.id {
		return nil, fmt.Errorf("%w: %s carries session id %08x, want %08x", ErrProtocol, m.Command, m.SessionID, s.id)
	}
	s.log.Debug("recv", "command", m.Command, "bytes", len(frame))
	return m, nil
}

// send encodes m and writes it with one write call.
func (s *session) send(m *wire.Message) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.r.c.MessageTimeout))
	if _, err := s.conn.Write(b); err != nil {
		return comm("write "+m.Command.String(), err)
	}
	s.log.Debug("send", "command", m.Command, "bytes", len(b))
	return nil
}

// answer sends the response to req and records req as answered.
func (s *session) answer(req, resp *wire.Message) error {
	if err := s.send(resp); err != nil {
		return err
	}
	s.r.res.Operations = append(s.r.res.Operations, req.Command.String())
	return nil
}

// reply returns a new message of cmd in this session.
func (s *session) reply(cmd wire.Command) *wire.Message { return wire.New(cmd, s.id) }

// retryLater reads RETRY_DELAY (seconds, big-endian, 1, 2 or 4 bytes); when
// it is absent or unreadable the phone waits its RetryInterval.
func (s *session) retryLater(m *wire.Message) outcome {
	s.r.res.RetryLaterCount++
	delay := s.r.c.RetryInterval
	if m.Has(wire.TagRetryDelay) {
		if v, err := m.Uint(wire.TagRetryDelay); err == nil {
			delay = time.Duration(v) * time.Second
		} else {
			s.log.Warn("unreadable RETRY_DELAY", "err", err)
		}
	}
	s.log.Info("server asked to retry later", "delay", delay)
	return outcome{retryLater: true, delay: delay}
}

// endSession records the END_SESSION reason. A missing REASON is a
// protocol violation: the notes say END_SESSION always carries one.
func (s *session) endSession(m *wire.Message) error {
	v, err := m.Uint8(wire.TagReason)
	if err != nil {
		return fmt.Errorf("%w: END_SESSION: %w", ErrProtocol, err)
	}
	s.r.res.EndReason = wire.Reason(v)
	s.r.res.ReasonInfo, _ = m.String(wire.TagReasonInfo)
	s.log.Info("session ended", "reason", s.r.res.EndReason, "code", v, "info", s.r.res.ReasonInfo)
	s.conn.Close()
	return nil
}

// fetch answers FETCH_CERTIFICATE_REQUEST: the certificate of the asked
// type, else the LSC if there is one, else the MIC; REASON 7 without one.
func (s *session) fetch(m *wire.Message) error {
	st := s.r.st
	typ, cred := wire.CertLSC, st.lsc
	if m.Has(wire.TagCertificateType) {
		v, err := m.Uint8(wire.TagCertificateType)
		switch {
		case err != nil:
			s.log.Warn("unreadable CERTIFICATE_TYPE", "err", err)
			cred = nil
		case wire.CertType(v) == wire.CertMIC:
			typ, cred = wire.CertMIC, st.mic
		case wire.CertType(v) != wire.CertLSC:
			s.log.Warn("fetch of an unknown certificate type", "type", v)
			cred = nil
		}
	} else if cred == nil {
		typ, cred = wire.CertMIC, st.mic
	}
	resp := s.reply(wire.CmdFetchCertificateResponse)
	if cred == nil {
		return s.answer(m, resp.AddUint8(wire.TagReason, uint8(wire.ReasonRefused)))
	}
	resp.AddUint8(wire.TagReason, uint8(wire.ReasonSuccess)).
		Add(wire.TagCertificate, wire.WrapCertificate(typ, cred.Certificate.Raw))
	if err := s.answer(m, resp); err != nil {
		return err
	}
	s.r.res.Fetched = true
	return nil
}

// delete answers DELETE_CERTIFICATE_REQUEST: REASON 1 when an LSC was
// deleted, 7 when there was none.
func (s *session) delete(m *wire.Message) error {
	had, err := s.r.st.deleteLSC()
	if err != nil {
		return fmt.Errorf("delete LSC: %w", err)
	}
	reason := wire.ReasonRefused
	if had {
		reason = wire.ReasonSuccess
	}
	if err := s.answer(m, s.reply(wire.CmdDeleteCertificateResponse).AddUint8(wire.TagReason, uint8(reason))); err != nil {
		return err
	}
	s.r.res.Deleted = s.r.res.Deleted || had
	return nil
}

// store answers STORE_CERTIFICATE_REQUEST: the certificate must be for the
// pending key; then the faults apply; then it becomes the LSC.
func (s *session) store(m *wire.Message) error {
	refuse := func(why string, args ...any) error {
		s.log.Warn("refusing STORE_CERTIFICATE_REQUEST: "+why, args...)
		return s.answer(m, s.reply(wire.CmdStoreCertificateResponse).AddUint8(wire.TagReason, uint8(wire.ReasonRefused)))
	}
	v, ok := m.Get(wire.TagCertificate)
	if !ok {
		return refuse("no CERTIFICATE")
	}
	typ, der, err := wire.UnwrapCertificate(v)
	if err != nil {
		return refuse("bad CERTIFICATE", "err", err)
	}
	cert, err := x509.ParseCertificate(bytes.Clone(der))
	if err != nil {
		return refuse("bad CERTIFICATE", "err", err)
	}
	s.r.res.Received = append(s.r.res.Received, cert)
	if typ != 0 && typ != wire.CertLSC {
		s.log.Warn("stored certificate is wrapped with an unusual type", "type", typ)
	}
	if ct, err := m.Uint8(wire.TagCertificateType); err == nil && wire.CertType(ct) != wire.CertLSC {
		s.log.Warn("STORE_CERTIFICATE_REQUEST with an unusual CERTIFICATE_TYPE", "type", ct)
	}
	pending := s.r.st.pending
	if pending == nil {
		return refuse("no key pair was generated")
	}
	if !samePublicKey(cert.PublicKey, pending.Public()) {
		return refuse("the certificate is not for the generated key", "subject", cert.Subject.String())
	}
	if s.r.dropStore > 0 {
		s.r.dropStore--
		s.conn.Close()
		return comm("store", errDropped)
	}
	if s.r.c.RefuseStore {
		return refuse("RefuseStore fault")
	}
	if err := s.r.st.setLSC(&Credential{Certificate: cert, Key: pending}); err != nil {
		return fmt.Errorf("save LSC: %w", err)
	}
	s.r.res.Installed = cert
	s.log.Info("LSC installed", "serial", cert.SerialNumber.Text(16), "subject", cert.Subject.String())
	return s.answer(m, s.reply(wire.CmdStoreCertificateResponse).AddUint8(wire.TagReason, uint8(wire.ReasonSuccess)))
}
