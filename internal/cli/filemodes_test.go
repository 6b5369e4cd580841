package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
)

// lockedBuf is a goroutine-safe buffer for a running server's output.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// serveBriefly runs `capf serve` until it listens, then stops it, and
// returns its exit code, stdout and stderr. A server that exits before
// listening returns at once.
func serveBriefly(t *testing.T, data string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuf
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--data", data, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--drain", "1s"}, &out, &errOut)
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), "listening (phones)") {
		select {
		case code := <-done:
			return code, out.String(), errOut.String()
		case <-deadline:
			t.Fatalf("serve did not start:\n%s%s", out.String(), errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	return <-done, out.String(), errOut.String()
}

func TestServeRefusesKeyReadableByOthers(t *testing.T) {
	data := t.TempDir()
	if err := os.Chmod(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.LoadOrCreate(ca.Options{Dir: filepath.Join(data, "ca"), KeyAlgorithm: ca.ECP256}); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(data, "ca", ca.KeyFile)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := serveBriefly(t, data)
	if code == ExitOK || strings.Contains(out, "listening (phones)") {
		t.Fatalf("serve started with a world-readable key (exit %d)", code)
	}
	if !strings.Contains(errOut, key) || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("the error does not name the key and the fix:\n%s", errOut)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := serveBriefly(t, data); code != ExitOK {
		t.Fatalf("after chmod 600: exit %d\n%s", code, errOut)
	}
}

func TestServeMakesDataDirPrivate(t *testing.T) {
	tests := []struct {
		name     string
		mode     os.FileMode
		wantWarn bool
	}{
		{name: "0755-fixed", mode: 0o755, wantWarn: true},
		{name: "0750-fixed", mode: 0o750, wantWarn: true},
		{name: "0700-untouched", mode: 0o700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "capf-data")
			if err := os.Mkdir(data, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(data, tt.mode); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := serveBriefly(t, data)
			if code != ExitOK {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			fi, err := os.Stat(data)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o700 {
				t.Errorf("data directory mode %04o, want 0700", got)
			}
			warned := strings.Contains(errOut, "data directory was accessible by others")
			if warned != tt.wantWarn {
				t.Errorf("warned %v, want %v:\n%s", warned, tt.wantWarn, errOut)
			}
		})
	}
}

func TestReportFileMode(t *testing.T) {
	data := initData(t)
	if _, errOut, code := run(t, data, "device", "add", "SEP58971ECC97C1", "--auth-mode", "string", "--auth-string", "80442"); code != ExitOK {
		t.Fatal(errOut)
	}
	tests := []struct {
		name     string
		existing os.FileMode // 0: no file yet
	}{
		{name: "new-file"},
		{name: "existing-0644-tightened", existing: 0o644},
		{name: "existing-0640-tightened", existing: 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.csv")
			if tt.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.existing); err != nil {
					t.Fatal(err)
				}
			}
			if _, errOut, code := run(t, data, "report", "csv", "-o", path); code != ExitOK {
				t.Fatal(errOut)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("report mode %04o, want 0600 (it holds authentication strings)", got)
			}
			if b, _ := os.ReadFile(path); !strings.Contains(string(b), "80442") {
				t.Errorf("report lacks the authentication string:\n%s", b)
			}
		})
	}
}
