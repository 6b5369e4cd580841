package notify

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// The errors an AMI notification wraps, for errors.Is.
var (
	// ErrLogin: the PBX refused the user name or secret.
	ErrLogin = errors.New("AMI login refused")
	// ErrRefused: the PBX refused the PJSIPNotify action.
	ErrRefused = errors.New("AMI action refused")
	// ErrTimeout: the PBX did not answer in time.
	ErrTimeout = errors.New("notification timed out")
	// ErrProtocol: the peer does not speak AMI as documented.
	ErrProtocol = errors.New("AMI protocol error")
)

// Bounds of what an AMI peer may send.
const (
	maxLine     = 1024 // bytes of one line
	maxFields   = 64   // lines of one message
	maxMessages = 32   // messages (events) read while waiting for a response
)

// AMIOptions configure an [AMI] notifier.
type AMIOptions struct {
	Address  string        // host:port of the Asterisk manager (manager.conf, usually port 5038)
	Username string        // the manager.conf user
	Secret   string        // its secret (read it with LoadSecret)
	Endpoint Endpoint      // the PJSIP endpoint of a device; DefaultEndpoint when empty
	Timeout  time.Duration // for one notification; DefaultTimeout when zero
	// TLS, when set, makes the connection TLS with this configuration
	// (the manager's tlsbindaddr; see AMITLS); nil: plain TCP.
	TLS *tls.Config
	// Dial opens the connection; a net.Dialer's DialContext (a
	// tls.Dialer's with TLS) when nil.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// AMI sends the NOTIFY through the Asterisk Manager Interface: for each
// notification it connects, reads the banner, logs in (Action: Login, with
// events off), sends Action: PJSIPNotify with the device's endpoint and
// Variable: Event=check-sync, and logs off. Every action carries an
// ActionID; only the response with that ActionID counts (events and other
// messages are skipped, at most maxMessages of them). A connection per
// notification keeps no session open to the PBX between resets.
type AMI struct {
	o AMIOptions
}

var _ Notifier = (*AMI)(nil)

// NewAMI checks o and returns the notifier.
func NewAMI(o AMIOptions) (*AMI, error) {
	if _, _, err := net.SplitHostPort(o.Address); err != nil {
		return nil, fault.Invalidf("AMI address %q: want host:port, e.g. 127.0.0.1:5038", o.Address)
	}
	if o.Username == "" || strings.ContainsFunc(o.Username, isControl) {
		return nil, fault.Invalidf("AMI user %q: want a manager.conf user name without control characters", o.Username)
	}
	if o.Secret == "" || strings.ContainsFunc(o.Secret, isControl) {
		return nil, fault.Invalidf("AMI secret: empty or with control characters")
	}
	if err := CheckEndpoint(string(o.Endpoint)); err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
		if o.TLS != nil {
			o.Dial = (&tls.Dialer{Config: o.TLS}).DialContext
		}
	}
	return &AMI{o: o}, nil
}

// AMITLS returns the TLS configuration of a manager at address whose
// certificate a CA of the PEM file caFile issued for address's host name
// (or IP address): TLS 1.2 or later, verified. A file without a
// certificate is an error naming it.
func AMITLS(caFile, address string) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fault.Invalidf("AMI address %q: want host:port", address)
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fault.Invalidf("AMI CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fault.Invalidf("AMI CA file %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// Notify sends check-sync to device's endpoint.
func (a *AMI) Notify(ctx context.Context, device string) error {
	endpoint, err := a.o.Endpoint.For(device)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(ctx, deadline(ctx, time.Now(), a.o.Timeout))
	defer cancel()
	conn, err := a.o.Dial(ctx, "tcp", a.o.Address)
	if err != nil {
		if ctx.Err() != nil {
			return failure(ErrTimeout, "no connection to the AMI at %s within %s", a.o.Address, a.o.Timeout)
		}
		return failure(err, "cannot connect to the AMI at %s: %s", a.o.Address, shortNetError(err))
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	if err := conn.SetDeadline(dl); err != nil {
		return failure(err, "AMI connection: %v", err)
	}
	// Close the connection when ctx ends early, so a cancelled reset does
	// not wait for the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	s := &amiSession{r: bufio.NewReaderSize(conn, maxLine), w: conn, id: actionPrefix(), addr: a.o.Address, timeout: a.o.Timeout}
	if err := s.banner(); err != nil {
		return err
	}
	if _, err := s.do("Login", [][2]string{{"Username", a.o.Username}, {"Secret", a.o.Secret}, {"Events", "off"}}); err != nil {
		if errors.Is(err, ErrRefused) {
			return failure(ErrLogin, "AMI login as %s refused: %s", a.o.Username, reasonOf(err))
		}
		return err
	}
	if _, err := s.do("PJSIPNotify", [][2]string{{"Endpoint", endpoint}, {"Variable", "Event=check-sync"}}); err != nil {
		if errors.Is(err, ErrRefused) {
			return failure(ErrRefused, "the PBX refused the NOTIFY to %s: %s", endpoint, reasonOf(err))
		}
		return err
	}
	// Logoff is a courtesy: the NOTIFY is sent; its answer (Goodbye) or
	// its absence changes nothing.
	_, _ = s.do("Logoff", nil)
	return nil
}

func reasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "unknown"
}

// shortNetError names a connection failure without the Go error chain.
func shortNetError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return sys.Err.Error()
		}
		return op.Err.Error()
	}
	return err.Error()
}

