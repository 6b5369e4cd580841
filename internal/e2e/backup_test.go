package e2e

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/wire"
)

// deviceCount returns N of "N of N devices" that device list prints.
func deviceCount(t *testing.T, args ...string) int {
	t.Helper()
	out, errOut, code := capfRun(append(args, "device", "list")...)
	if code != 0 {
		t.Fatalf("device list: exit %d: %s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(\d+) of (\d+) devices`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("device list printed no count:\n%s", out)
	}
	n, _ := strconv.Atoi(m[2])
	return n
}

// rekeyByLSC arms an install by LSC for name and runs the phone whose
// flash (state) holds the LSC it was given, against addr that it trusts
// by trust; it must end with a new LSC that chains to trust.
func rekeyByLSC(t *testing.T, addr string, trust *x509.Certificate, name, state string, admin ...string) *x509.Certificate {
	t.Helper()
	if out, errOut, code := capfRun(append(admin, "device", "set", name, "--auth-mode", "lsc", "--operation", "install")...); code != 0 {
		t.Fatalf("device set: exit %d: %s%s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := phonesim.Run(ctx, phonesim.Options{Server: addr, Trust: []*x509.Certificate{trust}, DeviceName: name, StateDir: state,
		AuthMode: phonesim.AuthModeLSC, RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
	if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
		t.Fatalf("re-key by LSC: %+v %v", res, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(trust)
	if _, err := res.Installed.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the new LSC does not chain to the CAPF certificate: %v", err)
	}
	return res.Installed
}

// TestBackupUnderLoadAndRestore: `capf backup` of a SQLite data directory
// while phones enrol gives an archive (mode 0600) that restores into a
// fresh directory; a server started there presents the same CAPF
// certificate, holds every device of the snapshot with its LSC, and a
// phone holding an LSC from before the backup re-keys by that LSC. The
// same archive restores into PostgreSQL (the keys sealed under a KEK),
// where a node serves the same fleet; a backup of that database restores
// back into SQLite with the KEK, and serves it too.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	s := startServer(t, nil, "")
	capfCert := s.trust[0]

	// A phone with an LSC from before the backup.
	phoneA, stateA := newPhoneName(), t.TempDir()
	lscA := enroll(t, s, phoneA, stateA, "ec256").Installed

	// Phones enrolling while the backup runs.
	const loadPhones = 16
	names := make([]string, loadPhones)
	for i := range names {
		names[i] = newPhoneName()
		s.mustCapf("device", "add", names[i], "--operation", "install", "--key", "ec256")
	}
	var enrolled atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, loadPhones)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < loadPhones; i += 4 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				res, err := phonesim.Run(ctx, phonesim.Options{Server: s.addr, Trust: s.trust, DeviceName: names[i],
					RetryInterval: 50 * time.Millisecond, MessageTimeout: 15 * time.Second})
				cancel()
				if err != nil || res.Installed == nil {
					errs <- err
					continue
				}
				enrolled.Add(1)
			}
		}(w)
	}
	for enrolled.Load() < 2 {
		time.Sleep(5 * time.Millisecond) // polls the load's progress
	}
	archive := filepath.Join(t.TempDir(), "capf-backup.tar.gz")
	before := enrolled.Load()
	out, errOut, code := capfRun("--data", s.data, "backup", "--out", archive)
	during := enrolled.Load()
	t.Logf("phones enrolled: %d when the backup started, %d when it ended, of %d", before, during, loadPhones)
	if code != 0 {
		t.Fatalf("backup under load: exit %d: %s%s", code, out, errOut)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a phone of the load failed: %v", err)
	}
	if during == loadPhones {
		t.Logf("the load finished before the backup did (%d phones)", during)
	}
	if !strings.Contains(out, "holds private keys") {
		t.Errorf("backup of a SQLite directory does not say the archive holds private keys:\n%s", out)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v, mode %v; want 0600", err, fi.Mode())
	}
	s.stop()

	// Into a fresh directory.
	restored := filepath.Join(t.TempDir(), "restored")
	if out, errOut, code := capfRun("--data", restored, "restore", archive); code != 0 {
		t.Fatalf("restore: exit %d: %s%s", code, out, errOut)
	}
	devices := deviceCount(t, "--data", restored)
	if want := loadPhones + 1; devices != want {
		t.Errorf("restored %d devices, want %d (every device was added before the backup)", devices, want)
	}
	// The snapshot is consistent: every LSC a restored device holds was
	// recorded as issued, and the phone from before has its LSC.
	var withLSC int
	for _, n := range append([]string{phoneA}, names...) {
		out, _, code := capfRun("--data", restored, "device", "show", n, "--json")
		if code != 0 {
			t.Fatalf("device show %s in the restored directory: exit %d", n, code)
		}
		if strings.Contains(out, `"lsc_status": "none"`) {
			continue
		}
		withLSC++
	}
	if withLSC < 1+int(min(during, 2)) || withLSC > 1+loadPhones {
		t.Errorf("%d restored devices hold an LSC; want between %d and %d", withLSC, 1+min(during, 2), 1+loadPhones)
	}
	if out, _, _ := capfRun("--data", restored, "device", "show", phoneA, "--json"); !strings.Contains(out, lscA.SerialNumber.Text(16)) && !strings.Contains(strings.ToLower(out), strings.ToLower(lscA.SerialNumber.Text(16))) {
		t.Errorf("the restored device %s does not hold its LSC %X:\n%s", phoneA, lscA.SerialNumber, out)
	}
	r := startServer(t, nil, restored)
	if leafSHA(tlsLeaf(t, r.addr)) != leafSHA(capfCert) {
		t.Fatalf("the restored server presents another CAPF certificate")
	}
	rekeyByLSC(t, r.addr, capfCert, phoneA, stateA, "--data", restored)
	r.stop()

	// Into PostgreSQL: the key files are sealed under a KEK.
	dsn := pgtest.DSN(t)
	kekFile := filepath.Join(t.TempDir(), "kek")
	if _, err := kek.Generate(kekFile, nil); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := capfRun("--db", dsn, "restore", archive); code == 0 || !strings.Contains(errOut, "--kek-file") {
		t.Errorf("restore into PostgreSQL without a KEK: exit %d: %s%s; want a refusal that asks for --kek-file", code, out, errOut)
	}
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "restore", archive); code != 0 {
		t.Fatalf("restore into PostgreSQL: exit %d: %s%s", code, out, errOut)
	}
	if got := deviceCount(t, "--data", t.TempDir(), "--db", dsn); got != devices {
		t.Errorf("PostgreSQL holds %d devices after the restore, want %d", got, devices)
	}
	if out, errOut, code := capfRun("--db", dsn, "--kek-file", kekFile, "restore", archive); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Errorf("a second restore into the same database: exit %d: %s%s; want a refusal saying it is not empty", code, out, errOut)
	}
	n := startKeysNode(t, dsn, kekFile)
	if leafSHA(tlsLeaf(t, n.phones)) != leafSHA(capfCert) {
		t.Fatalf("the PostgreSQL node presents another CAPF certificate")
	}
	cl := []string{"--data", t.TempDir(), "--db", dsn, "--kek-file", kekFile}
	rekeyByLSC(t, n.phones, capfCert, phoneA, stateA, cl...)

	// And back, from a backup of PostgreSQL taken while it serves.
	pgArchive := filepath.Join(t.TempDir(), "pg.tar")
	if out, errOut, code := capfRun(append(cl, "backup", "--out", pgArchive)...); code != 0 {
		t.Fatalf("backup of PostgreSQL: exit %d: %s%s", code, out, errOut)
	}
	otherKEK := filepath.Join(t.TempDir(), "other-kek")
	if _, err := kek.Generate(otherKEK, nil); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := capfRun("--db", pgtest.DSN(t), "--kek-file", otherKEK, "restore", pgArchive); code == 0 || !strings.Contains(errOut, "is not the one") {
		t.Errorf("restore of a cluster's archive with another KEK: exit %d: %s%s; want a refusal naming the wrong KEK", code, out, errOut)
	}
	if out, errOut, code := capfRun("--db", pgtest.DSN(t), "restore", pgArchive); code != 0 {
		t.Errorf("restore of a cluster's archive into another database (keys stay sealed): exit %d: %s%s", code, out, errOut)
	}
	back := filepath.Join(t.TempDir(), "back")
	if out, errOut, code := capfRun("--data", back, "restore", pgArchive); code == 0 || !strings.Contains(errOut, "--kek-file") {
		t.Errorf("restore of sealed keys into SQLite without a KEK: exit %d: %s%s; want a refusal that asks for --kek-file", code, out, errOut)
	}
	if _, err := os.Stat(back); err == nil {
		t.Errorf("a refused restore created %s", back)
	}
	if out, errOut, code := capfRun("--data", back, "--kek-file", kekFile, "restore", pgArchive); code != 0 {
		t.Fatalf("restore of the PostgreSQL archive into SQLite: exit %d: %s%s", code, out, errOut)
	}
	if got := deviceCount(t, "--data", back); got != devices {
		t.Errorf("SQLite holds %d devices after the restore from PostgreSQL, want %d", got, devices)
	}
	b := startServer(t, nil, back)
	if leafSHA(tlsLeaf(t, b.addr)) != leafSHA(capfCert) {
		t.Fatalf("the server restored from PostgreSQL presents another CAPF certificate")
	}
	rekeyByLSC(t, b.addr, capfCert, phoneA, stateA, "--data", back)
}
