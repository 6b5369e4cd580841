package notify

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// amiServer is a small Asterisk manager written from Asterisk's documented
// AMI protocol (docs.asterisk.org, AMI_Actions/Login and PJSIPNotify):
// "Key: Value" lines ending in CRLF, a message ending in an empty line, a
// banner "Asterisk Call Manager/VERSION" on connect, every response
// carrying the action's ActionID. It checks what a client sends and
// answers Success or Error as Asterisk does.
type amiServer struct {
	t        *testing.T
	ln       net.Listener
	user     string
	secret   string
	mode     string // "ok", "refuse-notify", "silent", "silent-after-login"
	mu       sync.Mutex
	actions  []map[string]string
	problems []string
	wg       sync.WaitGroup
}

func startAMI(t *testing.T, mode string) *amiServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &amiServer{t: t, ln: ln, user: "capf", secret: "s3cret", mode: mode}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *amiServer) addr() string { return s.ln.Addr().String() }

func (s *amiServer) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func (s *amiServer) recorded() ([]map[string]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.actions...), append([]string(nil), s.problems...)
}

func (s *amiServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			s.conn(c)
		}()
	}
}

// readAction reads one message; every line must end in CRLF.
func readAction(r *bufio.Reader) (map[string]string, []string, error) {
	m := map[string]string{}
	var bad []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, nil, err
		}
		if !strings.HasSuffix(line, "\r\n") {
			bad = append(bad, fmt.Sprintf("line %q does not end in CRLF", line))
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return m, bad, nil
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			bad = append(bad, fmt.Sprintf("line %q is not Key: Value", line))
			continue
		}
		if _, dup := m[k]; dup {
			bad = append(bad, "duplicate field "+k)
		}
		m[k] = v
	}
}

func (s *amiServer) conn(c net.Conn) {
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "Asterisk Call Manager/9.0.0\r\n")
	if s.mode == "silent" {
		_, _ = io.Copy(io.Discard, r) // never answer; wait for the client to give up
		return
	}
	loggedIn := false
	for {
		m, bad, err := readAction(r)
		if err != nil {
			return
		}
		for _, b := range bad {
			s.problem("%s", b)
		}
		s.mu.Lock()
		s.actions = append(s.actions, m)
		s.mu.Unlock()
		id := m["ActionID"]
		if id == "" {
			s.problem("action %s without ActionID", m["Action"])
		}
		reply := func(resp, msg string) {
			// An event first, with another ActionID: a client must skip it.
			fmt.Fprintf(c, "Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
			fmt.Fprintf(c, "Response: %s\r\nActionID: %s\r\nMessage: %s\r\n\r\n", resp, id, msg)
		}
		switch strings.ToLower(m["Action"]) {
		case "login":
			if m["Username"] != s.user || m["Secret"] != s.secret {
				reply("Error", "Authentication failed")
				return // Asterisk closes the connection
			}
			loggedIn = true
			reply("Success", "Authentication accepted")
			if s.mode == "silent-after-login" {
				_, _ = io.Copy(io.Discard, r) // never answer; wait for the client to give up
				return
			}
		case "pjsipnotify":
			if !loggedIn {
				reply("Error", "Permission denied")
				continue
			}
			if m["Variable"] != "Event=check-sync" {
				s.problem("PJSIPNotify Variable %q", m["Variable"])
			}
			if s.mode == "refuse-notify" || !strings.HasPrefix(m["Endpoint"], "SEP") {
				reply("Error", "Unable to retrieve endpoint "+m["Endpoint"]+"\x1b[31m")
				continue
			}
			reply("Success", "NOTIFY sent")
		case "logoff":
			fmt.Fprintf(c, "Response: Goodbye\r\nActionID: %s\r\nMessage: Thanks for all the fish.\r\n\r\n", id)
			return
		default:
			reply("Error", "Invalid/unknown command")
		}
	}
}

