package notify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want, err string
	}{
		{"ok/newline", write("ok", "s3cret\n", 0o600), "s3cret", ""},
		{"ok/crlf", write("crlf", "s3cret\r\n", 0o400), "s3cret", ""},
		{"fail/group-readable", write("g", "s3cret\n", 0o640), "", "has mode 0640: group or others may access it"},
		{"fail/world-readable", write("w", "s3cret\n", 0o644), "", "chmod 600"},
		{"fail/empty", write("e", "\n", 0o600), "", "is empty"},
		{"fail/two-lines", write("two", "a\nAction: Command\n", 0o600), "", "one line"},
		{"fail/too-long", write("long", strings.Repeat("a", 5000), 0o600), "", "longer than 4096 bytes"},
		{"fail/missing", filepath.Join(dir, "none"), "", "no such file"},
		{"fail/directory", dir, "", "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadSecret(tc.path)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

// fakeClock is a clock whose waits end when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	waits   []time.Duration // every wait asked for
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waits = append(c.waits, d)
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func (c *fakeClock) waiting() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiters) }

type countNotifier struct {
	mu    sync.Mutex
	calls []time.Time
	clock *fakeClock
}

func (n *countNotifier) Notify(context.Context, string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, n.clock.Now())
	return nil
}

func TestPacedFloodBounded(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 12, 4, 4, 0, 0, 0, time.UTC)}
	inner := &countNotifier{clock: clock}
	p := NewPaced(PacedOptions{Notifier: inner, PerSecond: 5, MaxWait: 2 * time.Second, Now: clock.Now, After: clock.After})

	// A flood of 100 resets at the same instant: 11 get a slot (now, and
	// every 200ms up to 2s), the rest are refused at once as Throttled.
	const flood = 100
	errs := make(chan error, flood)
	for range flood {
		go func() { errs <- p.Notify(t.Context(), "SEP001122334455") }()
	}
	throttled := 0
	deadline := time.Now().Add(10 * time.Second)
	flooded := false // every reset has answered or is waiting: the clock may move
	for got := 0; got < flood; {
		select {
		case err := <-errs:
			got++
			if fault.KindOf(err) == fault.Throttled {
				throttled++
				if !strings.Contains(err.Error(), "at most 5 a second") {
					t.Errorf("throttled reason %q", err)
				}
			} else if err != nil {
				t.Fatalf("err %v", err)
			}
		default:
			if time.Now().After(deadline) {
				t.Fatalf("stuck: %d answered, %d waiting", got, clock.waiting())
			}
			flooded = flooded || got+clock.waiting() == flood
			if flooded && clock.waiting() > 0 {
				clock.advance(200 * time.Millisecond)
			} else {
				time.Sleep(time.Millisecond) // poll: let the goroutines reach their wait
			}
		}
	}
	if throttled != flood-11 {
		t.Errorf("%d throttled, want %d", throttled, flood-11)
	}
	inner.mu.Lock()
	defer inner.mu.Unlock()
	if len(inner.calls) != 11 {
		t.Fatalf("%d notifications passed, want 11", len(inner.calls))
	}
	// One went at once, the others waited for slots 200ms apart: never
	// more than 5 in any second.
	clock.mu.Lock()
	waits := slices.Sorted(slices.Values(clock.waits))
	clock.mu.Unlock()
	if len(waits) != 10 {
		t.Fatalf("waits %v, want 10", waits)
	}
	for i, w := range waits {
		if want := time.Duration(i+1) * 200 * time.Millisecond; w != want {
			t.Errorf("wait %d is %s, want %s", i, w, want)
		}
	}
}

func TestPacedCancelledWhileWaiting(t *testing.T) {
	clock := &fakeClock{now: time.Unix(0, 0)}
	inner := &countNotifier{clock: clock}
	p := NewPaced(PacedOptions{Notifier: inner, PerSecond: 1, Now: clock.Now, After: clock.After})
	if err := p.Notify(t.Context(), "SEP1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.Notify(ctx, "SEP2"); err == nil {
		t.Fatal("a cancelled wait notified")
	}
	if len(inner.calls) != 1 {
		t.Fatalf("%d calls", len(inner.calls))
	}
}

func TestEndpointFor(t *testing.T) {
	tests := []struct {
		tmpl Endpoint
		dev  string
		want string
		bad  bool
	}{
		{"", "SEP001122334455", "SEP001122334455", false},
		{"cisco-{device}", "SEP001122334455", "cisco-SEP001122334455", false},
		{"phone", "SEP001122334455", "", true},
		{"", "SEP 1", "", true},
		{"", "", "", true},
	}
	for _, tc := range tests {
		got, err := tc.tmpl.For(tc.dev)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%q.For(%q) = %q, %v", tc.tmpl, tc.dev, got, err)
		}
	}
}
