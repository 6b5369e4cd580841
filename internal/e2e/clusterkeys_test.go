package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/cli"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/wire"
)

// capfRun runs a capf command line in-process and returns its output and
// exit code.
func capfRun(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// keysNode is a `capf serve` running in-process on a cluster database.
type keysNode struct {
	phones, admin string
	out, errOut   *syncBuffer
	done          chan int
}

// startKeysNode runs serve over a new data directory with --db dsn and
// --kek-file kekFile, and waits until it listens.
func startKeysNode(t *testing.T, dsn, kekFile string) *keysNode {
	t.Helper()
	data := t.TempDir()
	n := &keysNode{out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	argv := []string{"--data", data, "--db", dsn, "--kek-file", kekFile, "serve",
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--drain", "5s"}
	go func() { n.done <- cli.Run(ctx, argv, n.out, n.errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			t.Error("capf serve did not stop")
		}
		if t.Failed() {
			t.Logf("node log:\n%s\n%s", n.out, n.errOut)
		}
	})
	phones := regexp.MustCompile(`listening \(phones\): (\S+)`)
	admin := regexp.MustCompile(`admin: +https://(\S+)/`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := phones.FindStringSubmatch(n.out.String()); m != nil {
			n.phones = m[1]
			if a := admin.FindStringSubmatch(n.out.String()); a != nil {
				n.admin = a[1]
			}
			return n
		}
		select {
		case code := <-n.done:
			n.done <- code
			t.Fatalf("capf serve exited %d before listening:\n%s\n%s", code, n.out, n.errOut)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("capf serve did not start:\n%s\n%s", n.out, n.errOut)
		}
	}
}

// tlsLeaf returns the certificate a TLS server at addr presents.
func tlsLeaf(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} // the test compares what it got
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

func leafSHA(c *x509.Certificate) string { return fmt.Sprintf("%X", sha256.Sum256(c.Raw)) }

// TestClusterSharesKeys: cluster init stores the keys in PostgreSQL once
// (a second init is refused), two serve nodes on that database present
// the same CAPF certificate on the phone port and admin certificates from
// the same CA, a phone enrols against the second with the first's
// certificate as its trust, and the issued LSC chains to it.
func TestClusterSharesKeys(t *testing.T) {
	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(t.TempDir(), "kek")
	out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek")
	if code != 0 {
		t.Fatalf("cluster init: exit %d: %s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^  capf .*\n +SHA-256 ([0-9A-F]{64})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("cluster init printed no CAPF fingerprint:\n%s", out)
	}
	initSum := m[1]
	if fi, err := os.Stat(kekFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("KEK file: %v, mode %v; want 0600", err, fi.Mode())
	}
	again, errAgain, code := capfRun("--db", dsn, "--kek-file", kekFile, "cluster", "init")
	if code != cli.ExitConflict || !strings.Contains(errAgain, "already holds this cluster's keys") {
		t.Errorf("second cluster init: exit %d, %s%s; want %d saying the keys are there", code, again, errAgain, cli.ExitConflict)
	}

	a := startKeysNode(t, dsn, kekFile)
	b := startKeysNode(t, dsn, kekFile)
	leafA, leafB := tlsLeaf(t, a.phones), tlsLeaf(t, b.phones)
	if leafSHA(leafA) != leafSHA(leafB) || leafSHA(leafA) != initSum {
		t.Fatalf("CAPF certificates: node A %s, node B %s, cluster init %s; want one", leafSHA(leafA), leafSHA(leafB), initSum)
	}
	if !strings.Contains(a.out.String(), "CAPF certificate:   the database") {
		t.Errorf("node A's start-up does not say the CAPF certificate is from the database:\n%s", a.out)
	}
	adminA, adminB := tlsLeaf(t, a.admin), tlsLeaf(t, b.admin)
	if !bytes.Equal(adminA.AuthorityKeyId, adminB.AuthorityKeyId) || !bytes.Equal(adminA.RawIssuer, adminB.RawIssuer) {
		t.Errorf("admin certificates from different CAs: %s / %s", adminA.Issuer, adminB.Issuer)
	}

	// A phone that trusts the certificate node A presents enrols on node B.
	name := newPhoneName()
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "device", "add", name,
		"--auth-mode", "string", "--auth-string", "80442", "--operation", "install", "--key", "ec256"); code != 0 {
		t.Fatalf("device add: exit %d: %s%s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := phonesim.Run(ctx, phonesim.Options{Server: b.phones, Trust: []*x509.Certificate{leafA}, DeviceName: name,
		AuthString: "80442", RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
		t.Fatalf("phone on node B: %+v %v", res, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leafA)
	if _, err := res.Installed.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the LSC node B issued does not chain to node A's CAPF certificate: %v", err)
	}

	// capf init of a new node's directory keeps the cluster's keys and
	// writes no CAPF key of its own.
	newData := filepath.Join(t.TempDir(), "node-c")
	if out, errOut, code := capfRun("--data", newData, "--db", dsn, "--kek-file", kekFile, "init"); code != 0 || !strings.Contains(out, initSum) {
		t.Errorf("init of a cluster node: exit %d: %s%s; want SHA-256 %s", code, out, errOut, initSum)
	}
	if _, err := os.Stat(filepath.Join(newData, "ca")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("init of a cluster node made a CAPF directory: %v", err)
	}

	// The trust commands sign with the cluster's SAST primary.
	sast := regexp.MustCompile(`(?m)^  sast-primary .*\n +SHA-256 ([0-9A-F]{64})$`).FindStringSubmatch(out)
	if sast == nil {
		t.Fatalf("cluster init printed no SAST fingerprint:\n%s", out)
	}
	cl := []string{"--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile}
	if signers, errOut, code := capfRun(append(cl, "trust", "signers")...); code != 0 || !strings.Contains(signers, sast[1]) {
		t.Errorf("trust signers: exit %d: %s%s; want the primary %s", code, signers, errOut, sast[1])
	}
	itl := filepath.Join(t.TempDir(), "ITLFile.tlv")
	if built, errOut, code := capfRun(append(cl, "trust", "build", "--out", itl)...); code != 0 {
		t.Fatalf("trust build: exit %d: %s%s", code, built, errOut)
	}
	if shown, errOut, code := capfRun(append(cl, "trust", "show", itl)...); code != 0 || !strings.Contains(strings.ReplaceAll(shown, ":", ""), sast[1]) || !strings.Contains(strings.ReplaceAll(shown, ":", ""), initSum) {
		t.Errorf("trust show of the built ITL: exit %d: %s%s; want it signed, listing SAST %s and CAPF %s", code, shown, errOut, sast[1], initSum)
	}

	// The admin commands read the cluster's CAPF certificate too.
	show, errShow, code := capfRun("--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile, "ca", "show")
	if code != 0 || !strings.Contains(strings.ReplaceAll(show, ":", ""), initSum) {
		t.Errorf("ca show: exit %d: %s%s; want SHA-256 %s", code, show, errShow, initSum)
	}
}

// TestClusterKEKRefused: serve and the commands refuse a KEK that is not
// the cluster's, one readable by others, a missing one and a malformed
// one, with a message that names the cause and no data directory created;
// a database without keys says to run cluster init, and one with keys
// wants the KEK. After kek rotate only the new KEK opens the keys.
func TestClusterKEKRefused(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek")
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek", "--capf-key", "ec256"); code != 0 {
		t.Fatalf("cluster init: exit %d: %s%s", code, out, errOut)
	}
	other := filepath.Join(dir, "other")
	if _, err := kek.Generate(other, nil); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open")
	b, _ := os.ReadFile(kekFile)
	if err := os.WriteFile(open, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, b[:40], 0o600); err != nil {
		t.Fatal(err)
	}
	empty := pgtest.DSN(t)
	cases := []struct {
		name, db, kek string
		want          string
	}{
		{"wrong-kek", dsn, other, "is not the one this cluster's keys were sealed with"},
		{"group-readable", dsn, open, "has mode 0644: group or others may access it"},
		{"missing", dsn, filepath.Join(dir, "none"), "no such file"},
		{"malformed", dsn, short, "it holds 40 characters: want 64 hex digits"},
		{"no-keys", empty, kekFile, "run `capf cluster init"},
		{"keys-but-no-kek", dsn, "", "give the cluster's KEK file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			args := []string{"--data", data, "--db", c.db}
			if c.kek != "" {
				args = append(args, "--kek-file", c.kek)
			}
			out, errOut, code := capfRun(append(args, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "")...)
			if code == 0 || !strings.Contains(errOut, c.want) {
				t.Errorf("serve: exit %d, stderr %q; want it to fail saying %q\n%s", code, errOut, c.want, out)
			}
			if _, err := os.Stat(data); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("data directory after the refused start: %v, want none", err)
			}
		})
	}

	// Rotation: the new KEK opens the keys, the old one no longer does.
	newFile := filepath.Join(dir, "kek2")
	out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "kek", "rotate", "--new-kek-file", newFile, "--generate")
	if code != 0 || !strings.Contains(out, "re-sealed 4 keys") {
		t.Fatalf("kek rotate: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := capfRun("--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile, "ca", "show"); code == 0 || !strings.Contains(errOut, "is not the one this cluster's keys were sealed with") {
		t.Errorf("ca show with the old KEK after rotation: exit %d, %s", code, errOut)
	}
	if out, errOut, code := capfRun("--data", t.TempDir(), "--db", dsn, "--kek-file", newFile, "ca", "show"); code != 0 || !strings.Contains(out, "Key:") {
		t.Errorf("ca show with the new KEK: exit %d, %s%s", code, out, errOut)
	}
	if _, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "kek", "rotate", "--new-kek-file", newFile); code == 0 || !strings.Contains(errOut, "is not the one") {
		t.Errorf("a second rotation from the old KEK: exit %d, %s", code, errOut)
	}
}

// TestClusterInitImportsDataDirectory: cluster init --data stores the CAPF
// key and SAST signers of an existing data directory, so that its phones
// keep trusting the certificate; without a CAPF certificate there it
// refuses and stores nothing.
func TestClusterInitImportsDataDirectory(t *testing.T) {
	data := t.TempDir()
	a, _, err := ca.LoadOrCreate(ca.Options{Dir: filepath.Join(data, "ca"), KeyAlgorithm: ca.ECP256})
	if err != nil {
		t.Fatal(err)
	}
	ks, _, err := trust.OpenKeystore(trust.KeystoreOptions{Dir: filepath.Join(data, "trust")})
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(t.TempDir(), "kek")
	if _, errOut, code := capfRun("--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"); code != cli.ExitNotFound || !strings.Contains(errOut, "no CAPF certificate to import") {
		t.Errorf("import of a directory without keys: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(kekFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("KEK file after the refused init: %v, want none", err)
	}
	out, errOut, code := capfRun("--data", data, "--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek")
	if code != 0 {
		t.Fatalf("cluster init --data: exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{leafSHA(a.Certificate()), leafSHA(ks.Primary.Cert), leafSHA(ks.Backup.Cert), "imported from"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster init --data does not show %s:\n%s", want, out)
		}
	}
	n := startKeysNode(t, dsn, kekFile)
	if got := tlsLeaf(t, n.phones); leafSHA(got) != leafSHA(a.Certificate()) {
		t.Errorf("the node presents %s, want the imported %s", got.Subject, a.Certificate().Subject)
	}
}
