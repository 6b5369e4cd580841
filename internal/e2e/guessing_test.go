package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// guessOnce is an attacker's script: it connects from src over TLS (not
// checking the server, as an attacker would not), answers AUTH_REQUEST
// with name and str as a phone in string mode would, and returns the
// server's answer.
func guessOnce(t *testing.T, src, addr, name, str string) (wire.Command, wire.Reason) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Errorf("dial from %s: %v", src, err)
		return 0, 0
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	frame, err := wire.ReadFrame(c, nil, 1<<16)
	if err != nil {
		t.Errorf("read AUTH_REQUEST: %v", err)
		return 0, 0
	}
	req, err := wire.Decode(frame)
	if err != nil || req.Command != wire.CmdAuthRequest {
		t.Errorf("first message %v %v", req, err)
		return 0, 0
	}
	m := wire.New(wire.CmdAuthResponse, req.SessionID).AddUint8(wire.TagReason, uint8(wire.ReasonSuccess)).
		AddUint8(wire.TagVersion, 3).AddString(wire.TagDeviceName, name).AddString(wire.TagPassword, str)
	b, _ := m.Encode()
	if _, err := c.Write(b); err != nil {
		t.Errorf("write: %v", err)
		return 0, 0
	}
	frame, err = wire.ReadFrame(c, nil, 1<<16)
	if err != nil {
		t.Errorf("read answer: %v", err)
		return 0, 0
	}
	ans, err := wire.Decode(frame)
	if err != nil {
		t.Errorf("decode answer: %v", err)
		return 0, 0
	}
	r, _ := ans.Uint8(wire.TagReason)
	return ans.Command, wire.Reason(r)
}

// TestBruteForceBounded: hundreds of wrong guesses for one device from
// several addresses; at most auth_string_max_failures are evaluated, the
// right string afterwards is refused, a new string from the administrator
// enrols the phone, and another phone enrols during the attack.
func TestBruteForceBounded(t *testing.T) {
	s := startServer(t, serverParams{"auth_string_max_failures": 5, "auth_failures_per_address": 0, "auth_string_backoff": "5ms"}, "", "--metrics-listen", "127.0.0.1:0")
	victim, other := newPhoneName(), newPhoneName()
	s.mustCapf("device", "add", victim, "--auth-mode", "string", "--auth-string", "24681357", "--operation", "install", "--key", "ec256")
	s.mustCapf("device", "add", other, "--auth-mode", "string", "--auth-string", "11335577", "--operation", "install", "--key", "ec256")

	var refused, retry, other7 atomic.Int64
	var wg sync.WaitGroup
	for a := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("127.0.%d.%d", 40+a, 1+a)
			for i := range 75 {
				cmd, r := guessOnce(t, src, s.addr, victim, fmt.Sprintf("%04d", a*1000+i))
				switch {
				case cmd == wire.CmdEndSession && r == wire.ReasonRefused:
					refused.Add(1)
				case cmd == wire.CmdRetryLater:
					retry.Add(1)
				default:
					other7.Add(1)
				}
			}
		}()
	}
	// Another phone enrols during the attack.
	res, err := s.phone(other, "", func(o *phonesim.Options) {
		o.AuthMode, o.AuthString, o.LocalAddr = phonesim.AuthModeString, "11335577", "127.0.0.77"
	})
	if err != nil || res.Installed == nil {
		t.Errorf("another phone during the attack: %+v %v", res, err)
	}
	wg.Wait()
	if n := refused.Load() + retry.Load() + other7.Load(); n != 300 {
		t.Fatalf("%d answers, want 300", n)
	}
	if other7.Load() != 0 {
		t.Errorf("%d unexpected answers", other7.Load())
	}
	d := s.device(victim)
	if d.Status != "Upgrade Failed: Too Many Authentication Failures" || d.AuthString != "" || d.Operation != "install" {
		t.Fatalf("victim after the attack: %+v", d)
	}
	evaluated := 0
	for _, h := range d.History {
		if strings.Contains(h.Reason, "does not match") {
			evaluated++
		}
	}
	if evaluated > 5 {
		t.Errorf("%d guesses were evaluated, want at most auth_string_max_failures = 5", evaluated)
	}
	t.Logf("300 guesses: %d refused, %d told to retry later, %d evaluated", refused.Load(), retry.Load(), evaluated)

	// The right string after the limit is refused.
	res, err = s.phone(victim, "", func(o *phonesim.Options) {
		o.AuthMode, o.AuthString, o.Retries = phonesim.AuthModeString, "24681357", -1
	})
	if err == nil && res.Installed != nil {
		t.Fatal("the right string was accepted after the limit")
	}
	// The administrator's new string enrols the phone at once.
	s.mustCapf("device", "set", victim, "--auth-string", "97531864")
	res, err = s.phone(victim, "", func(o *phonesim.Options) {
		o.AuthMode, o.AuthString = phonesim.AuthModeString, "97531864"
	})
	if err != nil || res.Installed == nil {
		t.Fatalf("enrolment with the new string: %+v %v", res, err)
	}
	waitMetric(t, s, "capf_auth_strings_used_up_total", "1")
}

// TestWrongGuessDoesNotCutPhoneOff: while a phone generates its key, a
// wrong guess for its device from its own address (a stranger behind the
// same NAT) is refused and the phone's session completes without a retry.
func TestWrongGuessDoesNotCutPhoneOff(t *testing.T) {
	s := startServer(t, nil, "", "--metrics-listen", "127.0.0.1:0")
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--auth-mode", "string", "--auth-string", "24681357", "--operation", "install", "--key", "ec256")
	done := make(chan struct{})
	var res *phonesim.Result
	var err error
	go func() {
		defer close(done)
		res, err = s.phone(name, "", func(o *phonesim.Options) {
			o.AuthMode, o.AuthString, o.LocalAddr = phonesim.AuthModeString, "24681357", "127.0.0.55"
			o.KeygenDelay, o.ProgressInterval = 1500*time.Millisecond, 200*time.Millisecond
		})
	}()
	// Wait until the phone's session is generating its key.
	waitMetric(t, s, "capf_sessions_waiting_for_key", "1")
	cmd, r := guessOnce(t, "127.0.0.55", s.addr, name, "0000")
	if cmd != wire.CmdEndSession || r != wire.ReasonRefused {
		t.Errorf("stranger's guess answered %s %s, want END_SESSION refused", cmd, r)
	}
	<-done
	if err != nil || res.Installed == nil || res.Sessions != 1 {
		t.Fatalf("phone: %+v %v; want its one session to install the LSC", res, err)
	}
	if d := s.device(name); d.Status != "Upgrade Success" {
		t.Errorf("status %q", d.Status)
	}
}
