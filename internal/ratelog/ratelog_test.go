package ratelog

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name     string
		at       time.Duration
		wantOK   bool
		wantHeld int
	}{
		{"first", 0, true, 0},
		{"flood-1", time.Second, false, 0},
		{"flood-2", 9 * time.Second, false, 0},
		{"after-every", Every, true, 2},
		{"again-held", Every + time.Millisecond, false, 0},
		{"quiet-then", 3 * Every, true, 1},
	}
	for _, s := range steps {
		held, ok := l.Allow(t0.Add(s.at))
		if ok != s.wantOK || held != s.wantHeld {
			t.Errorf("%s: Allow = %d, %v; want %d, %v", s.name, held, ok, s.wantHeld, s.wantOK)
		}
	}
}
