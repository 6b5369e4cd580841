package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/wire"
)

// enroll schedules an install with null authentication and runs the phone
// until it holds an LSC.
func enroll(t *testing.T, s *server, name, state, key string) *phonesim.Result {
	t.Helper()
	s.mustCapf("device", "add", name, "--operation", "install", "--key", key)
	res, err := s.phone(name, state, nil)
	if err != nil || res.Installed == nil {
		t.Fatalf("enroll %s: %+v %v", name, res, err)
	}
	return res
}

func TestFailures(t *testing.T) {
	s := startServer(t, nil, "")

	t.Run("fail/wrong-string", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "string", "--auth-string", "24681357", "--operation", "install", "--key", "ec256")
		res, err := s.phone(name, "", func(o *phonesim.Options) { o.AuthString = "11112222" })
		if err != nil || res.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", res, err)
		}
		d := s.device(name)
		if d.Status != "Upgrade Failed: Invalid Authentication String" || d.Operation != "install" || d.AuthString != "24681357" {
			t.Fatalf("device %+v: want failure recorded and the operation still armed", d)
		}
		// The user types it again, correctly.
		res, err = s.phone(name, "", func(o *phonesim.Options) { o.AuthString = "24681357" })
		if err != nil || res.EndReason != wire.ReasonSuccess {
			t.Fatalf("retry with the right string: %+v %v", res, err)
		}
	})

	t.Run("fail/reused-string", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "string", "--auth-string", "5555", "--operation", "install", "--key", "ec256")
		if res, err := s.phone(name, "", func(o *phonesim.Options) { o.AuthString = "5555" }); err != nil || res.EndReason != wire.ReasonSuccess {
			t.Fatalf("first use: %+v %v", res, err)
		}
		// Re-arming without a string generates a new one; the old one is spent.
		s.mustCapf("device", "set", name, "--operation", "install")
		d := s.device(name)
		if d.AuthString == "" || d.AuthString == "5555" {
			t.Fatalf("re-armed string %q", d.AuthString)
		}
		res, err := s.phone(name, "", func(o *phonesim.Options) { o.AuthString = "5555" })
		if err != nil || res.EndReason != wire.ReasonRefused {
			t.Fatalf("reuse: %+v %v", res, err)
		}
		if got := s.device(name).Status; got != "Upgrade Failed: Invalid Authentication String" {
			t.Fatalf("status %q", got)
		}
	})

	t.Run("fail/unknown-device", func(t *testing.T) {
		res, err := s.phone("SEP0000DEADBEEF", "", nil)
		if err != nil || res.EndReason != wire.ReasonUnknownDevice {
			t.Fatalf("%+v %v", res, err)
		}
	})

	t.Run("fail/past-deadline", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256", "--deadline", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		// Move the deadline into the past behind the service's back, as time would.
		st, err := sqlite.Open(context.Background(), filepath.Join(s.data, "capf.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = st.UpdateDevice(context.Background(), name, device.CLIActor("test"), func(d *device.Device) error {
			d.Deadline = time.Now().Add(-time.Minute)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		res, err := s.phone(name, "", nil)
		if err != nil || res.EndReason != wire.ReasonNoAction || res.Installed != nil {
			t.Fatalf("%+v %v", res, err)
		}
		if got := s.device(name); got.Status != "Upgrade Failed: User Initiated Request Late/Timedout" || got.LSCStatus != "none" {
			t.Fatalf("device %+v", got)
		}
	})

	t.Run("fail/bad-signature", func(t *testing.T) {
		name := newPhoneName()
		state := t.TempDir()
		res := enroll(t, s, name, state, "ec256")
		s.mustCapf("device", "set", name, "--auth-mode", "lsc", "--operation", "install")
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		forged := &phonesim.Credential{Certificate: res.Installed, Key: other}
		r, err := s.phone(name, t.TempDir(), func(o *phonesim.Options) { o.LSC = forged; o.AuthMode = phonesim.AuthModeLSC })
		if err != nil || r.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", r, err)
		}
		if got := s.device(name).Status; got != "Upgrade Failed: Invalid LSC" {
			t.Fatalf("status %q", got)
		}
	})

	t.Run("fail/lsc-of-another-device", func(t *testing.T) {
		a, b := newPhoneName(), newPhoneName()
		state := t.TempDir()
		enroll(t, s, a, state, "ec256")
		s.mustCapf("device", "add", b, "--auth-mode", "lsc", "--operation", "install", "--key", "ec256")
		lsc, err := phonesim.LoadLSC(state)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.phone(b, t.TempDir(), func(o *phonesim.Options) { o.LSC = lsc; o.AuthMode = phonesim.AuthModeLSC })
		if err != nil || r.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", r, err)
		}
	})

	t.Run("fail/untrusted-mic", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "mic", "--operation", "install", "--key", "ec256")
		rogue := newPKI(t, "Rogue CA")
		r, err := s.phone(name, "", func(o *phonesim.Options) { o.MIC = rogue.issue(t, "CP-8845-"+name, false, false) })
		if err != nil || r.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", r, err)
		}
		if got := s.device(name).Status; got != "Upgrade Failed: Invalid MIC" {
			t.Fatalf("status %q", got)
		}
	})

	t.Run("fail/expired-mic-not-allowed", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "mic", "--operation", "install", "--key", "ec256")
		r, err := s.phone(name, "", func(o *phonesim.Options) { o.MIC = s.mfr.issue(t, "CP-7961G-"+name, true, true) })
		if err != nil || r.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", r, err)
		}
		if got := s.device(name).Status; got != "Upgrade Failed: Invalid MIC" {
			t.Fatalf("status %q", got)
		}
	})

	t.Run("ok/mic-with-sudi", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "mic", "--operation", "install", "--key", "ec384")
		r, err := s.phone(name, "", func(o *phonesim.Options) {
			o.MIC = s.mfr.issue(t, "CP-8865-"+name, false, false)
			o.SUDI = s.mfr.issue(t, "CP-8865-SUDI-"+name, true, false)
		})
		if err != nil || r.EndReason != wire.ReasonSuccess {
			t.Fatalf("%+v %v", r, err)
		}
	})

	// An untrusted SUDI is recorded, not fatal, under the default
	// sudi_verification (when-trusted); TestMatrixSUDI covers every policy.
	t.Run("ok/sudi-untrusted-recorded", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "mic", "--operation", "install", "--key", "ec256")
		rogue := newPKI(t, "Rogue SUDI CA")
		r, err := s.phone(name, "", func(o *phonesim.Options) {
			o.MIC = s.mfr.issue(t, "CP-8865-"+name, false, false)
			o.SUDI = rogue.issue(t, "SUDI-"+name, false, false)
		})
		if err != nil || r.EndReason != wire.ReasonSuccess {
			t.Fatalf("%+v %v", r, err)
		}
		if h := s.device(name).History; len(h) == 0 || h[0].SUDI != "not verified: unknown issuer" {
			t.Fatalf("history %+v, want the SUDI recorded as not verified", h)
		}
	})

	t.Run("ok/keygen-failure-then-retry", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
		r, err := s.phone(name, "", func(o *phonesim.Options) { o.FailKeygen = 1 })
		if err != nil || r.EndReason != wire.ReasonSuccess {
			t.Fatalf("%+v %v", r, err)
		}
		if n := strings.Count(strings.Join(r.Operations, " "), "KEY_GENERATE_REQUEST"); n != 2 {
			t.Errorf("KEY_GENERATE_REQUESTs answered: %d, want 2 (%v)", n, r.Operations)
		}
	})

	t.Run("fail/keygen-attempts-exhausted", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
		r, err := s.phone(name, "", func(o *phonesim.Options) { o.FailKeygen = 10 })
		if err != nil || r.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", r, err)
		}
		if got := s.device(name).Status; got != "Upgrade Failed: Key Generation Failed" {
			t.Fatalf("status %q", got)
		}
	})

	t.Run("ok/request-in-progress", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
		r, err := s.phone(name, "", func(o *phonesim.Options) {
			o.KeygenDelay, o.ProgressInterval = 300*time.Millisecond, 50*time.Millisecond
		})
		if err != nil || r.EndReason != wire.ReasonSuccess {
			t.Fatalf("%+v %v", r, err)
		}
	})

	t.Run("ok/disconnect-mid-install-then-retry", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--auth-mode", "string", "--auth-string", "7531", "--operation", "install", "--key", "ec256")
		r, err := s.phone(name, "", func(o *phonesim.Options) { o.AuthString = "7531"; o.DisconnectOnStore = 1 })
		if err != nil || r.EndReason != wire.ReasonSuccess || r.Sessions != 2 {
			t.Fatalf("%+v %v", r, err)
		}
		d := s.device(name)
		if d.Status != "Upgrade Success" || len(d.History) < 2 {
			t.Fatalf("device %+v", d)
		}
		if d.History[1].Result != "Upgrade Failed: Phone Communication Failure" {
			t.Errorf("first attempt recorded as %q", d.History[1].Result)
		}
		// Both certificates that left the CA are on record.
		out := s.mustCapf("device", "show", name)
		if !strings.Contains(out, "Upgrade Success") {
			t.Errorf("show: %s", out)
		}
		assertIssuances(t, s, name, 2)
	})

	t.Run("fail/phone-refuses-store", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
		r, err := s.phone(name, "", func(o *phonesim.Options) { o.RefuseStore = true })
		if err != nil || r.EndReason != wire.ReasonRefused {
			t.Fatalf("%+v %v", r, err)
		}
		if got := s.device(name).Status; got != "Upgrade Failed: Phone Refused Certificate" {
			t.Fatalf("status %q", got)
		}
		assertIssuances(t, s, name, 1)
	})

	t.Run("fail/garbage-and-oversized-frames", func(t *testing.T) {
		name := newPhoneName()
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
		header := make([]byte, 8)
		header[0], header[1] = 0x55, byte(wire.CmdAuthResponse)
		binary.BigEndian.PutUint16(header[6:], 60000)
		for _, bad := range [][]byte{
			[]byte("GET / HTTP/1.0\r\n\r\n"),
			header, // oversized: 60,000-byte payload announced
			{0x55, 0x02, 0, 0, 0, 1, 0, 5, 13, 0, 9, 0, 0}, // a complete frame whose element runs past the payload
		} {
			conn, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			first := make([]byte, 64)
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Read(first); err != nil {
				t.Fatalf("AUTH_REQUEST: %v", err)
			}
			if _, err := conn.Write(bad); err != nil {
				t.Fatal(err)
			}
			// The server answers END_SESSION(7) at once (message_timeout is
			// 10 s): a read error or a late answer fails.
			reply := make([]byte, 64)
			start := time.Now()
			_ = conn.SetReadDeadline(start.Add(3 * time.Second))
			n, err := conn.Read(reply)
			if err != nil {
				t.Fatalf("no answer to garbage % x: %v", bad, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("garbage answered after %v", d)
			}
			if n < 2 || reply[1] != byte(wire.CmdEndSession) || reply[n-1] != byte(wire.ReasonRefused) {
				t.Errorf("reply to garbage % x", reply[:n])
			}
			conn.Close()
		}
		// Plain TCP garbage, no TLS at all.
		raw, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = raw.Write([]byte("\x00\x01garbage"))
		raw.Close()
		// The next phone is served.
		r, err := s.phone(name, "", nil)
		if err != nil || r.EndReason != wire.ReasonSuccess {
			t.Fatalf("after garbage: %+v %v", r, err)
		}
	})

	t.Run("ok/softphone-version-2-single-read", func(t *testing.T) {
		name := "CSFJDOE" + strings.TrimPrefix(newPhoneName(), "SEP")
		s.mustCapf("device", "add", name, "--operation", "install", "--key", "rsa1024")
		r, err := s.phone(name, "", nil)
		if err != nil || r.EndReason != wire.ReasonSuccess {
			t.Fatalf("%+v %v", r, err)
		}
	})

	t.Run("fail/untrusted-server", func(t *testing.T) {
		other := newPKI(t, "Some other CAPF")
		_, err := phonesim.Run(context.Background(), phonesim.Options{Server: s.addr, Trust: []*x509.Certificate{other.cert}, DeviceName: newPhoneName(), Retries: -1})
		if !errors.Is(err, phonesim.ErrUntrusted) {
			t.Fatalf("err = %v, want untrusted", err)
		}
	})
}

