package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/wire"
)

// TestClusterCAPFRollover: on PostgreSQL with the keys under a KEK, a CA
// staged by one command is activated by another, and both running nodes
// present it within seconds, without a restart; a phone trusting only the
// new certificate enrols on either, and a phone with an LSC from the old
// one authenticates on the other node and receives one from the new.
func TestClusterCAPFRollover(t *testing.T) {
	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(t.TempDir(), "kek")
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "cluster", "init", "--new-kek"); code != 0 {
		t.Fatalf("cluster init: exit %d: %s%s", code, out, errOut)
	}
	a := startKeysNode(t, dsn, kekFile)
	b := startKeysNode(t, dsn, kekFile)
	cl := func(args ...string) string {
		t.Helper()
		out, errOut, code := capfRun(append([]string{"--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile}, args...)...)
		if code != 0 {
			t.Fatalf("capf %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	ca1 := tlsLeaf(t, a.phones)
	phone := func(addr, name, state string, trust ...*x509.Certificate) *phonesim.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := phonesim.Run(ctx, phonesim.Options{Server: addr, Trust: trust, DeviceName: name, StateDir: state,
			RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
		if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
			t.Fatalf("phone %s on %s: %+v %v", name, addr, res, err)
		}
		return res
	}
	old, oldState := newPhoneName(), t.TempDir()
	cl("device", "add", old, "--operation", "install", "--key", "ec256")
	if res := phone(b.phones, old, oldState, ca1); !issuedBy(res.Installed, ca1) {
		t.Fatal("the first LSC is not from certificate 1")
	}

	cl("ca", "regenerate", "--key-algorithm", "ec256")
	var rows []caRow
	if err := json.Unmarshal([]byte(cl("ca", "status", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].State != "active" || rows[0].Phones != 1 || rows[1].State != "staged" {
		t.Fatalf("ca status after regenerate: %+v", rows)
	}
	_, rest := pem.Decode([]byte(cl("ca", "export", "--all")))
	blk, _ := pem.Decode(rest)
	if blk == nil {
		t.Fatal("ca export --all gave fewer than two certificates")
	}
	ca2, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cl("ca", "activate", rows[1].ID)
	activated := time.Now()
	deadline := activated.Add(10 * time.Second)
	for !tlsLeaf(t, a.phones).Equal(ca2) || !tlsLeaf(t, b.phones).Equal(ca2) {
		if time.Now().After(deadline) {
			t.Fatal("the nodes do not present the activated certificate 10 s later")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("both nodes present the activated certificate %v after the activation", time.Since(activated).Round(10*time.Millisecond))
	fresh := newPhoneName()
	cl("device", "add", fresh, "--operation", "install", "--key", "ec256")
	if res := phone(a.phones, fresh, t.TempDir(), ca2); !issuedBy(res.Installed, ca2) {
		t.Fatal("a new phone's LSC is not from certificate 2")
	}
	cl("device", "set", old, "--auth-mode", "lsc", "--operation", "install")
	if res := phone(a.phones, old, oldState, ca1, ca2); !issuedBy(res.Installed, ca2) {
		t.Fatal("the old phone's new LSC is not from certificate 2")
	}
	if err := json.Unmarshal([]byte(cl("ca", "status", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if rows[0].State != "retiring" || rows[0].Phones != 0 || rows[1].State != "active" || rows[1].Phones != 2 {
		t.Fatalf("ca status after the rollover: %+v", rows)
	}
	// The KEK rotated under the running nodes re-seals the new CA's key
	// with the others (the new KEK opens the set), and the nodes, which
	// have every CA open, still follow the next change.
	newKEK := filepath.Join(t.TempDir(), "kek2")
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "kek", "rotate", "--new-kek-file", newKEK, "--generate"); code != 0 {
		t.Fatalf("kek rotate: exit %d: %s%s", code, out, errOut)
	}
	nodeKEK := kekFile
	kekFile = newKEK
	logs := func() string { return a.errOut.String() + b.errOut.String() }
	followed := strings.Count(logs(), "CA set changed")
	cl("ca", "retire", rows[0].ID)
	deadline = time.Now().Add(10 * time.Second)
	for strings.Count(logs(), "CA set changed") < followed+2 {
		if strings.Contains(logs(), "does not open") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not follow the retire after the KEK rotation:\n%s\n%s", a.errOut, b.errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(a.errOut.String()+b.errOut.String(), "does not open") {
		t.Fatalf("a node could not open the CA set:\n%s\n%s", a.errOut, b.errOut)
	}
	if out := cl("ca", "status"); !strings.Contains(out, "retired") {
		t.Fatalf("ca status with the new KEK:\n%s", out)
	}

	// A CA made after the rotation is sealed under the new KEK. Nodes whose
	// KEK file still holds the old one say so, naming both KEKs, and keep
	// what they have open; once the rotated KEK file is at their path they
	// read it again at the next change, without a restart, and present
	// the activated certificate.
	cl("ca", "regenerate", "--key-algorithm", "ec256")
	deadline = time.Now().Add(10 * time.Second)
	for strings.Count(a.errOut.String(), "copy the rotated KEK file") == 0 || strings.Count(b.errOut.String(), "copy the rotated KEK file") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not name the rotated KEK:\n%s\n%s", a.errOut, b.errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !tlsLeaf(t, a.phones).Equal(ca2) || !tlsLeaf(t, b.phones).Equal(ca2) {
		t.Fatal("a node stopped presenting the active certificate when it could not open a new one")
	}
	rotated, err := os.ReadFile(newKEK)
	if err != nil {
		t.Fatal(err)
	}
	tmp := nodeKEK + ".new"
	if err := os.WriteFile(tmp, rotated, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, nodeKEK); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cl("ca", "status", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	var staged string
	for _, r := range rows {
		if r.State == "staged" {
			staged = r.ID
		}
	}
	if staged == "" {
		t.Fatalf("no staged CA after regenerate: %+v", rows)
	}
	_, rest = pem.Decode([]byte(cl("ca", "export", "--all")))
	var ca3 *x509.Certificate
	for blk, rest := pem.Decode(rest); blk != nil; blk, rest = pem.Decode(rest) {
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil && !c.Equal(ca2) {
			ca3 = c
		}
	}
	if ca3 == nil {
		t.Fatal("ca export --all does not hold the staged certificate")
	}
	cl("ca", "activate", staged)
	deadline = time.Now().Add(10 * time.Second)
	for !tlsLeaf(t, a.phones).Equal(ca3) || !tlsLeaf(t, b.phones).Equal(ca3) {
		if time.Now().After(deadline) {
			t.Fatalf("the nodes do not present the certificate made after the KEK rotation 10 s after its activation:\n%s\n%s", a.errOut, b.errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fresh = newPhoneName()
	cl("device", "add", fresh, "--operation", "install", "--key", "ec256")
	if res := phone(b.phones, fresh, t.TempDir(), ca3); !issuedBy(res.Installed, ca3) {
		t.Fatal("a new phone's LSC is not from the certificate made after the KEK rotation")
	}
}