func newTestAMI(t *testing.T, addr, secret string, endpoint Endpoint, timeout time.Duration) *AMI {
	t.Helper()
	a, err := NewAMI(AMIOptions{Address: addr, Username: "capf", Secret: secret, Endpoint: endpoint, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAMINotify(t *testing.T) {
	s := startAMI(t, "ok")
	a := newTestAMI(t, s.addr(), "s3cret", "", 5*time.Second)
	if err := a.Notify(t.Context(), "SEP001122334455"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	acts, problems := s.recorded()
	if len(problems) > 0 {
		t.Errorf("server saw problems: %q", problems)
	}
	var names []string
	ids := map[string]bool{}
	for _, m := range acts {
		names = append(names, m["Action"])
		if ids[m["ActionID"]] {
			t.Errorf("ActionID %q used twice", m["ActionID"])
		}
		ids[m["ActionID"]] = true
	}
	if got := strings.Join(names, ","); got != "Login,PJSIPNotify,Logoff" {
		t.Fatalf("actions %s, want Login,PJSIPNotify,Logoff", got)
	}
	if acts[0]["Events"] != "off" {
		t.Errorf("Login Events %q, want off", acts[0]["Events"])
	}
	if acts[1]["Endpoint"] != "SEP001122334455" || acts[1]["Variable"] != "Event=check-sync" {
		t.Errorf("PJSIPNotify fields %v", acts[1])
	}
}

func TestAMIEndpointTemplate(t *testing.T) {
	s := startAMI(t, "ok")
	a := newTestAMI(t, s.addr(), "s3cret", "SEP-{device}-x", 5*time.Second)
	if err := a.Notify(t.Context(), "SEP001122334455"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	acts, _ := s.recorded()
	if got := acts[1]["Endpoint"]; got != "SEP-SEP001122334455-x" {
		t.Errorf("Endpoint %q", got)
	}
}

func TestAMIFailures(t *testing.T) {
	tests := []struct {
		name, mode, secret, device string
		want                       error
		reason                     string
	}{
		{"fail/wrong-secret", "ok", "wrong", "SEP001122334455", ErrLogin, "AMI login as capf refused: Authentication failed"},
		{"fail/unknown-endpoint", "ok", "s3cret", "CSFUSER1", ErrRefused, "the PBX refused the NOTIFY to CSFUSER1: Unable to retrieve endpoint CSFUSER1?[31m"},
		{"fail/no-answer", "silent", "s3cret", "SEP001122334455", ErrTimeout, "did not answer the Login response within 300ms"},
		{"fail/no-answer-to-notify", "silent-after-login", "s3cret", "SEP001122334455", ErrTimeout, "did not answer the PJSIPNotify response within 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startAMI(t, tc.mode)
			a := newTestAMI(t, s.addr(), tc.secret, "", 300*time.Millisecond)
			start := time.Now()
			err := a.Notify(t.Context(), tc.device)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("reason %q, want it to contain %q", err.Error(), tc.reason)
			}
			if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("reason %q shows the secret", err.Error())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s, want about the time-out", d)
			}
		})
	}
}

func TestAMINotAnAMI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "SSH-2.0-OpenSSH_9.6\r\n")
		_, _ = bufio.NewReader(c).ReadByte()
	}()
	a := newTestAMI(t, ln.Addr().String(), "s3cret", "", time.Second)
	err = a.Notify(t.Context(), "SEP001122334455")
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "is not an Asterisk manager") {
		t.Fatalf("err %v, want a protocol error naming the banner", err)
	}
}

func TestAMIConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := newTestAMI(t, addr, "s3cret", "", time.Second)
	err = a.Notify(t.Context(), "SEP001122334455")
	if err == nil || !strings.Contains(err.Error(), "cannot connect to the AMI at "+addr) {
		t.Fatalf("err %v", err)
	}
}

func TestAMIOverlongLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "Asterisk Call Manager/9.0.0\r\n")
		_, _, _ = readAction(bufio.NewReader(c))
		fmt.Fprintf(c, "Response: Success\r\nMessage: %s\r\n", strings.Repeat("A", 10_000))
	}()
	a := newTestAMI(t, ln.Addr().String(), "s3cret", "", time.Second)
	err = a.Notify(t.Context(), "SEP001122334455")
	if !errors.Is(err, ErrProtocol) || len(err.Error()) > MaxReason+32 {
		t.Fatalf("err %v, want a bounded protocol error", err)
	}
}

func TestNewAMIRefuses(t *testing.T) {
	tests := []struct {
		name string
		o    AMIOptions
	}{
		{"fail/address", AMIOptions{Address: "pbx", Username: "u", Secret: "s"}},
		{"fail/user-crlf", AMIOptions{Address: "pbx:5038", Username: "u\r\nAction: Command", Secret: "s"}},
		{"fail/secret-crlf", AMIOptions{Address: "pbx:5038", Username: "u", Secret: "s\r\n"}},
		{"fail/endpoint-without-device", AMIOptions{Address: "pbx:5038", Username: "u", Secret: "s", Endpoint: "phone"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewAMI(tc.o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAMIRefusesInjectedEndpoint(t *testing.T) {
	a := newTestAMI(t, "127.0.0.1:1", "s3cret", "", time.Second)
	if err := a.Notify(context.Background(), "SEP1\r\nAction: Command"); err == nil {
		t.Fatal("a device name with CRLF was sent")
	}
}
