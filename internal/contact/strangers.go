package contact

import (
	"sync"
	"time"

	"github.com/capf-server/capf/internal/device"
)

// Defaults of [Strangers].
const (
	// DefaultLatest is how many of the latest names are kept.
	DefaultLatest = 10
	// DefaultEvery is how often at most a new name enters the list.
	DefaultEvery = time.Second
	// malformedName stands for a name that is not a device name at all:
	// it is counted, never kept.
	malformedName = "(malformed name)"
)

// Strangers counts the phones that asked for a device that is not
// configured, and keeps the latest few names. The names are chosen by
// whoever connects: only names that passed device.NormalizeName (letters,
// digits, '.', '_', '-') are kept, at most one new name per Every enters
// the list (a name already listed only moves to the front), and the list
// holds at most Latest. Kept in memory, per node; safe for concurrent use.
type Strangers struct {
	latest int
	every  time.Duration

	mu        sync.Mutex
	count     int64
	malformed int64
	since     time.Time
	lastAdded time.Time
	names     []device.UnknownName // newest first
}

// NewStrangers returns an empty tally; latest and every <= 0 take the
// defaults.
func NewStrangers(latest int, every time.Duration) *Strangers {
	if latest <= 0 {
		latest = DefaultLatest
	}
	if every <= 0 {
		every = DefaultEvery
	}
	return &Strangers{latest: latest, every: every}
}

// NoteUnknown counts a phone at remote that asked at time at for the
// device name, already normalized; "" counts a malformed name.
func (s *Strangers) NoteUnknown(name, remote string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		s.since = at
	}
	s.count++
	if name == "" {
		s.malformed++
		name = malformedName
	}
	if len(name) > device.MaxNameLen {
		return // NormalizeName guarantees this; a safeguard for other callers
	}
	for i, n := range s.names {
		if n.Name == name {
			copy(s.names[1:i+1], s.names[:i])
			s.names[0] = device.UnknownName{Name: name, At: at, Remote: remote}
			return
		}
	}
	if !s.lastAdded.IsZero() && at.Sub(s.lastAdded) < s.every {
		return
	}
	s.lastAdded = at
	if len(s.names) < s.latest {
		s.names = append(s.names, device.UnknownName{})
	}
	copy(s.names[1:], s.names[:len(s.names)-1])
	s.names[0] = device.UnknownName{Name: name, At: at, Remote: remote}
}

// UnknownNames returns the tally so far.
func (s *Strangers) UnknownNames() device.UnknownNames {
	s.mu.Lock()
	defer s.mu.Unlock()
	return device.UnknownNames{Count: s.count, Malformed: s.malformed, Since: s.since, Latest: append([]device.UnknownName(nil), s.names...)}
}
