package revocation_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/revocation"
	"github.com/capf-server/capf/internal/store/sqlite"
)

// fleet is a CAPF's store, CA, CRL publisher and server, with phones whose
// LSCs go through the same store calls a phone session makes.
type fleet struct {
	t      testing.TB
	dir    string
	st     *sqlite.Store
	ca     *ca.Authority
	svc    *lsc.Service
	pub    *revocation.Publisher
	srv    *revocation.Server
	http   *httptest.Server
	caFile string
}

func newFleet(t testing.TB) *fleet {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := ca.Generate(ca.Options{Dir: filepath.Join(dir, "ca"), KeyAlgorithm: ca.ECP256})
	if err != nil {
		t.Fatal(err)
	}
	iss := []revocation.Issuer{{Cert: a.Certificate(), Signer: a.Signer()}}
	crlDir := filepath.Join(dir, "crl")
	if err := os.Mkdir(crlDir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fleet{t: t, dir: dir, st: st, ca: a}
	f.srv = revocation.NewServer(revocation.ServerOptions{Store: st, Issuers: iss, Dir: crlDir})
	f.pub = revocation.NewPublisher(revocation.PublisherOptions{Store: st, Issuers: iss})
	f.svc = lsc.NewService(lsc.Options{Store: st})
	f.http = httptest.NewServer(f.srv)
	t.Cleanup(f.http.Close)
	f.caFile = f.write("ca.pem", a.CertificatePEM())
	return f
}

func (f *fleet) write(name string, data []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// enrol creates the device if needed and installs a new LSC on it as a
// session does (RecordIssuance, then FinishAttempt with SetLSC); it
// returns the LSC's serial and the path of its PEM.
func (f *fleet) enrol(name string) (string, string) {
	f.t.Helper()
	ctx := f.t.Context()
	if _, err := f.st.GetDevice(ctx, name); err != nil {
		if err := f.st.CreateDevice(ctx, device.Device{Name: name, SecurityProfile: "p", AuthMode: device.AuthNull,
			Operation: device.OpInstall, Key: "ec256", Status: device.StatusPending}, device.AuditEvent{}); err != nil {
			f.t.Fatal(err)
		}
	}
	d, err := f.st.GetDevice(ctx, name)
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := f.st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpInstall, StartedAt: time.Now(), Rev: d.Rev, Node: "n"})
	if err != nil {
		f.t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := f.ca.Issue(ctx, ca.IssueRequest{DeviceName: name, PublicKey: key.Public()})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.RecordIssuance(ctx, device.Issuance{Serial: is.SerialHex, Device: name, AttemptID: c.AttemptID,
		Issuer: is.Certificate.Issuer.String(), IssuerKeyID: revocation.KeyID(f.ca.Certificate()), IssuedAt: time.Now(),
		NotBefore: is.NotBefore, NotAfter: is.NotAfter, DER: is.DER}); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.FinishAttempt(ctx, device.Outcome{AttemptID: c.AttemptID, Node: "n", Device: name, FinishedAt: time.Now(),
		Result: device.SuccessStatus(device.OpInstall), Completed: true,
		SetLSC: &device.Certificate{Serial: is.SerialHex, NotBefore: is.NotBefore, NotAfter: is.NotAfter, DER: is.DER}}); err != nil {
		f.t.Fatal(err)
	}
	return is.SerialHex, f.write(is.SerialHex+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.DER}))
}

// deleteLSC runs a successful Delete on the device, as a session does.
func (f *fleet) deleteLSC(name string) {
	f.t.Helper()
	ctx := f.t.Context()
	d, _ := f.st.GetDevice(ctx, name)
	c, err := f.st.StartAttempt(ctx, device.Attempt{Device: name, Operation: device.OpDelete, StartedAt: time.Now(), Rev: d.Rev, Node: "n"})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.FinishAttempt(ctx, device.Outcome{AttemptID: c.AttemptID, Node: "n", Device: name, FinishedAt: time.Now(),
		Result: device.SuccessStatus(device.OpDelete), Completed: true, ClearLSC: true}); err != nil {
		f.t.Fatal(err)
	}
}

