package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/wire"
)

// caRow is one row of `capf ca status --json`.
type caRow struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Serial string `json:"serial"`
	Phones int    `json:"phones"`
	Listed *bool  `json:"in_trust_file"`
}

func (s *server) caStatus() []caRow {
	s.t.Helper()
	var rows []caRow
	if err := json.Unmarshal([]byte(s.mustCapf("ca", "status", "--json")), &rows); err != nil {
		s.t.Fatal(err)
	}
	return rows
}

// presented returns the certificate the phone listener presents on TLS.
func presented(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} // #nosec G402 -- the test compares the certificate itself
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

func issuedBy(lsc, ca *x509.Certificate) bool {
	return lsc != nil && bytes.Equal(lsc.AuthorityKeyId, ca.SubjectKeyId) && lsc.CheckSignatureFrom(ca) == nil
}

// withColons writes a serial as `openssl x509 -serial` does, in lower
// case with colons, as an administrator might paste it.
func withColons(hexSerial string) string {
	var parts []string
	for i := 0; i < len(hexSerial); i += 2 {
		parts = append(parts, strings.ToLower(hexSerial[i:i+2]))
	}
	return strings.Join(parts, ":")
}

// TestCAPFRollover: the CAPF certificate changes with no cliff and no
// restart. Phones enrolled under certificate 1; regenerate stages 2, which
// trust files list at once while TLS still presents 1 and the phones keep
// enrolling; activate makes TLS present 2 within seconds and sign with it;
// a new phone trusting only 2 enrols; an old phone authenticates with its
// LSC from 1 (retiring) and receives one from 2; retire 1 is refused while
// a phone holds a valid LSC from it, and once forced, that LSC no longer
// authenticates.
func TestCAPFRollover(t *testing.T) {
	data := t.TempDir()
	if err := os.Mkdir(filepath.Join(data, "tftp"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, serverParams{"crl_listen": "127.0.0.1:0", "trust_file_dir": "tftp"}, data)
	m := regexp.MustCompile(`CRL and OCSP:\s+(http://\S+)/crl,`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no CRL listener in the start-up lines:\n%s", s.out)
	}
	crlBase := m[1]
	ca1 := s.trust[0]
	if got := presented(t, s.addr); !got.Equal(ca1) {
		t.Fatalf("TLS presents %s, want the CAPF certificate %s", got.Subject, ca1.Subject)
	}
	oldA, stateA := newPhoneName(), t.TempDir()
	oldB, stateB := newPhoneName(), t.TempDir()
	for _, p := range []struct{ name, state string }{{oldA, stateA}, {oldB, stateB}} {
		if res := enroll(t, s, p.name, p.state, "ec256"); !issuedBy(res.Installed, ca1) {
			t.Fatalf("%s's LSC was not issued by certificate 1", p.name)
		}
	}
	rows := s.caStatus()
	if len(rows) != 1 || rows[0].State != "active" || rows[0].Phones != 2 {
		t.Fatalf("ca status before the rollover: %+v, want certificate 1 active with 2 phones", rows)
	}
	id1 := rows[0].ID

	// Bad input changes nothing.
	for _, bad := range [][]string{{"ca", "activate"}, {"ca", "activate", id1}, {"ca", "activate", "0123456789abcdef"}, {"ca", "retire", id1}, {"ca", "retire", "zz"}} {
		if out, errOut, code := s.capf(bad...); code == 0 {
			t.Errorf("capf %v succeeded: %s%s", bad, out, errOut)
		}
	}

	// Regenerate: staged, listed, not presented.
	out := s.mustCapf("ca", "regenerate", "--key-algorithm", "ec256")
	rows = s.caStatus()
	if len(rows) != 2 || rows[0].State != "active" || rows[1].State != "staged" || rows[1].Phones != 0 {
		t.Fatalf("ca status after regenerate: %+v\n%s", rows, out)
	}
	id2 := rows[1].ID
	exported := []byte(s.mustCapf("ca", "export", "--all"))
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		if b, exported = pem.Decode(exported); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 2 || !certs[0].Equal(ca1) || fmt.Sprintf("%x", certs[1].SubjectKeyId) != id2 {
		t.Fatalf("export --all gave %d certificates, want 1 and 2", len(certs))
	}
	ca2 := certs[1]
	itl := filepath.Join(t.TempDir(), "ITLFile.tlv")
	s.mustCapf("trust", "build", "--out", itl)
	if listed := capfListed(t, itl); len(listed) != 2 || !listed[0].Equal(ca1) || !listed[1].Equal(ca2) {
		t.Fatalf("trust build lists %d CAPF certificates, want 1 and 2", len(listed))
	}
	// The ITL serve keeps follows within its check (10 s).
	served := filepath.Join(data, "tftp", "ITLFile.tlv")
	deadline := time.Now().Add(25 * time.Second)
	for len(capfListed(t, served)) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the ITL serve keeps does not list the staged certificate 25 s after regenerate")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, r := range s.caStatus() {
		if r.Listed == nil || !*r.Listed {
			t.Errorf("ca status: %s is not listed in the served trust file", r.ID)
		}
	}
	if got := presented(t, s.addr); !got.Equal(ca1) {
		t.Fatal("a staged certificate is presented on TLS")
	}
	// Phone A, trusting only 1, still renews (with its LSC) under 1.
	s.mustCapf("device", "set", oldA, "--auth-mode", "lsc", "--operation", "install")
	res, err := s.phone(oldA, stateA, nil)
	if err != nil || res.EndReason != wire.ReasonSuccess || !issuedBy(res.Installed, ca1) {
		t.Fatalf("phone trusting 1 while 2 is staged: %+v %v", res, err)
	}

	// Activate: TLS presents 2 within seconds, no restart.
	s.mustCapf("ca", "activate")
	activated := time.Now()
	deadline = activated.Add(15 * time.Second)
	for !presented(t, s.addr).Equal(ca2) {
		if time.Now().After(deadline) {
			t.Fatal("TLS still presents certificate 1 15 s after the activation")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("TLS presents the activated certificate %v after the activation", time.Since(activated).Round(10*time.Millisecond))
	rows = s.caStatus()
	if rows[0].State != "retiring" || rows[1].State != "active" {
		t.Fatalf("ca status after activate: %+v", rows)
	}
	// /crl serves the active CA's CRL, and the retiring one's stays served.
	for _, c := range []struct {
		path string
		ca   *x509.Certificate
	}{{"/crl", ca2}, {"/crl/" + id1 + ".crl", ca1}} {
		deadline := time.Now().Add(20 * time.Second)
		for !crlFrom(t, crlBase+c.path, c.ca) {
			if time.Now().After(deadline) {
				t.Fatalf("%s does not serve the CRL of %s 20 s after the activation", c.path, c.ca.Subject)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// A phone trusting only 1 no longer trusts the server.
	s.mustCapf("device", "add", "SEP0000000000C1", "--operation", "install", "--key", "ec256")
	if res, err := s.phone("SEP0000000000C1", t.TempDir(), func(o *phonesim.Options) { o.Trust = []*x509.Certificate{ca1}; o.Retries = -1 }); err == nil {
		t.Fatalf("a phone trusting only 1 enrolled after the activation: %+v", res)
	}
	// A new phone trusting only 2 enrols, its LSC from 2.
	newName := newPhoneName()
	s.mustCapf("device", "add", newName, "--operation", "install", "--key", "ec256")
	res, err = s.phone(newName, t.TempDir(), func(o *phonesim.Options) { o.Trust = []*x509.Certificate{ca2} })
	if err != nil || res.EndReason != wire.ReasonSuccess || !issuedBy(res.Installed, ca2) {
		t.Fatalf("new phone trusting 2: %+v %v", res, err)
	}
	// Phone A (its new trust file lists both) authenticates with its LSC
	// from 1 and receives one from 2.
	s.mustCapf("device", "set", oldA, "--auth-mode", "lsc", "--operation", "install")
	res, err = s.phone(oldA, stateA, func(o *phonesim.Options) { o.Trust = []*x509.Certificate{ca1, ca2} })
	if err != nil || res.EndReason != wire.ReasonSuccess || !issuedBy(res.Installed, ca2) {
		t.Fatalf("old phone with its LSC from 1: %+v %v", res, err)
	}

	// Phone B still holds a valid LSC from 1: retire refuses, naming it.
	out, errOut, code := s.capf("ca", "retire", withColons(rows[0].Serial))
	if code == 0 || !strings.Contains(errOut, "1 phones hold a valid LSC") {
		t.Fatalf("retire 1 while phone B holds its LSC: exit %d\n%s%s", code, out, errOut)
	}
	if rows = s.caStatus(); rows[0].State != "retiring" || rows[0].Phones != 1 {
		t.Fatalf("a refused retire changed the set: %+v", rows)
	}
	if _, _, code := s.capf("ca", "retire", id2); code == 0 {
		t.Fatal("the active certificate was retired")
	}
	s.mustCapf("ca", "retire", id1, "--force")
	// Within seconds, B's LSC from 1 no longer authenticates (each try
	// from a copy of B's flash, so that it is always that LSC).
	deadline = time.Now().Add(15 * time.Second)
	for {
		s.mustCapf("device", "set", oldB, "--auth-mode", "lsc", "--operation", "install")
		flash := copyDir(t, stateB)
		res, err = s.phone(oldB, flash, func(o *phonesim.Options) { o.Trust = []*x509.Certificate{ca2} })
		if err == nil && res.EndReason != wire.ReasonSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an LSC of the retired certificate still authenticates: %+v %v", res, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := s.device(oldB); d.Status != "Upgrade Failed: Invalid LSC" {
		t.Errorf("phone B after its LSC's CA was retired: %+v", d)
	}
	if rows = s.caStatus(); rows[0].State != "retired" {
		t.Fatalf("after retire --force: %+v", rows)
	}
}

// copyDir copies the files of dir into a new temporary directory.
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// crlFrom reports whether url serves a CRL signed by ca.
func crlFrom(t *testing.T, url string, ca *x509.Certificate) bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return false
	}
	crl, err := x509.ParseRevocationList(b)
	return err == nil && crl.CheckSignatureFrom(ca) == nil
}

// capfListed returns the certificates the trust file at path lists with
// the CAPF role; none while it is missing.
func capfListed(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	f, err := trust.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var listed []*x509.Certificate
	for _, r := range f.Records {
		if r.Role == trust.RoleCAPF {
			c, err := x509.ParseCertificate(r.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			listed = append(listed, c)
		}
	}
	return listed
}
