package cli

// This file holds a minimal CAPF server written from the protocol notes
// alone (capf-protocol.md), independently of ours: it imports none of wire,
// session, server, ca or auth, hand-encodes its frames with encoding/binary
// and verifies what the phone signs with crypto/x509 directly. Like the
// independent server used with real phones, it refuses with END_SESSION
// reason 7 any AUTH_RESPONSE element a phone would not send. capf phone is
// driven against it in every authentication mode, so that the simulator
// cannot drift back to relying on the leniency of our own server.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Protocol numbers, from the notes.
const (
	ixAuthRequest      = 1
	ixAuthResponse     = 2
	ixKeyGenRequest    = 3
	ixKeyGenResponse   = 4
	ixStoreRequest     = 9
	ixStoreResponse    = 10
	ixEndSession       = 15
	ixRequestInProcess = 17

	ixTagReason       = 1
	ixTagCertType     = 3
	ixTagCertificate  = 4
	ixTagSignedData   = 6
	ixTagVersion      = 7
	ixTagAuthType     = 8
	ixTagPublicKey    = 9
	ixTagPassword     = 11
	ixTagDeviceName   = 13
	ixTagSUDIData     = 16
	ixTagKeyType      = 17
	ixTagCurve        = 18
	ixTagSHA2Signed   = 20
	ixReasonSuccess   = 1
	ixReasonNoAction  = 0
	ixReasonRefused   = 7
	ixReasonUnknown   = 9
	ixCertLSC         = 1
	ixCertMIC         = 2
	ixHashSHA512      = 3
	ixSUDIBlockCert   = 0
	ixSUDIBlockSHA1   = 1
	ixSUDIBlockSHA512 = 3
)

// phoneElements is what a hardware phone may put in AUTH_RESPONSE.
var phoneElements = map[byte]string{
	ixTagReason: "REASON", ixTagVersion: "VERSION", ixTagDeviceName: "DEVICE_NAME", ixTagPassword: "PASSWORD",
	ixTagCertificate: "CERTIFICATE", ixTagSignedData: "SIGNED_DATA", ixTagSHA2Signed: "SHA2_SIGNED_DATA", ixTagSUDIData: "SUDI_DATA",
}

type ixFrame struct {
	cmd   byte
	sid   uint32
	elems map[byte][]byte
	order []byte
}