// actionPrefix returns a random prefix for this connection's ActionIDs.
func actionPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "capf-" + hex.EncodeToString(b)
}

// amiSession is one connection's exchange.
type amiSession struct {
	r       *bufio.Reader
	w       net.Conn
	id      string
	seq     int
	addr    string
	timeout time.Duration
}

// ioErr turns a read or write error into a notification error.
func (s *amiSession) ioErr(what string, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failure(ErrTimeout, "the AMI at %s did not answer %s within %s", s.addr, what, s.timeout)
	}
	if errors.Is(err, ErrProtocol) {
		return failure(err, "the AMI at %s sent a malformed %s: %v", s.addr, what, err)
	}
	return failure(err, "the AMI at %s closed the connection during %s", s.addr, what)
}

// banner reads the greeting, "Asterisk Call Manager/VERSION".
func (s *amiSession) banner() error {
	line, err := s.line()
	if err != nil {
		return s.ioErr("the banner", err)
	}
	if !strings.HasPrefix(line, "Asterisk Call Manager/") {
		return failure(ErrProtocol, "%s is not an Asterisk manager: its banner is %q", s.addr, Sanitize(line))
	}
	return nil
}

// line reads one CRLF- (or LF-) terminated line of at most maxLine bytes.
func (s *amiSession) line() (string, error) {
	b, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: a line longer than %d bytes", ErrProtocol, maxLine)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// message reads one message: "Key: Value" lines up to an empty line.
func (s *amiSession) message() (map[string]string, error) {
	m := make(map[string]string)
	for n := 0; ; n++ {
		line, err := s.line()
		if err != nil {
			return nil, err
		}
		if line == "" {
			if len(m) == 0 {
				continue // a stray empty line between messages
			}
			return m, nil
		}
		if n >= maxFields {
			return nil, fmt.Errorf("%w: a message of more than %d lines", ErrProtocol, maxFields)
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: a line without a colon", ErrProtocol)
		}
		m[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
}

// do sends one action with its fields and an ActionID and returns the
// response with that ActionID: nil error for "Success" (or "Goodbye"), an
// *Error wrapping ErrRefused with the response's Message for "Error".
func (s *amiSession) do(action string, fields [][2]string) (map[string]string, error) {
	s.seq++
	id := fmt.Sprintf("%s-%d", s.id, s.seq)
	var b strings.Builder
	fmt.Fprintf(&b, "Action: %s\r\nActionID: %s\r\n", action, id)
	for _, f := range fields {
		if strings.ContainsFunc(f[1], isControl) {
			return nil, failure(ErrProtocol, "AMI field %s: control characters", f[0])
		}
		fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
	}
	b.WriteString("\r\n")
	if _, err := s.w.Write([]byte(b.String())); err != nil {
		return nil, s.ioErr(action, err)
	}
	for range maxMessages {
		m, err := s.message()
		if err != nil {
			return nil, s.ioErr("the "+action+" response", err)
		}
		if m["actionid"] != id || m["response"] == "" {
			continue // an event, or another action's response
		}
		switch strings.ToLower(m["response"]) {
		case "success", "goodbye":
			return m, nil
		case "error":
			msg := m["message"]
			if msg == "" {
				msg = "no message"
			}
			return m, failure(ErrRefused, "%s", msg)
		default:
			return m, failure(ErrProtocol, "the AMI at %s answered %s with Response %q", s.addr, action, Sanitize(m["response"]))
		}
	}
	return nil, failure(ErrProtocol, "the AMI at %s sent %d messages without answering %s", s.addr, maxMessages, action)
}
