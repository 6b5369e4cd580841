package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/wire"
)

// waitOpenAttempts polls the database, read-only, until each device has an
// attempt in progress.
func waitOpenAttempts(t *testing.T, db string, names []string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range names {
		for {
			as, err := st.ListAttempts(ctx, name, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(as) == 1 && as[0].FinishedAt.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never started its session (attempts %+v)", name, as)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// relay is the one address the phones know across a server restart: it
// listens for the whole test (no port is released and taken again) and
// forwards each connection to the server running at the time. While none
// runs, it closes the connection, as a host with no CAPF refuses it.
type relay struct {
	ln      net.Listener
	backend atomic.Value // string: the current server's address
}

func newRelay(t *testing.T) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	r.backend.Store("")
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.forward(c)
		}
	}()
	return r
}

func (r *relay) forward(c net.Conn) {
	defer c.Close()
	addr, _ := r.backend.Load().(string)
	if addr == "" {
		return
	}
	b, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done // either side gone (the server killed): drop both
}

// TestCrashConsistency kills the server with SIGKILL while phones enrol,
// restarts it, and checks that the phones' retries complete, that every
// certificate any phone received is recorded, and that no device is left
// in progress.
func TestCrashConsistency(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	rl := newRelay(t)
	addr := rl.ln.Addr().String()
	srv := startBinary(t, bin, data, false)
	rl.backend.Store(srv.addr)
	t.Cleanup(func() { _ = srv.cmd.Process.Kill(); _, _ = srv.cmd.Process.Wait() })

	const slow, fast = 10, 140
	names := make([]string, slow+fast)
	var csv strings.Builder
	csv.WriteString("Device Name,Certificate Operation,Key\n")
	for i := range names {
		names[i] = newPhoneName()
		fmt.Fprintf(&csv, "%s,install,ec256\n", names[i])
	}
	csvFile := filepath.Join(t.TempDir(), "phones.csv")
	if err := os.WriteFile(csvFile, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--data", data, "device", "import", csvFile).CombinedOutput(); err != nil {
		t.Fatalf("import: %v %s", err, out)
	}
	pemBytes, err := os.ReadFile(filepath.Join(data, "ca", "capf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	capfCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	type outcome struct {
		name string
		res  *phonesim.Result
		err  error
	}
	results := make(chan outcome, len(names))
	var wg sync.WaitGroup
	run := func(name string, keygen time.Duration) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		res, err := phonesim.Run(ctx, phonesim.Options{
			Server: addr, Trust: []*x509.Certificate{capfCert}, DeviceName: name,
			KeygenDelay: keygen, ProgressInterval: 200 * time.Millisecond,
			Retries: 30, RetryInterval: 300 * time.Millisecond, MessageTimeout: 10 * time.Second,
		})
		results <- outcome{name, res, err}
	}
	// The slow phones are surely generating keys when the server dies.
	for _, n := range names[:slow] {
		wg.Add(1)
		go run(n, 3*time.Second)
	}
	for _, n := range names[slow:] {
		wg.Add(1)
		go run(n, time.Duration(rand.IntN(600))*time.Millisecond)
	}
	// Kill once every slow phone is in its session: each has an open
	// attempt that lasts its 3 s of key generation, so the kill surely
	// interrupts all of them.
	waitOpenAttempts(t, filepath.Join(data, "capf.db"), names[:slow])
	rl.backend.Store("")
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = srv.cmd.Process.Wait()
	srv2 := startBinary(t, bin, data, false)
	log2 := srv2.stderr
	rl.backend.Store(srv2.addr)
	t.Cleanup(func() { _ = srv2.cmd.Process.Kill(); _, _ = srv2.cmd.Process.Wait() })

	wg.Wait()
	close(results)
	received := map[string]string{} // serial → device
	holds := map[string]string{}    // device → serial of the LSC the phone ended with
	for o := range results {
		// A phone whose install committed just before the kill, but which
		// never saw END_SESSION, retries and is told nothing is pending:
		// also complete, if it holds the LSC the CAPF recorded (below).
		if o.err != nil || (o.res.EndReason != wire.ReasonSuccess && o.res.EndReason != wire.ReasonNoAction) || o.res.Installed == nil {
			t.Errorf("%s did not complete after the restart: %+v %v", o.name, o.res, o.err)
			continue
		}
		for _, c := range o.res.Received {
			received[fmt.Sprintf("%X", c.SerialNumber.Bytes())] = o.name
		}
		holds[o.name] = fmt.Sprintf("%X", o.res.Installed.SerialNumber.Bytes())
	}
	if !strings.Contains(log2.String(), "marked sessions cut off by a restart as failed") {
		t.Errorf("the restart failed no interrupted session; log:\n%s", log2.String())
	}

	st, err := sqlite.Open(context.Background(), filepath.Join(data, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := st.ListIssuances(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	for _, is := range all {
		recorded[is.Serial] = is.Device
	}
	for serial, dev := range received {
		if recorded[serial] != dev {
			t.Errorf("certificate %s received by %s is not on record (recorded for %q)", serial, dev, recorded[serial])
		}
	}
	if len(received) < len(names) {
		t.Errorf("%d certificates received by %d phones", len(received), len(names))
	}
	page, err := st.ListDevices(context.Background(), device.Query{})
	if err != nil {
		t.Fatal(err)
	}
	interrupted := 0
	for _, d := range page.Devices {
		if d.Status != "Upgrade Success" || d.LSC == nil {
			t.Errorf("%s: status %q after the restart", d.Name, d.Status)
		} else if holds[d.Name] != d.LSC.Serial {
			t.Errorf("%s: the phone holds LSC %s, the CAPF recorded %s", d.Name, holds[d.Name], d.LSC.Serial)
		}
		as, _ := st.ListAttempts(context.Background(), d.Name, 0)
		for _, a := range as {
			if a.FinishedAt.IsZero() {
				t.Errorf("%s: attempt %d still open", d.Name, a.ID)
			}
			if a.Result == "Upgrade Failed: Interrupted By Server Restart" {
				interrupted++
			}
		}
	}
	if interrupted < slow {
		t.Errorf("%d attempts recorded as interrupted by the restart, want at least the %d slow phones", interrupted, slow)
	}
}