// ixEncode builds a frame: 0x55, command, session id, payload length, then
// tag · length · value elements.
func ixEncode(cmd byte, sid uint32, elems ...[]byte) []byte {
	var payload []byte
	for _, e := range elems {
		payload = append(payload, e...)
	}
	b := []byte{0x55, cmd}
	b = binary.BigEndian.AppendUint32(b, sid)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func ixElem(tag byte, v []byte) []byte {
	b := []byte{tag}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func ixRead(r io.Reader) (*ixFrame, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 0x55 {
		return nil, fmt.Errorf("protocol id %#x", h[0])
	}
	p := make([]byte, binary.BigEndian.Uint16(h[6:8]))
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	f := &ixFrame{cmd: h[1], sid: binary.BigEndian.Uint32(h[2:6]), elems: map[byte][]byte{}}
	for off := 0; off < len(p); {
		if len(p)-off < 3 {
			return nil, errors.New("truncated element header")
		}
		tag, n := p[off], int(binary.BigEndian.Uint16(p[off+1:off+3]))
		if off+3+n > len(p) {
			return nil, errors.New("element runs past the payload")
		}
		if _, dup := f.elems[tag]; dup {
			return nil, fmt.Errorf("element %d twice", tag)
		}
		f.elems[tag] = p[off+3 : off+3+n]
		f.order = append(f.order, tag)
		off += 3 + n
	}
	return f, nil
}

// ixCred is a certificate with its key.
type ixCred struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func ixIssue(t *testing.T, cn string, isCA bool, pub crypto.PublicKey, parent *ixCred, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ixNewCred(t *testing.T, cn string, isCA, useRSA bool, parent *ixCred) *ixCred {
	t.Helper()
	var key crypto.Signer
	var err error
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &ixCred{cert: ixIssue(t, cn, isCA, key.Public(), parent, key), key: key}
}

// writePEM writes the certificate (and the key, when withKey) to a file.
func (c *ixCred) writePEM(t *testing.T, path string, withKey bool) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
	if withKey {
		b = append(b, c.keyPEM(t)...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *ixCred) keyPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ixVerify checks a phone's signature over a digest: raw PKCS#1 v1.5 (no
// DigestInfo) for RSA, ASN.1 ECDSA for EC.
func ixVerify(pub crypto.PublicKey, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.Hash(0), digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("bad ECDSA signature")
		}
		return nil
	}
	return fmt.Errorf("key type %T", pub)
}

// ixDevice is what the independent server knows of a phone.
type ixDevice struct {
	mode     string // "string", "null", "lsc", "mic"
	password string // for mode string
	pending  bool   // an install is pending
	wantSUDI bool   // the phone must send a SUDI that verifies
	hangUp   bool   // close the connection after AUTH_RESPONSE
}

// ixServer is the independent CAPF.
type ixServer struct {
	t       *testing.T
	ca      *ixCred // issues the TLS certificate and the LSCs
	mfg     *ixCred // the manufacturer CA of MICs and SUDIs
	devices map[string]ixDevice
	ln      net.Listener

	mu       sync.Mutex
	sid      uint32
	verdicts []string // per session: "installed", or why it refused
}

func startIndependentServer(t *testing.T, devices map[string]ixDevice) *ixServer {
	t.Helper()
	s := &ixServer{t: t, devices: devices, sid: 0x0a0b0c00}
	s.ca = ixNewCred(t, "Independent CAPF", true, false, nil)
	s.mfg = ixNewCred(t, "Test Manufacturing CA", true, false, nil)
	tlsKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tlsCert := ixIssue(t, "capf.example", false, tlsKey.Public(), s.ca, nil)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{tlsCert.Raw}, PrivateKey: tlsKey}},
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				v := s.serve(c)
				s.mu.Lock()
				s.verdicts = append(s.verdicts, v)
				s.mu.Unlock()
			})
		}
	})
	return s
}

// sessions returns how many sessions have ended.
func (s *ixServer) sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.verdicts)
}

// verdictAfter waits for session n+1 to end and returns its verdict: the
// phone may exit as soon as it reads END_SESSION, before the server has
// recorded it.
func (s *ixServer) verdictAfter(t *testing.T, n int) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		if len(s.verdicts) > n {
			v := s.verdicts[n]
			s.mu.Unlock()
			return v
		}
		s.mu.Unlock()
	}
	t.Fatalf("session %d did not end", n+1)
	return ""
}

// setDevice changes what the server knows of a phone.
func (s *ixServer) setDevice(name string, d ixDevice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices[name] = d
}

// serve runs one session and returns its verdict.
func (s *ixServer) serve(c net.Conn) string {
	s.mu.Lock()
	s.sid++
	sid := s.sid
	s.mu.Unlock()
	end := func(reason byte, verdict string) string {
		_, _ = c.Write(ixEncode(ixEndSession, sid, ixElem(ixTagReason, []byte{reason})))
		return verdict
	}
	if _, err := c.Write(ixEncode(ixAuthRequest, sid, ixElem(ixTagVersion, []byte{3}))); err != nil {
		return "write: " + err.Error()
	}
	m, err := ixRead(c)
	if err != nil || m.cmd != ixAuthResponse || m.sid != sid {
		return end(ixReasonRefused, fmt.Sprintf("bad AUTH_RESPONSE: %v", err))
	}
	for _, tag := range m.order {
		if _, ok := phoneElements[tag]; !ok {
			return end(ixReasonRefused, fmt.Sprintf("refused: element %d, which phones do not send", tag))
		}
	}
	if r := m.elems[ixTagReason]; !bytes.Equal(r, []byte{ixReasonSuccess}) {
		return end(ixReasonRefused, fmt.Sprintf("refused: REASON %x, phones send 1", r))
	}
	if v := m.elems[ixTagVersion]; len(v) != 1 || v[0] < 1 || v[0] > 3 {
		return end(ixReasonRefused, fmt.Sprintf("refused: VERSION %x", v))
	}
	raw := m.elems[ixTagDeviceName]
	if len(raw) < 2 || raw[len(raw)-1] != 0 {
		return end(ixReasonRefused, "refused: DEVICE_NAME not NUL-terminated")
	}
	name := string(raw[:len(raw)-1])
	s.mu.Lock()
	dev, ok := s.devices[name]
	s.mu.Unlock()
	if !ok {
		return end(ixReasonUnknown, "unknown device")
	}
	if dev.hangUp {
		return "hung up"
	}
	if err := s.authenticate(dev, name, sid, m); err != nil {
		return end(ixReasonRefused, "refused: "+err.Error())
	}
	if !dev.pending {
		return end(ixReasonNoAction, "nothing pending")
	}
	return s.install(c, sid, name, end)
}

