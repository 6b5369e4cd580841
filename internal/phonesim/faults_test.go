package phonesim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/wire"
)

func ecKeygenRequest(c *srvConn) *wire.Message {
	return c.msg(wire.CmdKeyGenerateRequest).AddUint8(wire.TagKeyType, 1).AddUint8(wire.TagCurve, 0)
}

func TestRequestInProgressWhileGenerating(t *testing.T) {
	progress := make(chan int, 1)
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		c.send(ecKeygenRequest(c))
		n := 0
		for {
			m := expectOneOf(c, wire.CmdRequestInProgress, wire.CmdKeyGenerateResponse)
			if m.Command == wire.CmdKeyGenerateResponse {
				if !m.Has(wire.TagPublicKey) {
					c.fail("no PUBLIC_KEY after the delay")
				}
				break
			}
			if len(m.Elements) != 0 {
				c.fail("REQUEST_IN_PROGRESS with elements %v", m.Elements)
			}
			n++
		}
		progress <- n
		c.end(wire.ReasonNoAction)
	})
	o := srv.options(t, "SEP1")
	o.KeygenDelay, o.ProgressInterval = 300*time.Millisecond, 50*time.Millisecond
	start := time.Now()
	run(t, o)
	if d := time.Since(start); d < o.KeygenDelay {
		t.Errorf("key generation took %v, less than the delay", d)
	}
	if n := <-progress; n < 3 || n > 6 {
		t.Errorf("%d REQUEST_IN_PROGRESS in 300 ms at 50 ms intervals, want about 5", n)
	}
}

func expectOneOf(c *srvConn, cmds ...wire.Command) *wire.Message {
	c.t.Helper()
	m, err := c.recv()
	if err != nil {
		c.fail("waiting for %v: %v", cmds, err)
	}
	if !slices.Contains(cmds, m.Command) {
		c.fail("got %s, want one of %v", m.Command, cmds)
	}
	return m
}

func TestFailKeygen(t *testing.T) {
	first := make(chan *wire.Message, 1)
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		pub, m := c.keygen(ecKeygenRequest(c))
		if pub != nil {
			c.fail("first key generation succeeded despite FailKeygen")
		}
		first <- m
		c.install("SEP1", ecKeygenRequest(c)) // the server asks again
	})
	o := srv.options(t, "SEP1")
	o.FailKeygen = 1
	res := run(t, o)
	wantElements(t, <-first, map[wire.Tag][]byte{wire.TagReason: {7}})
	want := []string{"KEY_GENERATE_REQUEST", "KEY_GENERATE_REQUEST", "STORE_CERTIFICATE_REQUEST"}
	if !slices.Equal(res.Operations, want) || res.Installed == nil {
		t.Errorf("result %+v, want operations %v and an LSC", res, want)
	}
}

func TestUnsupportedKeyIsAFailedKeygen(t *testing.T) {
	reasons := make(chan []byte, 3)
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		for _, req := range []*wire.Message{
			c.msg(wire.CmdKeyGenerateRequest).AddUint8(wire.TagKeyType, 9),
			c.msg(wire.CmdKeyGenerateRequest).AddUint8(wire.TagKeyType, 1).AddUint8(wire.TagCurve, 7),
			c.msg(wire.CmdKeyGenerateRequest).AddUint16(wire.TagKeySize, 8192),
		} {
			pub, m := c.keygen(req)
			if pub != nil {
				c.fail("phone made a key for %v", req.Elements)
			}
			r, _ := m.Get(wire.TagReason)
			reasons <- r
		}
		c.end(wire.ReasonRefused)
	})
	res := run(t, srv.options(t, "SEP1"))
	for range 3 {
		if r := <-reasons; !bytes.Equal(r, []byte{7}) {
			t.Errorf("reason %v, want 7", r)
		}
	}
	if res.EndReason != wire.ReasonRefused {
		t.Errorf("end reason %v", res.EndReason)
	}
}

