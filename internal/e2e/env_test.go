//go:debug rsa1024min=0

package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/cli"
	"github.com/capf-server/capf/internal/phonesim"
)

// syncBuffer is a goroutine-safe bytes.Buffer for the server's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pki is a throwaway certificate authority, standing in for Cisco's
// manufacturing CA (MICs, SUDI) or for a foreign CA.
type pki struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newPKI(t *testing.T, cn string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Cisco Systems"}},
		NotBefore: time.Now().Add(-20 * 365 * 24 * time.Hour), NotAfter: time.Now().Add(20 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{cert: c, key: key}
}

func (p *pki) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw})
}

// issue makes a credential (as a MIC or SUDI) for cn with an RSA-2048 or
// P-256 key; expired makes one whose validity ended yesterday.
func (p *pki) issue(t *testing.T, cn string, rsaKey, expired bool) *phonesim.Credential {
	t.Helper()
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	nb, na := time.Now().Add(-10*365*24*time.Hour), time.Now().Add(10*365*24*time.Hour)
	if expired {
		na = time.Now().Add(-24 * time.Hour)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Cisco Systems Inc."}},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &phonesim.Credential{Certificate: c, Key: key}
}

// server is a running CAPF service with its data directory.
type server struct {
	t      *testing.T
	data   string
	addr   string
	trust  []*x509.Certificate
	caFile string
	mfr    *pki
	out    *syncBuffer
	errOut *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

// serverParams are service parameters written to capf.json before start.
type serverParams map[string]any

// startServer runs `capf serve` in-process on 127.0.0.1:0 over a fresh data
// directory (or data, when not empty) and waits until it listens.
func startServer(t *testing.T, params serverParams, data string, args ...string) *server {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	s := &server{t: t, data: data, out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan int, 1)}
	s.mfr = loadOrNewMfr(t, data)
	// A short retry delay: a phone that reconnects before the server has
	// closed its previous session gets RETRY_LATER for its device and
	// should not wait a minute in a test.
	p := serverParams{"manufacturer_ca_bundle": "mfr-ca.pem", "message_timeout": "10s", "retry_delay": "1s"}
	for k, v := range params {
		p[k] = v
	}
	b, _ := json.Marshal(p)
	if err := os.WriteFile(filepath.Join(data, "capf.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	argv := append([]string{"--data", data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--drain", "5s"}, args...)
	go func() { s.done <- cli.Run(ctx, argv, s.out, s.errOut) }()
	re := regexp.MustCompile(`listening \(phones\): (\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(s.out.String()); m != nil {
			s.addr = m[1]
			break
		}
		select {
		case code := <-s.done:
			t.Fatalf("capf serve exited %d before listening:\n%s\n%s", code, s.out, s.errOut)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("capf serve did not start:\n%s\n%s", s.out, s.errOut)
		}
	}
	s.caFile = filepath.Join(data, "ca", "capf.pem")
	pemBytes, err := os.ReadFile(s.caFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s.trust = []*x509.Certificate{c}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.errOut)
		}
	})
	return s
}

// loadOrNewMfr keeps one manufacturer CA per data directory, so a restart
// trusts the same MICs.
func loadOrNewMfr(t *testing.T, data string) *pki {
	t.Helper()
	mfrMu.Lock()
	defer mfrMu.Unlock()
	if p, ok := mfrs[data]; ok {
		return p
	}
	p := newPKI(t, "Cisco Manufacturing CA (test)")
	if err := os.WriteFile(filepath.Join(data, "mfr-ca.pem"), p.pem(), 0o600); err != nil {
		t.Fatal(err)
	}
	mfrs[data] = p
	return p
}

var (
	mfrMu sync.Mutex
	mfrs  = map[string]*pki{}
)

// stop cancels the server (as SIGTERM does) and returns its exit code.
func (s *server) stop() int {
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code
		return code
	case <-time.After(30 * time.Second):
		s.t.Fatal("capf serve did not stop")
		return -1
	}
}

// capf runs a capf command against the server's data directory.
func (s *server) capf(args ...string) (string, string, int) {
	s.t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"--data", s.data}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustCapf runs a capf command and fails the test unless it succeeds.
func (s *server) mustCapf(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.capf(args...)
	if code != 0 {
		s.t.Fatalf("capf %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// deviceJSON is what `capf device show --json` prints.
type deviceJSON struct {
	Name          string `json:"name"`
	AuthMode      string `json:"auth_mode"`
	AuthString    string `json:"auth_string"`
	Operation     string `json:"operation"`
	Status        string `json:"status"`
	LSCStatus     string `json:"lsc_status"`
	LSCSerial     string `json:"lsc_serial"`
	LSCValidUntil string `json:"lsc_valid_until"`
	History       []struct {
		Remote   string `json:"remote"`
		AuthMode string `json:"auth_mode"`
		SUDI     string `json:"sudi"`
		Result   string `json:"result"`
		Reason   string `json:"reason"`
	} `json:"history"`
	Fetched []struct {
		Type string `json:"type"`
	} `json:"troubleshoot_certificates"`
}

func (s *server) device(name string) deviceJSON {
	s.t.Helper()
	var d deviceJSON
	if err := json.Unmarshal([]byte(s.mustCapf("device", "show", name, "--json")), &d); err != nil {
		s.t.Fatal(err)
	}
	return d
}

// phone runs the simulator against the server with fast retries.
func (s *server) phone(name string, state string, set func(o *phonesim.Options)) (*phonesim.Result, error) {
	s.t.Helper()
	o := phonesim.Options{
		Server: s.addr, Trust: s.trust, DeviceName: name, StateDir: state,
		RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second,
	}
	if set != nil {
		set(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return phonesim.Run(ctx, o)
}
