package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServiceActivation runs the binary: `capf service deactivate` while
// serve runs closes the phone port (connections refused) and the admin
// HTTPS listener keeps answering; `capf service activate` opens it again
// on the same address and a phone enrols.
func TestServiceActivation(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	b := startBinary(t, bin, data, true)
	stderr := b.stderr
	run := func(args ...string) (string, error) { return b.run(bin, args...) }
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("capf %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	refused := func() bool {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 10 s: %s\n%s", what, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	admin := adminClient(t, filepath.Join(data, "admin-tls", "ca.pem"))
	healthz := func() int {
		_, port, _ := net.SplitHostPort(b.admin)
		resp, err := admin.Get("https://localhost:" + port + "/healthz")
		if err != nil {
			t.Fatalf("admin /healthz: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if healthz() != http.StatusOK {
		t.Fatal("admin /healthz is not ok")
	}

	must("service", "deactivate")
	waitFor("the phone port refuses connections after deactivate", refused)
	// serve logs the change after closing the listener: a refused
	// connection can come first.
	waitFor("serve logs the deactivation", func() bool { return strings.Contains(stderr.String(), "service deactivated") })
	if healthz() != http.StatusOK {
		t.Fatal("the admin listener stopped with the phone listener")
	}
	var st struct {
		Active    bool   `json:"active"`
		ChangedBy string `json:"changed_by"`
	}
	if out := must("service", "status", "--json"); json.Unmarshal([]byte(out), &st) != nil || st.Active || !strings.HasPrefix(st.ChangedBy, "cli:") {
		t.Fatalf("service status --json: %s", out)
	}

	name := newPhoneName()
	must("device", "add", name, "--auth-mode", "string", "--auth-string", "80442", "--operation", "install", "--key", "ec256")
	phone := []string{"phone", "--server", b.addr, "--ca", filepath.Join(data, "ca", "capf.pem"), name, "--auth-string", "80442", "--json"}
	// One try: a refused connection is a communication failure a real
	// phone would retry later.
	if out, err := run(append(phone, "--retries", "0")...); err == nil || !strings.Contains(out, "refused") {
		t.Fatalf("capf phone enrolled while the service was deactivated:\n%s", out)
	}

	must("service", "activate")
	waitFor("the phone port accepts after activate", func() bool { return !refused() })
	out := must(phone...)
	var res struct {
		EndReason *uint8 `json:"end_reason"`
		Installed *struct {
			Serial string `json:"serial"`
		} `json:"installed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.EndReason == nil || *res.EndReason != 1 || res.Installed == nil {
		t.Fatalf("capf phone after activate: %s (%v)", out, err)
	}
	if audit := must("audit"); !strings.Contains(audit, "service.deactivate") || !strings.Contains(audit, "service.activate") {
		t.Fatalf("audit lacks the activation changes:\n%s", audit)
	}
}

// adminClient returns an HTTPS client that trusts only the admin CA.
func adminClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
