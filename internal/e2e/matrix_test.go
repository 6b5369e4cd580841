package e2e

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/wire"
)

var phoneSeq atomic.Uint64

// newPhoneName returns a device name no other test uses.
func newPhoneName() string { return fmt.Sprintf("SEP%012X", 0xA0000000+phoneSeq.Add(1)) }

// opensslVerify checks an issued LSC with `openssl verify -CAfile` against
// the exported CAPF certificate.
func opensslVerify(t *testing.T, s *server, cert *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "capf.pem")
	s.mustCapf("ca", "export", "-o", caFile)
	lsc := filepath.Join(dir, "lsc.pem")
	if err := os.WriteFile(lsc, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "verify", "-CAfile", caFile, lsc).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("openssl verify: %v: %s", err, out)
	}
}

// TestMatrix runs every authentication mode × every operation × RSA and EC
// keys against one server, phones in parallel.
func TestMatrix(t *testing.T) {
	s := startServer(t, nil, "")
	for _, mode := range []string{"string", "null", "lsc", "mic"} {
		for _, op := range []string{"install", "delete", "troubleshoot", "none"} {
			for _, kt := range []string{"rsa", "ec"} {
				t.Run(mode+"/"+op+"/"+kt, func(t *testing.T) {
					t.Parallel()
					runMatrixCase(t, s, mode, op, kt)
				})
			}
		}
	}
}

func runMatrixCase(t *testing.T, s *server, mode, op, kt string) {
	name := newPhoneName()
	state := t.TempDir()
	key := map[string]string{"rsa": "rsa1024", "ec": "ec256"}[kt]
	mic := s.mfr.issue(t, "CP-8841-"+name, kt == "rsa", false)
	withMIC := func(o *phonesim.Options) { o.MIC = mic }

	// An LSC first, where the case needs one: authenticating with it, or
	// something to delete or fetch.
	hadLSC := mode == "lsc" || op == "delete" || op == "troubleshoot"
	if hadLSC {
		s.mustCapf("device", "add", name, "--auth-mode", "null", "--operation", "install", "--key", key)
		res, err := s.phone(name, state, func(o *phonesim.Options) { withMIC(o); o.AuthMode = phonesim.AuthModeNull })
		if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
			t.Fatalf("pre-install: %+v %v", res, err)
		}
		args := []string{"device", "set", name, "--auth-mode", mode, "--operation", op}
		if mode == "string" {
			args = append(args, "--auth-string", "1234567")
		}
		s.mustCapf(args...)
	} else {
		args := []string{"device", "add", name, "--auth-mode", mode, "--operation", op, "--key", key}
		if mode == "string" {
			args = append(args, "--auth-string", "1234567")
		}
		s.mustCapf(args...)
	}
	before := s.device(name)

	res, err := s.phone(name, state, func(o *phonesim.Options) {
		withMIC(o)
		o.AuthMode = phonesim.AuthMode(mode)
		if mode == "string" {
			o.AuthString = "1234567"
		}
	})
	if err != nil {
		t.Fatalf("phone: %v (result %+v)", err, res)
	}
	d := s.device(name)
	switch op {
	case "install":
		if res.EndReason != wire.ReasonSuccess || res.Installed == nil {
			t.Fatalf("install: end reason %v, installed %v", res.EndReason, res.Installed != nil)
		}
		if d.Status != "Upgrade Success" || d.Operation != "none" || d.LSCStatus != "valid" {
			t.Fatalf("device after install: %+v", d)
		}
		if got := fmt.Sprintf("%X", res.Installed.SerialNumber.Bytes()); got != d.LSCSerial {
			t.Errorf("phone holds serial %s, CAPF recorded %s", got, d.LSCSerial)
		}
		checkKeyType(t, res.Installed, kt)
		if res.Installed.Subject.CommonName != name {
			t.Errorf("LSC CN %q", res.Installed.Subject.CommonName)
		}
		opensslVerify(t, s, res.Installed)
	case "delete":
		if res.EndReason != wire.ReasonSuccess || !res.Deleted {
			t.Fatalf("delete: end reason %v deleted %v", res.EndReason, res.Deleted)
		}
		if d.Status != "Delete Success" || d.LSCStatus != "none" || d.Operation != "none" {
			t.Fatalf("device after delete: %+v", d)
		}
		if lsc, _ := phonesim.LoadLSC(state); lsc != nil {
			t.Error("the phone still holds an LSC")
		}
	case "troubleshoot":
		if res.EndReason != wire.ReasonNoAction || !res.Fetched {
			t.Fatalf("troubleshoot: end reason %v fetched %v", res.EndReason, res.Fetched)
		}
		if d.Status != "Troubleshoot Success" || len(d.Fetched) == 0 {
			t.Fatalf("device after troubleshoot: %+v", d)
		}
		if _, err := os.Stat(filepath.Join(s.data, "trace", name+"-LSC.pem")); err != nil {
			t.Errorf("LSC trace file: %v", err)
		}
		if mode == "mic" {
			if _, err := os.Stat(filepath.Join(s.data, "trace", name+"-MIC.pem")); err != nil {
				t.Errorf("MIC trace file (the certificate the phone authenticated with): %v", err)
			}
		}
	case "none":
		if res.EndReason != wire.ReasonNoAction || len(res.Operations) != 0 {
			t.Fatalf("no pending operation: end reason %v operations %v", res.EndReason, res.Operations)
		}
		if d.Status != before.Status {
			t.Errorf("status changed from %q to %q", before.Status, d.Status)
		}
	}
	if op != "none" {
		if d.AuthString != "" {
			t.Errorf("authentication string %q not used up", d.AuthString)
		}
		if len(d.History) == 0 || d.History[0].AuthMode != mode || !strings.HasPrefix(d.History[0].Remote, "127.0.0.1:") {
			t.Errorf("history %+v, want newest attempt by %s from 127.0.0.1", d.History, mode)
		}
	}
}

func checkKeyType(t *testing.T, c *x509.Certificate, kt string) {
	t.Helper()
	switch c.PublicKey.(type) {
	case *rsa.PublicKey:
		if kt != "rsa" {
			t.Errorf("LSC has an RSA key, want %s", kt)
		}
	case *ecdsa.PublicKey:
		if kt != "ec" {
			t.Errorf("LSC has an EC key, want %s", kt)
		}
	default:
		t.Errorf("LSC has a %T key, want %s", c.PublicKey, kt)
	}
}