// authenticate checks the credentials the phone chose, learning its choice
// from which are present (phones send no AUTH_TYPE).
func (s *ixServer) authenticate(dev ixDevice, name string, sid uint32, m *ixFrame) error {
	if sd, ok := m.elems[ixTagSUDIData]; ok {
		if err := s.checkSUDI(sid, sd); err != nil {
			return fmt.Errorf("SUDI: %w", err)
		}
	} else if dev.wantSUDI {
		return errors.New("no SUDI_DATA")
	}
	wrapped, hasCert := m.elems[ixTagCertificate]
	switch dev.mode {
	case "string", "null":
		if hasCert {
			return errors.New("a certificate for a password mode")
		}
		want := dev.password
		if dev.mode == "null" {
			want = ""
		}
		if !bytes.Equal(m.elems[ixTagPassword], append([]byte(want), 0)) {
			return errors.New("wrong authentication string")
		}
		return nil
	}
	if !hasCert {
		return errors.New("no CERTIFICATE")
	}
	if _, ok := m.elems[ixTagPassword]; ok {
		return errors.New("PASSWORD with a certificate")
	}
	// 0x01 · length (DER + 2) · 0x00 · type · DER
	if len(wrapped) < 5 || wrapped[0] != 1 || wrapped[3] != 0 || int(binary.BigEndian.Uint16(wrapped[1:3])) != len(wrapped)-3 {
		return errors.New("CERTIFICATE wrapper malformed")
	}
	typ, der := wrapped[4], wrapped[5:]
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	switch {
	case dev.mode == "lsc" && typ == ixCertLSC:
		roots.AddCert(s.ca.cert)
	case dev.mode == "mic" && typ == ixCertMIC:
		roots.AddCert(s.mfg.cert)
	default:
		return fmt.Errorf("certificate type %d for mode %s", typ, dev.mode)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return err
	}
	payload := append(append([]byte(name), 0), der...)
	d1 := sha1.Sum(payload)
	if err := ixVerify(cert.PublicKey, d1[:], m.elems[ixTagSignedData]); err != nil {
		return fmt.Errorf("SIGNED_DATA: %w", err)
	}
	v := m.elems[ixTagSHA2Signed]
	if len(v) < 3 || v[0] != ixHashSHA512 || int(binary.BigEndian.Uint16(v[1:3])) != len(v)-3 {
		return errors.New("SHA2_SIGNED_DATA malformed")
	}
	d512 := sha512.Sum512(payload)
	if err := ixVerify(cert.PublicKey, d512[:], v[3:]); err != nil {
		return fmt.Errorf("SHA2_SIGNED_DATA: %w", err)
	}
	return nil
}

