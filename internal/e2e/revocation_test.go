package e2e

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

// TestRevocation is issue 17 end to end through capf serve: phones enrol
// with the simulator; one LSC is superseded by a newer one, one is
// deleted from its phone, one is revoked with capf cert revoke. The CRL
// served on crl_listen (and written to DATA/crl) verifies with openssl,
// which rejects the three LSCs and accepts a valid one; openssl ocsp gets
// revoked for the three and good for the valid one; capf cert list and
// show report the states and refuse bad serials.
func TestRevocation(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	s := startServer(t, serverParams{"crl_listen": "127.0.0.1:0"}, "")
	base := crlListener(t, s)
	dir := t.TempDir()
	certFile := func(name string, res *phonesim.Result) string {
		p := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: res.Installed.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	serial := func(res *phonesim.Result) string { return fmt.Sprintf("%X", res.Installed.SerialNumber.Bytes()) }

	// Superseded: a second Install replaces the first LSC.
	a, stateA := newPhoneName(), t.TempDir()
	first := enroll(t, s, a, stateA, "ec256")
	s.mustCapf("device", "set", a, "--operation", "install")
	second, err := s.phone(a, stateA, nil)
	if err != nil || second.EndReason != wire.ReasonSuccess || second.Installed == nil {
		t.Fatalf("second install: %+v %v", second, err)
	}
	// Deleted from its phone.
	b, stateB := newPhoneName(), t.TempDir()
	deleted := enroll(t, s, b, stateB, "ec256")
	s.mustCapf("device", "set", b, "--operation", "delete")
	if res, err := s.phone(b, stateB, nil); err != nil || !res.Deleted {
		t.Fatalf("delete: %+v %v", res, err)
	}
	// Revoked by hand, the serial given as openssl prints it, lower case
	// with colons.
	c := newPhoneName()
	revoked := enroll(t, s, c, t.TempDir(), "ec256")
	withColons := strings.ToLower(regexp.MustCompile(`(..)`).ReplaceAllString(serial(revoked), "$1:"))
	s.mustCapf("cert", "revoke", strings.TrimSuffix(withColons, ":"), "--reason", "keyCompromise")

	// capf cert list and show.
	var list []struct {
		Serial, Device, Status, Reason string
	}
	if err := json.Unmarshal([]byte(s.mustCapf("cert", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{serial(first): "superseded/superseded", serial(second): "valid/", serial(deleted): "revoked/cessationOfOperation", serial(revoked): "revoked/keyCompromise"}
	for _, l := range list {
		if w, ok := want[l.Serial]; ok && w != l.Status+"/"+l.Reason {
			t.Errorf("cert list: %s is %s/%s, want %s", l.Serial, l.Status, l.Reason, w)
		}
		delete(want, l.Serial)
	}
	if len(want) != 0 {
		t.Errorf("cert list lacks %v", want)
	}
	if out := s.mustCapf("cert", "list", "--device", a, "--status", "valid"); !strings.Contains(out, serial(second)) || strings.Contains(out, serial(first)) {
		t.Errorf("cert list --device --status valid:\n%s", out)
	}
	if out := s.mustCapf("cert", "show", "serial="+serial(first)); !strings.Contains(out, "superseded by LSC "+serial(second)) {
		t.Errorf("cert show of the superseded LSC:\n%s", out)
	}
	for _, bad := range []struct {
		serial string
		code   int
		says   string
	}{{"XYZ", 2, "not a hex digit"}, {"7E57", 3, "no LSC with this serial"}, {"", 2, "empty"}} {
		if _, errOut, code := s.capf("cert", "show", bad.serial); code != bad.code || !strings.Contains(errOut, bad.says) {
			t.Errorf("cert show %q: exit %d %q, want %d saying %q", bad.serial, code, errOut, bad.code, bad.says)
		}
	}

	// The CRL: the revocation by capf cert revoke (another process) is
	// picked up within the publisher's check.
	crl := waitForCRL(t, base+"/crl", 3)
	crlFile := filepath.Join(dir, "served.crl")
	if err := os.WriteFile(crlFile, crl, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := s.caFile
	if out, err := exec.Command("openssl", "crl", "-inform", "DER", "-in", crlFile, "-CAfile", ca, "-noout", "-verify").CombinedOutput(); err != nil || !strings.Contains(string(out), "verify OK") {
		t.Fatalf("openssl crl -verify: %v %s", err, out)
	}
	pems, _ := filepath.Glob(filepath.Join(s.data, "crl", "*.pem"))
	if len(pems) != 1 {
		t.Fatalf("DATA/crl: %v, want one CA's PEM", pems)
	}
	for name, res := range map[string]*phonesim.Result{"superseded": first, "deleted": deleted, "revoked": revoked} {
		out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", ca, "-CRLfile", pems[0], certFile(name, res)).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "certificate revoked") {
			t.Errorf("openssl verify -crl_check accepted the %s LSC: %s", name, out)
		}
		out, err = exec.Command("openssl", "ocsp", "-issuer", ca, "-cert", certFile(name, res), "-url", base+"/ocsp", "-CAfile", ca, "-no_nonce").CombinedOutput()
		if err != nil || !strings.Contains(string(out), ": revoked") || !strings.Contains(string(out), "Response verify OK") {
			t.Errorf("openssl ocsp for the %s LSC: %v %s", name, err, out)
		}
	}
	if out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", ca, "-CRLfile", pems[0], certFile("valid", second)).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -crl_check rejected the valid LSC: %v %s", err, out)
	}
	if out, err := exec.Command("openssl", "ocsp", "-issuer", ca, "-cert", certFile("valid", second), "-url", base+"/ocsp", "-CAfile", ca, "-no_nonce").CombinedOutput(); err != nil || !strings.Contains(string(out), ": good") {
		t.Errorf("openssl ocsp for the valid LSC: %v %s", err, out)
	}

	// crl_url: LSCs issued once it is set name it, and openssl fetches
	// the CRL from there by itself (-crl_download).
	s.mustCapf("config", "set", "crl_url", base+"/crl")
	waitForLog(t, s, "fleet parameters changed")
	e := newPhoneName()
	withDP := enroll(t, s, e, t.TempDir(), "ec256")
	if dp := withDP.Installed.CRLDistributionPoints; len(dp) != 1 || dp[0] != base+"/crl" {
		t.Fatalf("LSC issued after crl_url was set: distribution points %v, want [%s/crl]", dp, base)
	}
	if out, err := exec.Command("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", ca, certFile("dp", withDP)).CombinedOutput(); err != nil {
		t.Errorf("openssl verify -crl_download of a valid LSC: %v %s", err, out)
	}
	s.mustCapf("cert", "revoke", serial(withDP), "--reason", "cessationOfOperation")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("openssl", "verify", "-crl_check", "-crl_download", "-CAfile", ca, certFile("dp", withDP)).CombinedOutput()
		if err != nil && strings.Contains(string(out), "certificate revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl verify -crl_download still accepts the revoked LSC: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// crlListener is the http://HOST:PORT base of the server's CRL and OCSP
// listener, from its start-up lines.
func crlListener(t *testing.T, s *server) string {
	t.Helper()
	m := regexp.MustCompile(`CRL and OCSP:\s+(http://\S+)/crl,`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no CRL listener in the startup lines:\n%s", s.out)
	}
	return m[1]
}

// waitForCRL fetches the CRL at url until it lists n serials (30 s at
// most) and returns it (DER).
func waitForCRL(t *testing.T, url string, n int) []byte {
	t.Helper()
	var crl []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			crl, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusOK && strings.Count(crlText(t, crl), "Serial Number:") == n {
			return crl
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL did not list %d LSCs in time: %v\n%s", n, err, crlText(t, crl))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForLog waits until the server's log says what.
func waitForLog(t *testing.T, s *server, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(s.errOut.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("the server never logged %q:\n%s", what, s.errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crlText is openssl's text of the DER CRL der ("" when it does not parse).
func crlText(t *testing.T, der []byte) string {
	t.Helper()
	if len(der) == 0 {
		return ""
	}
	f := filepath.Join(t.TempDir(), "c.crl")
	if err := os.WriteFile(f, der, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("openssl", "crl", "-inform", "DER", "-in", f, "-noout", "-text").CombinedOutput()
	return string(out)
}

// TestCRLListenerFlood: connections that say nothing cannot keep a CRL
// fetcher out. 100 silent connections from one address and 100 from
// another hold at most 8 slots per address and 64 in all; a fetch from a
// third address, and one from a flooding address, still get the CRL.
func TestCRLListenerFlood(t *testing.T) {
	s := startServer(t, serverParams{"crl_listen": "127.0.0.1:0"}, "")
	m := regexp.MustCompile(`CRL and OCSP:\s+http://(\S+)/crl,`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("no CRL listener:\n%s", s.out)
	}
	addr := m[1]
	// The first CRL is published within a moment of the start.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/crl")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CRL published: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		for range 100 {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial from %s: %v", src, err)
			}
			conns = append(conns, c)
		}
	}
	// The server holds at most 8 of each address's silent connections:
	// the others are closed as soon as it accepts them (EOF here), well
	// before the 3 s first-request timeout would close them all.
	flooded := time.Now()
	held := conns
	for {
		var still []net.Conn
		for _, c := range held {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && os.IsTimeout(err) {
				still = append(still, c)
			}
		}
		held = still
		if len(held) <= 2*8 || time.Since(flooded) > 2500*time.Millisecond {
			break
		}
	}
	if len(held) > 2*8 {
		t.Errorf("%d of the 200 silent connections still held after %v, want at most 16 (8 per address)", len(held), time.Since(flooded))
	}
	t.Logf("silent connections held: %d of 200", len(held))
	for _, src := range []string{"127.0.0.3", "127.0.0.1"} {
		c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
			DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}).DialContext}}
		began := time.Now()
		resp, err := c.Get("http://" + addr + "/crl")
		if err != nil {
			t.Fatalf("no CRL for %s during the flood: %v", src, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("CRL for %s during the flood: %s", src, resp.Status)
		}
		t.Logf("CRL fetched from %s during the flood in %v", src, time.Since(began))
	}
}
