package admintls_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/fault"
)

// TestIssueFromSharedCA: two nodes' directories get server certificates
// from one CA made by NewCA, ca.pem is the shared CA, a node's own old CA
// key goes, a re-run keeps the certificate, and names outside the CA's
// constraints are refused without replacing the CA.
func TestIssueFromSharedCA(t *testing.T) {
	caCert, caKey, err := admintls.NewCA([]string{"node-b.example.net"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !caCert.IsCA || !caCert.PermittedDNSDomainsCritical {
		t.Fatalf("NewCA: IsCA %v, constrained %v", caCert.IsCA, caCert.PermittedDNSDomainsCritical)
	}
	dirA := filepath.Join(t.TempDir(), admintls.DirName)
	create(t, dirA, nil, t0) // node A had a CA of its own
	dirB := filepath.Join(t.TempDir(), admintls.DirName)
	var leaves [][]byte
	for _, c := range []struct {
		dir   string
		hosts []string
	}{{dirA, nil}, {dirB, []string{"node-b.example.net"}}} {
		res, err := admintls.IssueFrom(c.dir, caCert, caKey, c.hosts, t0)
		if err != nil {
			t.Fatalf("IssueFrom %s: %v", c.dir, err)
		}
		if !res.Issued || res.Certificate.Leaf.CheckSignatureFrom(caCert) != nil {
			t.Errorf("IssueFrom %s: issued %v, not signed by the shared CA", c.dir, res.Issued)
		}
		leaves = append(leaves, res.Certificate.Leaf.Raw)
		b, err := os.ReadFile(filepath.Join(c.dir, admintls.CAFile))
		if err != nil || !bytes.Contains(b, []byte("CERTIFICATE")) {
			t.Fatalf("ca.pem in %s: %v", c.dir, err)
		}
		if _, err := os.Stat(filepath.Join(c.dir, admintls.CAKeyFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s keeps a CA key beside the shared CA: %v", c.dir, err)
		}
	}
	again, err := admintls.IssueFrom(dirB, caCert, caKey, []string{"node-b.example.net"}, t0)
	if err != nil || again.Issued || !bytes.Equal(again.Certificate.Leaf.Raw, leaves[1]) {
		t.Errorf("second IssueFrom: issued %v, %v; want the same certificate kept", again.Issued, err)
	}
	_, err = admintls.IssueFrom(dirB, caCert, caKey, []string{"elsewhere.example.org"}, t0)
	if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), "elsewhere.example.org") {
		t.Errorf("IssueFrom for a name outside the constraints: %v, want Invalid naming it", err)
	}
}

func TestLoadCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), admintls.DirName)
	if _, _, err := admintls.LoadCA(dir); fault.KindOf(err) != fault.NotFound {
		t.Errorf("LoadCA of an empty directory: %v, want NotFound", err)
	}
	res := create(t, dir, nil, t0)
	c, k, err := admintls.LoadCA(dir)
	if err != nil || !bytes.Equal(c.Raw, res.CA.Raw) || k == nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, admintls.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := admintls.LoadCA(dir); fault.KindOf(err) != fault.Invalid {
		t.Errorf("LoadCA without the key: %v, want Invalid", err)
	}
}