func TestStoreRefused(t *testing.T) {
	tests := []struct {
		name   string
		fault  bool // RefuseStore
		script func(c *srvConn)
	}{
		{"fault/refuse-store", true, func(c *srvConn) { c.install("SEP1", ecKeygenRequest(c)) }},
		{"certificate-for-another-key", false, func(c *srvConn) {
			if pub, _ := c.keygen(ecKeygenRequest(c)); pub == nil {
				c.fail("keygen failed")
			}
			other := c.srv.ca.credential(c.t, "SEP1", false)
			c.send(c.msg(wire.CmdStoreCertificateRequest).Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, other.Certificate.Raw)))
			r, _ := c.expect(wire.CmdStoreCertificateResponse).Get(wire.TagReason)
			c.end(wire.Reason(r[0]))
		}},
		{"store-without-keygen", false, func(c *srvConn) {
			other := c.srv.ca.credential(c.t, "SEP1", false)
			c.send(c.msg(wire.CmdStoreCertificateRequest).Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, other.Certificate.Raw)))
			r, _ := c.expect(wire.CmdStoreCertificateResponse).Get(wire.TagReason)
			c.end(wire.Reason(r[0]))
		}},
		{"garbage-certificate", false, func(c *srvConn) {
			c.keygen(ecKeygenRequest(c))
			c.send(c.msg(wire.CmdStoreCertificateRequest).Add(wire.TagCertificate, []byte{1, 0, 5, 0, 1, 0x30, 3, 1, 2}))
			r, _ := c.expect(wire.CmdStoreCertificateResponse).Get(wire.TagReason)
			c.end(wire.Reason(r[0]))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *srvConn, _ int) {
				c.auth()
				tc.script(c)
			})
			o := srv.options(t, "SEP1")
			o.RefuseStore = tc.fault
			res := run(t, o)
			if res.EndReason != wire.ReasonRefused || res.Installed != nil {
				t.Errorf("result %+v, want the store refused (7)", res)
			}
			if _, err := os.Stat(filepath.Join(o.StateDir, FileLSC)); !os.IsNotExist(err) {
				t.Errorf("lsc.pem written: %v", err)
			}
		})
	}
}

func TestDisconnectOnStoreThenRetry(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, n int) {
		if m := c.auth(); m.Has(wire.TagAuthType) {
			c.fail("AUTH_TYPE sent in session %d", n)
		}
		if n == 0 {
			pub, _ := c.keygen(ecKeygenRequest(c))
			cert := c.srv.ca.issue(c.t, "SEP1", pub)
			c.send(c.msg(wire.CmdStoreCertificateRequest).Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, cert.Raw)))
			c.expectEOF()
			return
		}
		c.install("SEP1", ecKeygenRequest(c))
	})
	o := srv.options(t, "SEP1")
	o.DisconnectOnStore = 1
	res := run(t, o)
	if res.Sessions != 2 || srv.sessions() != 2 || res.Installed == nil || res.EndReason != wire.ReasonSuccess {
		t.Errorf("result %+v (server saw %d sessions), want an LSC after 2 sessions", res, srv.sessions())
	}
}

func TestRetriesExhausted(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth() // then hang up without END_SESSION
	})
	o := srv.options(t, "SEP1")
	o.Retries = 2
	res, err := Run(context.Background(), o)
	if err == nil || errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("Run error %v, want a communication failure after 3 sessions", err)
	}
	if res.Sessions != 3 || srv.sessions() != 3 {
		t.Errorf("sessions %d (server %d), want 3", res.Sessions, srv.sessions())
	}
}

func TestMessageTimeout(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		c.expectEOF() // the phone gives up waiting
	})
	o := srv.options(t, "SEP1")
	o.MessageTimeout, o.Retries = 100*time.Millisecond, -1
	_, err := Run(context.Background(), o)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Run error %v, want a timeout", err)
	}
}