// publish publishes the CRLs and loads them into the server.
func (f *fleet) publish() {
	f.t.Helper()
	if err := f.pub.Publish(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
	if err := f.srv.Load(f.t.Context()); err != nil {
		f.t.Fatal(err)
	}
}

// get fetches path from the server.
func (f *fleet) get(path string) (*http.Response, []byte) {
	f.t.Helper()
	resp, err := http.Get(f.http.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, body
}

// openssl runs the openssl binary and returns its combined output and
// whether it exited 0.
func openssl(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "openssl", args...).CombinedOutput()
	return string(out), err == nil
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
}

// TestOpenSSLRejectsRevokedLSCs is issue 17's revocation test: after an
// LSC is superseded, deleted from its phone and revoked by hand, the CRL
// the fleet publishes verifies with openssl under the CAPF certificate,
// openssl verify -crl_check rejects each of the three and accepts a valid
// LSC, and openssl ocsp (with its default nonce, which must come back)
// gets revoked for the three, good for the valid one and unknown for a
// serial never issued.
func TestOpenSSLRejectsRevokedLSCs(t *testing.T) {
	needOpenSSL(t)
	f := newFleet(t)
	superseded, supersededPEM := f.enrol("SEP00000000000A")
	_, validPEM := f.enrol("SEP00000000000A") // supersedes the first
	deleted, deletedPEM := f.enrol("SEP00000000000B")
	f.deleteLSC("SEP00000000000B")
	revoked, revokedPEM := f.enrol("SEP00000000000C")
	if _, err := f.svc.Revoke(t.Context(), device.CLIActor("alice"), strings.ToLower(revoked), "keyCompromise"); err != nil {
		t.Fatal(err)
	}
	f.publish()

	resp, der := f.get("/crl")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET /crl: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	kid := revocation.KeyID(f.ca.Certificate())
	if _, byID := f.get("/crl/" + kid + ".crl"); !bytes.Equal(byID, der) {
		t.Error("/crl/ID.crl differs from /crl")
	}
	onDisk, err := os.ReadFile(filepath.Join(f.dir, "crl", kid+".crl"))
	if err != nil || !bytes.Equal(onDisk, der) {
		t.Errorf("DATA/crl/%s.crl: %v, same as served: %v", kid, err, bytes.Equal(onDisk, der))
	}
	crlPEM := filepath.Join(f.dir, "crl", kid+".pem")
	crlDER := f.write("served.crl", der)

	if out, ok := openssl(t, "crl", "-inform", "DER", "-in", crlDER, "-CAfile", f.caFile, "-noout", "-verify"); !ok || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", ok, out)
	}
	text, _ := openssl(t, "crl", "-in", crlPEM, "-noout", "-text")
	for _, want := range []string{superseded, deleted, revoked, "Superseded", "Cessation Of Operation", "Key Compromise"} {
		if !strings.Contains(text, want) {
			t.Errorf("CRL text lacks %q:\n%s", want, text)
		}
	}
	for name, pemFile := range map[string]string{"superseded": supersededPEM, "deleted": deletedPEM, "revoked": revokedPEM} {
		out, ok := openssl(t, "verify", "-crl_check", "-CAfile", f.caFile, "-CRLfile", crlPEM, pemFile)
		if ok || !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify -crl_check accepted the %s LSC (exit 0: %v):\n%s", name, ok, out)
		}
	}
	if out, ok := openssl(t, "verify", "-crl_check", "-CAfile", f.caFile, "-CRLfile", crlPEM, validPEM); !ok {
		t.Errorf("openssl verify -crl_check rejected the valid LSC:\n%s", out)
	}

	// OCSP, POST form, as openssl sends it: with its default nonce, which
	// must come back (openssl warns "no nonce in response" otherwise, and
	// fails on a wrong one).
	for pemFile, want := range map[string]string{supersededPEM: "revoked", deletedPEM: "revoked", revokedPEM: "revoked", validPEM: "good"} {
		out, ok := openssl(t, "ocsp", "-issuer", f.caFile, "-cert", pemFile, "-url", f.http.URL+"/ocsp",
			"-CAfile", f.caFile)
		if !ok || !strings.Contains(out, pemFile+": "+want) || !strings.Contains(out, "Response verify OK") || strings.Contains(strings.ToLower(out), "nonce") {
			t.Errorf("openssl ocsp for %s: exit 0 %v, want %q verified, nonce echoed:\n%s", filepath.Base(pemFile), ok, want, out)
		}
	}
	out, ok := openssl(t, "ocsp", "-issuer", f.caFile, "-serial", "0x7E57", "-url", f.http.URL+"/ocsp", "-CAfile", f.caFile)
	if !ok || !strings.Contains(out, "0x7E57: unknown") || strings.Contains(strings.ToLower(out), "nonce") {
		t.Errorf("openssl ocsp for a serial never issued: %v\n%s", ok, out)
	}
	// A client that sends no nonce gets none and still verifies.
	out, ok = openssl(t, "ocsp", "-issuer", f.caFile, "-cert", validPEM, "-url", f.http.URL+"/ocsp", "-CAfile", f.caFile, "-no_nonce")
	if !ok || !strings.Contains(out, validPEM+": good") || !strings.Contains(out, "Response verify OK") {
		t.Errorf("openssl ocsp -no_nonce: %v\n%s", ok, out)
	}
}

