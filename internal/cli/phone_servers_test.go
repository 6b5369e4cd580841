package cli

import (
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPhoneServerListErrors: a bad --server list is a usage error that
// names the entry and its fault, before any connection is made.
func TestPhoneServerListErrors(t *testing.T) {
	data := t.TempDir()
	ca := filepath.Join(t.TempDir(), "capf.pem")
	if err := os.WriteFile(ca, []byte("not used"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ server, want string }{
		{"a,b,c,d,e,f", "at most 5"},
		{"127.0.0.1:3804,,127.0.0.2", "entry 2: empty"},
		{"127.0.0.1:99999", "port \"99999\" is not a number from 1 to 65535"},
		{"capf.example.com,CAPF.example.com:3804", "entry 2: CAPF.example.com:3804 is entry 1 already"},
		{"https://capf.example.com", "want HOST or HOST:PORT"},
	} {
		t.Run(c.server, func(t *testing.T) {
			out, errOut, code := run(t, data, "phone", "SEP000000000001", "--server", c.server, "--ca", ca)
			if code != ExitUsage || !strings.Contains(errOut, "--server: server list") || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, stderr %q, want %d and %q%s", code, errOut, ExitUsage, c.want, out)
			}
		})
	}
}

// TestPhoneServerListFailover: with a dead first server, capf phone
// enrols with the second at once and says so.
func TestPhoneServerListFailover(t *testing.T) {
	srv := startIndependentServer(t, map[string]ixDevice{"SEP000000000001": {mode: "null", pending: true}})
	dir := t.TempDir()
	caPEM := filepath.Join(dir, "capf.pem")
	if err := os.WriteFile(caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.ca.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	live := srv.ln.Addr().String()
	// --retries 0: a wait for a retry would mean the list was not walked.
	out, errOut, code := run(t, t.TempDir(), "phone", "SEP000000000001", "--server", dead+","+live, "--ca", caPEM,
		"--auth-mode", "null", "--retries", "0", "--timeout", "10s", "--state", filepath.Join(dir, "state"), "--json")
	if code != ExitOK {
		t.Fatalf("exit %d:\n%s%s", code, out, errOut)
	}
	var res struct {
		Server    string `json:"server"`
		Failovers int    `json:"failovers"`
		Sessions  int    `json:"sessions"`
		Installed *struct {
			Serial string `json:"serial"`
		} `json:"installed"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if res.Server != live || res.Failovers != 1 || res.Sessions != 1 || res.Installed == nil {
		t.Errorf("result %+v, want an LSC from %s after moving past %s once", res, live, dead)
	}
	if v := srv.verdictAfter(t, 0); v != "installed" {
		t.Errorf("server verdict %q", v)
	}
}