func assertIssuances(t *testing.T, s *server, name string, want int) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(s.data, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	is, err := st.ListIssuances(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if len(is) != want {
		t.Fatalf("%d issuances recorded for %s, want %d", len(is), name, want)
	}
}

// TestRebootMidKeyGeneration: an old phone is power-cycled while it
// generates its key; it reconnects from the same address while the server
// still holds its first session, and the new session takes over.
func TestRebootMidKeyGeneration(t *testing.T) {
	s := startServer(t, nil, "")
	name := newPhoneName()
	s.mustCapf("device", "add", name, "--operation", "install", "--key", "ec256")
	firstDone := make(chan error, 1)
	go func() {
		_, err := s.phone(name, "", func(o *phonesim.Options) {
			o.KeygenDelay, o.ProgressInterval, o.Retries = time.Minute, time.Second, -1
		})
		firstDone <- err
	}()
	waitFor(t, func() bool {
		h := s.device(name).History
		return len(h) > 0 && h[0].Result == "" // the first session is in progress
	})
	res, err := s.phone(name, "", nil)
	if err != nil || res.EndReason != wire.ReasonSuccess {
		t.Fatalf("reconnected phone: %+v %v", res, err)
	}
	if err := <-firstDone; err == nil {
		t.Error("the superseded session ended normally")
	}
	d := s.device(name)
	if d.Status != "Upgrade Success" || len(d.History) != 2 || !strings.Contains(d.History[1].Reason, "superseded") {
		t.Fatalf("device %+v", d)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
