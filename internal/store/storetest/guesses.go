package storetest

import (
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// GuessStore is what RunAddressGuesses tests.
type GuessStore interface {
	device.AddressGuesses
	Close() error
}

// RunAddressGuesses runs the contract of device.AddressGuesses against the
// stores open returns; open must return a new, empty store each time.
func RunAddressGuesses(t *testing.T, open func(t *testing.T) GuessStore) {
	t.Helper()
	t.Run("nth-delete-prune", func(t *testing.T) {
		s := freshT(t, open)
		ctx := t.Context()
		const a, b = "192.0.2.66", "2001:db8::1"
		var ids []int64
		for _, d := range []time.Duration{0, time.Minute, 2 * time.Minute} {
			id, err := s.RecordAddressGuess(ctx, a, at(d))
			must(t, err)
			ids = append(ids, id)
		}
		_, err := s.RecordAddressGuess(ctx, b, at(5*time.Minute))
		must(t, err)
		nth := func(addr string, since time.Time, n int) time.Time {
			t.Helper()
			got, err := s.NthAddressGuess(ctx, addr, since, n)
			must(t, err)
			return got
		}
		for _, c := range []struct {
			addr  string
			since time.Time
			n     int
			want  time.Time
		}{
			{a, at(-time.Second), 1, stored(at(2 * time.Minute))},
			{a, at(-time.Second), 3, stored(at(0))},
			{a, at(-time.Second), 4, time.Time{}},
			{a, at(0), 3, time.Time{}}, // only guesses after since count
			{a, at(0), 2, stored(at(time.Minute))},
			{b, at(0), 1, stored(at(5 * time.Minute))},
			{"192.0.2.1", at(-time.Hour), 1, time.Time{}},
		} {
			if got := nth(c.addr, c.since, c.n); !got.Equal(c.want) {
				t.Errorf("NthAddressGuess(%s, %v, %d) = %v, want %v", c.addr, c.since, c.n, got, c.want)
			}
		}
		// A refund removes that guess only; an unknown id is no error.
		must(t, s.DeleteAddressGuess(ctx, ids[2]))
		must(t, s.DeleteAddressGuess(ctx, ids[2]+1000))
		if got := nth(a, at(-time.Second), 1); !got.Equal(stored(at(time.Minute))) {
			t.Errorf("newest guess after the refund = %v, want %v", got, stored(at(time.Minute)))
		}
		n, err := s.PruneAddressGuesses(ctx, at(time.Minute))
		must(t, err)
		if n != 2 {
			t.Errorf("PruneAddressGuesses removed %d, want 2", n)
		}
		if got := nth(a, at(-time.Hour), 1); !got.IsZero() {
			t.Errorf("a pruned guess is still counted: %v", got)
		}
		if got := nth(b, at(-time.Hour), 1); got.IsZero() {
			t.Error("a guess after the prune's cutoff was pruned")
		}
	})
}
