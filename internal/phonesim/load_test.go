package phonesim

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/wire"
)

// This file tests the options a load test relies on: LocalAddr and
// Result.Received.

func TestLocalAddr(t *testing.T) {
	remotes := make(chan string, 1)
	srv := newFakeServer(t, func(c *srvConn, _ int) {
		host, _, _ := net.SplitHostPort(c.conn.RemoteAddr().String())
		remotes <- host
		c.auth()
		c.end(wire.ReasonNoAction)
	})
	o := srv.options(t, "SEP1")
	o.LocalAddr = "127.3.4.5"
	res := run(t, o)
	if res.EndReason != wire.ReasonNoAction {
		t.Errorf("end reason %s, want no-action", res.EndReason)
	}
	if got := <-remotes; got != "127.3.4.5" {
		t.Errorf("server saw the phone at %s, want 127.3.4.5", got)
	}
}

func TestLocalAddrInvalid(t *testing.T) {
	srv := newFakeServer(t, nil)
	o := srv.options(t, "SEP1")
	o.LocalAddr = "not-an-ip"
	_, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "not-an-ip") || srv.sessions() != 0 {
		t.Errorf("Run error %v after %d sessions, want an options error", err, srv.sessions())
	}
}

func TestReceived(t *testing.T) {
	t.Run("failed-session-then-install", func(t *testing.T) {
		issued := make(chan string, 2)
		srv := newFakeServer(t, func(c *srvConn, n int) {
			c.auth()
			if n == 0 {
				pub, _ := c.keygen(ecKeygenRequest(c))
				cert := c.srv.ca.issue(c.t, "SEP1", pub)
				issued <- cert.SerialNumber.String()
				c.send(c.msg(wire.CmdStoreCertificateRequest).Add(wire.TagCertificate, wire.WrapCertificate(wire.CertLSC, cert.Raw)))
				c.expectEOF()
				return
			}
			cert := c.install("SEP1", ecKeygenRequest(c))
			issued <- cert.SerialNumber.String()
		})
		o := srv.options(t, "SEP1")
		o.DisconnectOnStore = 1
		res := run(t, o)
		if len(res.Received) != 2 || res.Installed == nil {
			t.Fatalf("received %d certificates (installed %v), want 2 and an LSC", len(res.Received), res.Installed != nil)
		}
		for i, c := range res.Received {
			if want := <-issued; c.SerialNumber.String() != want {
				t.Errorf("Received[%d] serial %s, want %s", i, c.SerialNumber, want)
			}
		}
		if !res.Received[1].Equal(res.Installed) {
			t.Errorf("the last certificate received is not the one installed")
		}
	})
	t.Run("refused", func(t *testing.T) {
		srv := newFakeServer(t, func(c *srvConn, _ int) {
			c.auth()
			c.install("SEP1", ecKeygenRequest(c))
		})
		o := srv.options(t, "SEP1")
		o.RefuseStore = true
		res := run(t, o)
		if len(res.Received) != 1 || res.Installed != nil {
			t.Errorf("received %d certificates, installed %v; want 1 received, none installed", len(res.Received), res.Installed != nil)
		}
	})
	t.Run("none", func(t *testing.T) {
		srv := newFakeServer(t, func(c *srvConn, _ int) {
			c.auth()
			c.end(wire.ReasonNoAction)
		})
		if res := run(t, srv.options(t, "SEP1")); len(res.Received) != 0 {
			t.Errorf("received %d certificates, want none", len(res.Received))
		}
	})
}