// checkSUDI verifies SUDI_DATA: blocks (type · length · bytes), the
// certificate chaining to the manufacturer CA, signatures over the session
// id little-endian · certificate DER.
func (s *ixServer) checkSUDI(sid uint32, v []byte) error {
	blocks := map[byte][]byte{}
	for off := 0; off < len(v); {
		if len(v)-off < 3 {
			return errors.New("truncated block")
		}
		typ, n := v[off], int(binary.BigEndian.Uint16(v[off+1:off+3]))
		if off+3+n > len(v) {
			return errors.New("block past the end")
		}
		blocks[typ] = v[off+3 : off+3+n]
		off += 3 + n
	}
	cert, err := x509.ParseCertificate(blocks[ixSUDIBlockCert])
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.mfg.cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return err
	}
	payload := binary.LittleEndian.AppendUint32(nil, sid)
	payload = append(payload, cert.Raw...)
	d1, d512 := sha1.Sum(payload), sha512.Sum512(payload)
	if err := ixVerify(cert.PublicKey, d1[:], blocks[ixSUDIBlockSHA1]); err != nil {
		return fmt.Errorf("SHA-1: %w", err)
	}
	if err := ixVerify(cert.PublicKey, d512[:], blocks[ixSUDIBlockSHA512]); err != nil {
		return fmt.Errorf("SHA-512: %w", err)
	}
	return nil
}

// install asks for an EC P-256 key, signs an LSC for it with the server's
// CA, stores it and ends the session with reason 1.
func (s *ixServer) install(c net.Conn, sid uint32, name string, end func(byte, string) string) string {
	req := ixEncode(ixKeyGenRequest, sid, ixElem(ixTagKeyType, []byte{1}), ixElem(ixTagCurve, []byte{0}))
	if _, err := c.Write(req); err != nil {
		return "write: " + err.Error()
	}
	var m *ixFrame
	for {
		var err error
		if m, err = ixRead(c); err != nil {
			return "read key: " + err.Error()
		}
		if m.cmd != ixRequestInProcess {
			break
		}
	}
	if m.cmd != ixKeyGenResponse || m.sid != sid {
		return end(ixReasonRefused, fmt.Sprintf("command %d instead of KEY_GENERATE_RESPONSE", m.cmd))
	}
	pub, err := x509.ParsePKIXPublicKey(m.elems[ixTagPublicKey])
	if err != nil {
		return end(ixReasonRefused, "PUBLIC_KEY: "+err.Error())
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return end(ixReasonRefused, fmt.Sprintf("key %T is not the P-256 key asked for", pub))
	}
	lsc := ixIssue(s.t, name, false, pub, s.ca, nil)
	wrapped := []byte{1}
	wrapped = binary.BigEndian.AppendUint16(wrapped, uint16(len(lsc.Raw)+2))
	wrapped = append(append(wrapped, 0, ixCertLSC), lsc.Raw...)
	store := ixEncode(ixStoreRequest, sid, ixElem(ixTagCertType, []byte{ixCertLSC}), ixElem(ixTagCertificate, wrapped))
	if _, err := c.Write(store); err != nil {
		return "write: " + err.Error()
	}
	if m, err = ixRead(c); err != nil || m.cmd != ixStoreResponse || !bytes.Equal(m.elems[ixTagReason], []byte{ixReasonSuccess}) {
		return end(ixReasonRefused, fmt.Sprintf("store not acknowledged: %v", err))
	}
	return end(ixReasonSuccess, "installed")
}