func TestRetryLater(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, n int) {
		switch n {
		case 0:
			c.auth()
			c.send(c.msg(wire.CmdRetryLater).AddUint16(wire.TagRetryDelay, 1))
			c.expectEOF()
		case 1: // a busy server may say so before AUTH_REQUEST
			c.send(c.msg(wire.CmdRetryLater))
			c.expectEOF()
		default:
			c.auth()
			c.end(wire.ReasonNoAction)
		}
	})
	o := srv.options(t, "SEP1")
	start := time.Now()
	res := run(t, o)
	if d := time.Since(start); d < time.Second {
		t.Errorf("run took %v, want at least the 1 s RETRY_DELAY", d)
	}
	if res.RetryLaterCount != 2 || res.Sessions != 3 || res.EndReason != wire.ReasonNoAction {
		t.Errorf("result %+v, want 2 RETRY_LATER in 3 sessions", res)
	}

	t.Run("counts-toward-retries", func(t *testing.T) {
		srv := newFakeServer(t, func(c *srvConn, _ int) {
			c.auth()
			c.send(c.msg(wire.CmdRetryLater))
		})
		o := srv.options(t, "SEP1")
		o.Retries = 1
		res, err := Run(context.Background(), o)
		if !errors.Is(err, ErrRetryLater) || res.Sessions != 2 {
			t.Errorf("Run = %+v, %v; want ErrRetryLater after 2 sessions", res, err)
		}
	})
}

func TestDisconnectAfterAuth(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		c.expectEOF()
	})
	o := srv.options(t, "SEP1")
	o.DisconnectAfterAuth = true
	res, err := Run(context.Background(), o)
	if !errors.Is(err, ErrFault) || res.Sessions != 1 {
		t.Errorf("Run = %+v, %v; want ErrFault after one session", res, err)
	}
}

func TestServerProtocolViolations(t *testing.T) {
	tests := []struct {
		name   string
		script func(c *srvConn)
	}{
		{"session-id-mismatch", func(c *srvConn) {
			c.auth()
			c.send(wire.New(wire.CmdKeyGenerateRequest, c.id+1))
		}},
		{"wrong-protocol-id", func(c *srvConn) { c.sendRaw([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }},
		{"element-past-payload", func(c *srvConn) {
			c.auth()
			c.sendRaw([]byte{0x55, 15, 0x5E, 0x55, 0, 0, 0, 4, 1, 0, 9, 1})
		}},
		{"first-message-not-auth", func(c *srvConn) { c.send(c.msg(wire.CmdKeyGenerateRequest)) }},
		{"end-session-without-reason", func(c *srvConn) {
			c.auth()
			c.send(c.msg(wire.CmdEndSession))
		}},
		{"duplicate-element", func(c *srvConn) {
			c.auth()
			c.send(c.msg(wire.CmdEndSession).AddUint8(wire.TagReason, 1).AddUint8(wire.TagReason, 0))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *srvConn, _ int) {
				tc.script(c)
				c.recv() // wait for the phone to hang up
			})
			res, err := Run(context.Background(), srv.options(t, "SEP1"))
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Run error %v, want ErrProtocol", err)
			}
			if res.Sessions != 1 {
				t.Errorf("%d sessions: a protocol violation must not be retried", res.Sessions)
			}
		})
	}
}

func TestIgnoresUnknownMessages(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		c.send(c.msg(wire.Command(99)).AddUint8(wire.Tag(200), 1))
		c.send(c.msg(wire.CmdEncryptRequest))
		c.send(c.msg(wire.CmdEndSession).AddUint8(wire.TagReason, 9).AddString(wire.TagReasonInfo, "unknown device"))
	})
	res := run(t, srv.options(t, "SEPBAD"))
	if res.EndReason != wire.ReasonUnknownDevice || res.ReasonInfo != "unknown device" || len(res.Operations) != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestServerTrust(t *testing.T) {
	other := newTestCA(t, "someone else")
	tests := []struct {
		name  string
		trust func(*fakeServer) []*x509.Certificate
		ok    bool
	}{
		{"leaf-in-ctl", func(s *fakeServer) []*x509.Certificate { return []*x509.Certificate{s.tlsCert} }, true},
		{"chains-to-ctl-entry", func(s *fakeServer) []*x509.Certificate { return []*x509.Certificate{other.cert, s.ca.cert} }, true},
		{"fail/untrusted", func(*fakeServer) []*x509.Certificate { return []*x509.Certificate{other.cert} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(c *srvConn, _ int) {
				c.auth()
				c.end(wire.ReasonNoAction)
			})
			o := srv.options(t, "SEP1")
			o.Trust = tc.trust(srv)
			res, err := Run(context.Background(), o)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUntrusted) || res.Sessions != 1 {
				t.Errorf("Run = %+v, %v; want ErrUntrusted without retry", res, err)
			}
		})
	}
}

