package session

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/wire"
)

// stringFixture is a device in string mode whose sessions use the real
// verifier, so that guesses are really compared.
func stringFixture(t *testing.T, max int, b Backoff, g *Guard) *fixture {
	t.Helper()
	d := pending(device.OpInstall, device.EC256)
	d.AuthMode, d.AuthString = device.AuthString, "24681357"
	f := newFixture(t, d)
	f.deps.Auth = auth.New(auth.Options{})
	f.deps.Config.AuthStringMaxFailures, f.deps.Config.Backoff = max, b
	f.deps.Guard = g
	return f
}

func guess(f *fixture, name, remote, str string) Step {
	s := New(f.deps, sid, remote)
	s.OnSupersede(func() {})
	defer s.Close()
	return s.Handle(context.Background(), guessMsg(name, str))
}

func guessMsg(name, str string) *wire.Message {
	m := wire.New(wire.CmdAuthResponse, sid).AddUint8(wire.TagVersion, 3).AddString(wire.TagDeviceName, name)
	return m.Add(wire.TagPassword, append([]byte(str), 0))
}

func try(f *fixture, remote, str string) Step { return guess(f, phone, remote, str) }

func TestStringGuessesBounded(t *testing.T) {
	f := stringFixture(t, 10, Backoff{}, nil)
	o := &countingObserver{}
	f.deps.Observer = o
	for i := range 10 {
		expectEnd(t, try(f, "192.0.2.66:1000", "0000"+string(rune('0'+i))), wire.ReasonRefused)
	}
	if f.store.guessesCAS != 10 || o.usedUp != 1 {
		t.Fatalf("%d guesses counted, %d used-up events; want 10 and 1", f.store.guessesCAS, o.usedUp)
	}
	d := f.store.devices[phone]
	if d.AuthString != "" || d.Status != device.FailedStatus(device.OpInstall, device.ReasonTooManyAuthFailures) {
		t.Fatalf("device after the limit: %+v", d)
	}
	// The right string is refused now, and not even counted.
	expectEnd(t, try(f, "192.0.2.10:5000", "24681357"), wire.ReasonRefused)
	if f.store.guessesCAS != 10 {
		t.Errorf("a guess was evaluated after the limit")
	}
	// The administrator sets a new string: it works at once.
	d.AuthString, d.AuthFailures, d.Status = "11223344", 0, device.StatusPending
	f.store.devices[phone] = d
	expectReply(t, try(f, "192.0.2.10:5000", "11223344"), wire.CmdKeyGenerateRequest)
	if got := f.store.devices[phone].AuthFailures; got != 0 {
		t.Errorf("counter after success = %d", got)
	}
}

func TestStringGuessBackoff(t *testing.T) {
	f := stringFixture(t, 10, DefaultBackoff, nil)
	for range 3 {
		expectEnd(t, try(f, "192.0.2.66:1000", "9999"), wire.ReasonRefused)
	}
	if d := retryDelay(t, try(f, "192.0.2.66:1000", "9998")); d != 30 {
		t.Errorf("RETRY_DELAY %d, want 30 s after 3 failures", d)
	}
	if f.store.guessesCAS != 3 {
		t.Fatalf("%d guesses evaluated, want 3: the back-off must refuse before evaluating", f.store.guessesCAS)
	}
	f.clock.now = f.clock.now.Add(30 * time.Second)
	expectEnd(t, try(f, "192.0.2.66:1000", "9997"), wire.ReasonRefused)
	if d := retryDelay(t, try(f, "192.0.2.66:1000", "9996")); d != 60 {
		t.Errorf("RETRY_DELAY %d, want 60 s after 4 failures", d)
	}
	f.clock.now = f.clock.now.Add(time.Minute)
	expectReply(t, try(f, "192.0.2.10:5000", "24681357"), wire.CmdKeyGenerateRequest)
}

func TestBackoffWait(t *testing.T) {
	b := DefaultBackoff
	tests := []struct {
		name     string
		failures int
		since    time.Duration
		want     time.Duration
	}{
		{"free", 2, 0, 0},
		{"first", 3, 0, 30 * time.Second},
		{"first-partly-waited", 3, 10 * time.Second, 20 * time.Second},
		{"doubling", 5, 0, 2 * time.Minute},
		{"capped", 40, 0, 30 * time.Minute},
		{"waited-out", 4, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Wait(tt.failures, t0, t0.Add(tt.since)); got != tt.want {
				t.Errorf("Wait = %s, want %s", got, tt.want)
			}
		})
	}
}

// memLedger is device.AddressGuesses in memory: the database several
// nodes share.
type memLedger struct {
	mu   sync.Mutex
	next int64
	rows map[int64]ledgerRow
}

