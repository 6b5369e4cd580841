package bench

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// startBareCAPF runs ServeBareCAPF on 127.0.0.1 until the test ends and
// returns its phone address and the phones' trust.
func startBareCAPF(t *testing.T, capfKey, phoneKey string) (string, []*x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- ServeBareCAPF(ctx, BareServerOptions{Dir: dir, Listen: "127.0.0.1:0", CAPFKey: capfKey, PhoneKey: phoneKey}, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeBareCAPF: %v", err)
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening (phones): ")
	if !ok || !listenRE.MatchString(line) {
		t.Fatalf("listening line %q: not what bench parses", line)
	}
	trust, err := phonesim.LoadTrust(filepath.Join(dir, BareCAFile))
	if err != nil {
		t.Fatal(err)
	}
	return addr, trust
}

// TestServeBareCAPF: the unchanged simulated phone enrols against the bare
// CAPF server with both CAPF keys and an EC and an RSA phone key: it
// verifies the server's certificate against the CAPF certificate it
// wrote, is asked for the key of its kind, and installs an LSC for that
// key naming the device, issued by that CAPF certificate.
func TestServeBareCAPF(t *testing.T) {
	for _, tc := range []struct{ capfKey, phoneKey string }{
		{"ec256", "ec256"},
		{"rsa2048", "ec256"},
		{"ec256", "rsa2048"},
	} {
		t.Run(tc.capfKey+"/"+tc.phoneKey, func(t *testing.T) {
			addr, trust := startBareCAPF(t, tc.capfKey, tc.phoneKey)
			spec, _ := phoneKeySpec(tc.phoneKey)
			var asked phonesim.KeySpec
			for _, name := range []string{"SEP000000000001", "SEP000000000002"} {
				res, err := phonesim.Run(t.Context(), phonesim.Options{
					Server: addr, Trust: trust, DeviceName: name, AuthMode: phonesim.AuthModeNull,
					MaxVersion: tls.VersionTLS12, Retries: -1, MessageTimeout: 10 * time.Second,
					KeyGen: func(ctx context.Context, s phonesim.KeySpec) (c crypto.Signer, err error) {
						asked = s
						return phonesim.GenerateKey(ctx, s)
					},
				})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if res.EndReason != wire.ReasonSuccess || res.Installed == nil {
					t.Fatalf("%s: ended %s, installed %v; want success with an LSC", name, res.EndReason, res.Installed != nil)
				}
				if asked != spec {
					t.Errorf("%s: asked for %s, want %s", name, asked, spec)
				}
				if cn := res.Installed.Subject.CommonName; cn != name {
					t.Errorf("LSC common name %q, want %q", cn, name)
				}
				if err := res.Installed.CheckSignatureFrom(trust[0]); err != nil {
					t.Errorf("LSC not issued by the CAPF certificate: %v", err)
				}
			}
		})
	}
}

// TestBareCAPFOutOfOrder: the bare server ends a session that sends a
// message out of the install session's order, without issuing.
func TestBareCAPFOutOfOrder(t *testing.T) {
	addr, _ := startBareCAPF(t, "ec256", "ec256")
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}) // a test client
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	frame, err := wire.ReadFrame(conn, nil, wire.MaxPayloadLen)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(frame)
	if err != nil || m.Command != wire.CmdAuthRequest {
		t.Fatalf("first message %v, %v: want AUTH_REQUEST", m, err)
	}
	b, _ := wire.New(wire.CmdStoreCertificateResponse, m.SessionID).AddUint8(wire.TagReason, uint8(wire.ReasonSuccess)).Encode()
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	_, err = wire.ReadFrame(conn, nil, wire.MaxPayloadLen)
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("after an out-of-order message: %v, want the connection closed", err)
	}
}

// TestBareCAPFOptions: a bare CAPF run refuses what the bare server does
// not take, and the server refuses an unknown key.
func TestBareCAPFOptions(t *testing.T) {
	for _, o := range []Options{
		{Phones: 1, BareCAPF: true, DB: "postgres://db/capf"},
		{Phones: 1, BareCAPF: true, Waiting: 1},
		{Phones: 1, BareCAPF: true, Operation: "none"},
		{Phones: 1, BareCAPF: true, ServerParams: map[string]any{"max_concurrent_operations": 1}},
		{Phones: 1, BareCAPF: true, Server: "127.0.0.1:3804", NoProvision: true, CAFile: "ca.pem"},
	} {
		if _, err := Run(context.Background(), o, nil); fault.KindOf(err) != fault.Invalid {
			t.Errorf("Run(%+v): err = %v, want Invalid", o, err)
		}
	}
	for _, o := range []BareServerOptions{
		{Dir: t.TempDir(), Listen: "127.0.0.1:0", CAPFKey: "dsa", PhoneKey: "ec256"},
		{Dir: t.TempDir(), Listen: "127.0.0.1:0", CAPFKey: "ec256", PhoneKey: "ec999"},
	} {
		if err := ServeBareCAPF(context.Background(), o, io.Discard); fault.KindOf(err) != fault.Invalid {
			t.Errorf("ServeBareCAPF(%+v): err = %v, want Invalid", o, err)
		}
	}
}
