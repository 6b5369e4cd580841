package e2e

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/wire"
)

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBinary runs `capf serve` as a child process and waits until it
// listens.
func startBinary(t *testing.T, bin, data, addr string, log *syncBuffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--data", data, "serve", "--listen", addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening (phones)") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("capf serve did not start:\n%s", log.String())
	}
	return cmd
}

// TestCrashConsistency kills the server with SIGKILL while phones enrol,
// restarts it, and checks that the phones' retries complete, that every
// certificate any phone received is recorded, and that no device is left
// in progress.
func TestCrashConsistency(t *testing.T) {
	bin := capfBinary(t)
	data := t.TempDir()
	addr := freeAddr(t)
	var log syncBuffer
	srv := startBinary(t, bin, data, addr, &log)
	t.Cleanup(func() { _ = srv.Process.Kill(); _, _ = srv.Process.Wait() })

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
	time.Sleep(700 * time.Millisecond)
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = srv.Process.Wait()
	time.Sleep(300 * time.Millisecond)
	var log2 syncBuffer
	srv2 := startBinary(t, bin, data, addr, &log2)
	t.Cleanup(func() { _ = srv2.Process.Kill(); _, _ = srv2.Process.Wait() })

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