type ledgerRow struct {
	addr string
	at   time.Time
}

func newMemLedger() *memLedger { return &memLedger{rows: map[int64]ledgerRow{}} }

func (l *memLedger) RecordAddressGuess(_ context.Context, addr string, at time.Time) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	l.rows[l.next] = ledgerRow{addr, at}
	return l.next, nil
}

func (l *memLedger) NthAddressGuess(_ context.Context, addr string, since time.Time, n int) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ats []time.Time
	for _, r := range l.rows {
		if r.addr == addr && r.at.After(since) {
			ats = append(ats, r.at)
		}
	}
	if len(ats) < n {
		return time.Time{}, nil
	}
	sort.Slice(ats, func(i, j int) bool { return ats[i].After(ats[j]) })
	return ats[n-1], nil
}

func (l *memLedger) DeleteAddressGuess(_ context.Context, id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.rows, id)
	return nil
}

func (l *memLedger) PruneAddressGuesses(context.Context, time.Time) (int, error) { return 0, nil }

func (l *memLedger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.rows)
}

func TestAddressBudget(t *testing.T) {
	for _, c := range []struct {
		name  string
		guard func() *Guard
	}{
		{"memory", func() *Guard { return NewGuard(10 * time.Minute) }},
		{"shared", func() *Guard { return NewSharedGuard(10*time.Minute, newMemLedger()) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := stringFixture(t, 100, Backoff{}, c.guard())
			f.deps.Config.AuthFailuresPerAddress = 3
			other := pending(device.OpInstall, device.EC256)
			other.Name, other.AuthMode, other.AuthString = "SEP00112233AAAA", device.AuthString, "13572468"
			f.store.devices[other.Name] = other
			for i := range 3 {
				name := phone
				if i%2 == 1 {
					name = other.Name
				}
				expectEnd(t, guess(f, name, "192.0.2.66:1000", "0000"), wire.ReasonRefused)
			}
			if d := retryDelay(t, guess(f, other.Name, "192.0.2.66:1001", "0000")); d != 600 {
				t.Errorf("RETRY_DELAY %d, want 600 s until the oldest failure leaves the window", d)
			}
			// Another address is not slowed by this one's guessing.
			expectReply(t, guess(f, other.Name, "192.0.2.20:1000", "13572468"), wire.CmdKeyGenerateRequest)
			f.clock.now = f.clock.now.Add(10*time.Minute + time.Second)
			expectEnd(t, guess(f, phone, "192.0.2.66:1002", "0000"), wire.ReasonRefused)
		})
	}
}

// TestAddressBudgetAcrossNodes: two nodes sharing the ledger (the
// database) share one budget per address: three wrong guesses spread over
// both use it up on both. A right guess is refunded.
func TestAddressBudgetAcrossNodes(t *testing.T) {
	ledger := newMemLedger()
	nodes := []*Guard{NewSharedGuard(10*time.Minute, ledger), NewSharedGuard(10*time.Minute, ledger)}
	f := stringFixture(t, 100, Backoff{}, nil)
	f.deps.Config.AuthFailuresPerAddress = 3
	other := pending(device.OpInstall, device.EC256)
	other.Name, other.AuthMode, other.AuthString = "SEP00112233AAAA", device.AuthString, "13572468"
	f.store.devices[other.Name] = other

	f.deps.Guard = nodes[1]
	expectReply(t, guess(f, other.Name, "192.0.2.66:999", "13572468"), wire.CmdKeyGenerateRequest)
	if n := ledger.len(); n != 0 {
		t.Fatalf("a right guess left %d guesses counted, want 0 (refunded)", n)
	}
	for i := range 3 {
		f.deps.Guard = nodes[i%2]
		expectEnd(t, guess(f, phone, "192.0.2.66:1000", "0000"), wire.ReasonRefused)
	}
	for i, g := range nodes {
		f.deps.Guard = g
		if d := retryDelay(t, guess(f, phone, "192.0.2.66:1001", "0000")); d != 600 {
			t.Errorf("node %d: RETRY_DELAY %d, want 600 s: the address used its budget on both nodes", i, d)
		}
	}
}

// TestRecordIssuanceFailure: a certificate whose record could not be made
// durable is never sent.
func TestRecordIssuanceFailure(t *testing.T) {
	f := toAwaitKey(t, device.EC256)
	f.store.issueErr = errors.New("disk full")
	step := f.s.Handle(context.Background(), keyResponse(pkix256(t)))
	expectEnd(t, step, wire.ReasonRefused)
	if o := f.store.lastOutcome(t); o.Result != device.FailedStatus(device.OpInstall, device.ReasonInternal) || o.SetLSC != nil {
		t.Errorf("outcome %+v, want an internal failure without an LSC", o)
	}
}