// TestPhoneAgainstIndependentServer drives capf phone, in process, against
// the independent server in every authentication mode, and checks that a
// refusal, an unknown device and a session that ends early give their exit
// codes while "nothing pending" is not an error.
func TestPhoneAgainstIndependentServer(t *testing.T) {
	devices := map[string]ixDevice{
		"SEP000000000001": {mode: "string", password: "80442", pending: true},
		"SEP000000000002": {mode: "null", pending: true},
		"SEP000000000003": {mode: "string", password: "1234", pending: true}, // then lsc, below
		"SEP000000000004": {mode: "mic", pending: true, wantSUDI: true},
		"SEP000000000005": {mode: "string", password: "80442"},
		"SEP000000000006": {mode: "null", hangUp: true},
	}
	srv := startIndependentServer(t, devices)
	dir := t.TempDir()
	caPEM := filepath.Join(dir, "capf.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	mic := ixNewCred(t, "CP-8865-SEP000000000004", false, true, srv.mfg)
	mic.writePEM(t, filepath.Join(dir, "mic.pem"), true)
	sudi := ixNewCred(t, "PID:CP-8865 SN:FCH0000004", false, false, srv.mfg)
	sudi.writePEM(t, filepath.Join(dir, "sudi.pem"), false)
	if err := os.WriteFile(filepath.Join(dir, "sudi-key.pem"), sudi.keyPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	// phone runs capf phone and returns its output, exit code and the
	// server's verdict on the session.
	phone := func(name string, args ...string) (string, int, string) {
		t.Helper()
		n := srv.sessions()
		out, errOut, code := run(t, data, append([]string{"phone", name, "--server", srv.ln.Addr().String(), "--ca", caPEM,
			"--retries", "0", "--timeout", "10s", "--state", filepath.Join(dir, "state", name)}, args...)...)
		return out + errOut, code, srv.verdictAfter(t, n)
	}

	for _, tc := range []struct {
		name        string
		device      string
		args        []string
		wantCode    int
		wantVerdict string
	}{
		{"ok/string", "SEP000000000001", []string{"--auth-string", "80442"}, ExitOK, "installed"},
		{"ok/null", "SEP000000000002", []string{"--auth-mode", "null"}, ExitOK, "installed"},
		{"ok/mic-with-sudi", "SEP000000000004", []string{"--mic", filepath.Join(dir, "mic.pem"), "--sudi", filepath.Join(dir, "sudi.pem"), "--sudi-key", filepath.Join(dir, "sudi-key.pem")}, ExitOK, "installed"},
		{"fail/refused-wrong-string", "SEP000000000001", []string{"--auth-string", "11111"}, ExitPhoneRefused, "refused: wrong authentication string"},
		{"fail/auth-type-is-refused", "SEP000000000001", []string{"--auth-string", "80442", "--send-auth-type"}, ExitPhoneRefused, "refused: element 8, which phones do not send"},
		{"fail/unknown-device", "SEP0000000000FF", []string{"--auth-mode", "null"}, ExitPhoneUnknown, "unknown device"},
		{"ok/nothing-pending", "SEP000000000005", []string{"--auth-string", "80442"}, ExitOK, "nothing pending"},
		{"fail/ended-early", "SEP000000000006", []string{"--auth-mode", "null"}, ExitPhoneEndedEarly, "hung up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code, verdict := phone(tc.device, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d:\n%s", code, tc.wantCode, out)
			}
			if verdict != tc.wantVerdict {
				t.Errorf("server verdict %q, want %q", verdict, tc.wantVerdict)
			}
		})
	}

	// LSC: a phone enrolled by the string authenticates with the LSC the
	// independent CA issued, in lsc and lsc-then-mic mode.
	if out, code, verdict := phone("SEP000000000003", "--auth-string", "1234"); code != ExitOK || verdict != "installed" {
		t.Fatalf("enrolment: exit %d, verdict %q:\n%s", code, verdict, out)
	}
	srv.setDevice("SEP000000000003", ixDevice{mode: "lsc", pending: true})
	for _, mode := range []string{"lsc", "lsc-then-mic"} {
		if out, code, verdict := phone("SEP000000000003", "--auth-mode", mode); code != ExitOK || verdict != "installed" {
			t.Errorf("LSC re-enrolment (%s): exit %d, verdict %q:\n%s", mode, code, verdict, out)
		}
	}
	// The MIC mode of a phone without a MIC falls back to its LSC.
	if out, code, verdict := phone("SEP000000000003", "--auth-mode", "mic", "--json"); code != ExitOK || verdict != "installed" || !strings.Contains(out, `"exit_code": 0`) {
		t.Errorf("mic mode falling back to the LSC, --json: exit %d, verdict %q:\n%s", code, verdict, out)
	}
	// A refusal is reported in --json too.
	srv.setDevice("SEP000000000003", ixDevice{mode: "string", password: "1234", pending: true})
	if out, code, verdict := phone("SEP000000000003", "--auth-mode", "lsc", "--json"); code != ExitPhoneRefused || !strings.Contains(verdict, "refused") || !strings.Contains(out, `"exit_code": 5`) {
		t.Errorf("refused LSC, --json: exit %d, verdict %q:\n%s", code, verdict, out)
	}
}