func TestSingleRead(t *testing.T) {
	// The fake server writes AUTH_REQUEST's header and payload separately,
	// so they arrive in two TLS records.
	split := func(c *srvConn, _ int) {
		b, _ := c.msg(wire.CmdAuthRequest).AddUint8(wire.TagVersion, 3).Encode()
		c.sendRaw(b[:wire.HeaderLen])
		time.Sleep(50 * time.Millisecond)
		c.sendRaw(b[wire.HeaderLen:])
		m, err := c.recv()
		if err != nil {
			return // the single-read phone hung up
		}
		if m.Command != wire.CmdAuthResponse {
			c.fail("got %s", m.Command)
		}
		c.end(wire.ReasonNoAction)
	}
	tests := []struct {
		name      string
		device    string
		setup     func(*Options)
		wantSplit bool // the phone must fail
	}{
		{"softphone-default", "CSFJDOE", func(*Options) {}, true},
		{"softphone-framed", "CSFJDOE", func(o *Options) { o.FramedReads = true }, false},
		{"hardphone-default", "SEP0011223344AA", func(*Options) {}, false},
		{"hardphone-single-read", "SEP0011223344AA", func(o *Options) { o.SingleRead = true }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, split)
			o := srv.options(t, tc.device)
			tc.setup(&o)
			res, err := Run(context.Background(), o)
			if !tc.wantSplit {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "split") || res.Sessions != 1 {
				t.Errorf("Run = %+v, %v; want a split-message protocol error", res, err)
			}
		})
	}
}

func TestSoftphoneInstallWithSingleRead(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		if v, _ := c.auth().Get(wire.TagVersion); !bytes.Equal(v, []byte{2}) {
			c.fail("softphone VERSION %v, want 2", v)
		}
		c.install("CSFJDOE", c.msg(wire.CmdKeyGenerateRequest).AddUint16(wire.TagKeySize, 2048))
	})
	res := run(t, srv.options(t, "CSFJDOE"))
	if res.Installed == nil {
		t.Error("no LSC installed")
	}
}

func TestLegacyTLS(t *testing.T) {
	script := func(c *srvConn, _ int) {
		c.auth()
		c.end(wire.ReasonNoAction)
	}
	t.Run("79xx-profile", func(t *testing.T) {
		srv := newFakeServer(t, script, withRSACert(), withLegacyTLS())
		o := srv.options(t, "SEP1")
		o.MinVersion, o.MaxVersion, o.CipherSuites = tls.VersionTLS10, tls.VersionTLS10, LegacyCipherSuites()
		run(t, o)
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.states) != 1 || srv.states[0].Version != tls.VersionTLS10 {
			t.Errorf("TLS states %+v, want one TLS 1.0 session", srv.states)
		}
	})
	t.Run("fail/modern-phone-legacy-server", func(t *testing.T) {
		srv := newFakeServer(t, script, withRSACert(), withLegacyTLS())
		res, err := Run(context.Background(), srv.options(t, "SEP1"))
		if err == nil || res.Sessions != 1 {
			t.Errorf("Run = %+v, %v; want a handshake error without retry", res, err)
		}
	})
}

func TestContextCancel(t *testing.T) {
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		c.auth()
		c.send(ecKeygenRequest(c))
		c.recv() // the phone hangs up when cancelled
	})
	o := srv.options(t, "SEP1")
	o.KeygenDelay = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, o)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Run error %v after %v, want the context's error promptly", err, time.Since(start))
	}
}

func TestOptionsErrors(t *testing.T) {
	_, err := Run(context.Background(), Options{AuthMode: "bogus"})
	for _, want := range []string{"server", "trusted", "device name", "bogus"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
	srv := newFakeServer(t, nil)
	o := srv.options(t, "SEP1")
	o.AuthMode = AuthModeLSC
	if _, err := Run(context.Background(), o); err == nil || srv.sessions() != 0 {
		t.Errorf("lsc mode without any certificate: %v after %d sessions", err, srv.sessions())
	}
}