// TestOCSPGet covers the GET form of RFC 6960 A.1 with the Go client.
func TestOCSPGet(t *testing.T) {
	f := newFleet(t)
	serial, _ := f.enrol("SEP00000000000A")
	f.enrol("SEP00000000000A")
	f.publish()
	r, _ := f.svc.Get(t.Context(), serial)
	cert, err := parseCert(r.DER)
	if err != nil {
		t.Fatal(err)
	}
	req, err := ocsp.CreateRequest(cert, f.ca.Certificate(), &ocsp.RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := f.get("/ocsp/" + strings.ReplaceAll(base64.StdEncoding.EncodeToString(req), "/", "%2F"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" {
		t.Fatalf("GET /ocsp: %s", resp.Status)
	}
	got, err := ocsp.ParseResponseForCert(body, cert, f.ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != ocsp.Revoked || got.RevocationReason != ocsp.Superseded {
		t.Errorf("OCSP GET: status %d reason %d, want revoked, superseded", got.Status, got.RevocationReason)
	}
	if got.Certificate == nil || !got.Certificate.Equal(f.ca.Certificate()) {
		t.Errorf("OCSP GET: the response's certs do not carry its signer (OpenSSL's verifier looks for it there)")
	}
}

// TestHTTPBounds covers what the listener refuses.
func TestHTTPBounds(t *testing.T) {
	f := newFleet(t)
	for _, c := range []struct {
		name, method, path string
		body               []byte
		want               int
	}{
		{"fail/crl-post", http.MethodPost, "/crl", nil, http.StatusMethodNotAllowed},
		{"fail/crl-put", http.MethodPut, "/crl/ab.crl", nil, http.StatusMethodNotAllowed},
		{"fail/ocsp-delete", http.MethodDelete, "/ocsp", nil, http.StatusMethodNotAllowed},
		{"fail/ocsp-too-large", http.MethodPost, "/ocsp", make([]byte, revocation.MaxOCSPRequest+1), http.StatusRequestEntityTooLarge},
		{"fail/unknown-path", http.MethodGet, "/admin", nil, http.StatusNotFound},
		{"fail/bad-ca-id", http.MethodGet, "/crl/..%2Fcapf.crl", nil, http.StatusNotFound},
		{"fail/not-published-yet", http.MethodGet, "/crl", nil, http.StatusNotFound},
		{"ok/ocsp-garbage-is-malformed", http.MethodPost, "/ocsp", []byte("hello"), http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), c.method, f.http.URL+c.path, bytes.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s %s: %s, want %d", c.method, c.path, resp.Status, c.want)
			}
			if c.name == "ok/ocsp-garbage-is-malformed" && !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
				t.Errorf("garbage OCSP request: answer %x, want malformedRequest", body)
			}
		})
	}
}
