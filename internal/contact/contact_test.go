package contact

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
)

var t0 = time.Date(2026, 12, 3, 22, 0, 0, 0, time.UTC)

type fakeSink struct {
	mu      sync.Mutex
	batches [][]device.Contact
	err     error
}

func (s *fakeSink) RecordContacts(_ context.Context, cs []device.Contact) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.batches = append(s.batches, append([]device.Contact(nil), cs...))
	return nil
}

func contact(name string, at time.Duration, reason string) device.Contact {
	return device.Contact{Device: name, At: t0.Add(at), Remote: "192.0.2.1:1", Outcome: device.ContactRetryLater, Reason: reason}
}

// TestRecorderBoundsWrites: a phone that hammers costs one row per flush,
// the newest contact wins, devices beyond the bound are dropped and
// counted, and a failed write is kept for the next.
func TestRecorderBoundsWrites(t *testing.T) {
	ctx := context.Background()
	sink := &fakeSink{}
	r := NewRecorder(RecorderOptions{Sink: sink, MaxPending: 3})
	for i := range 10_000 {
		r.Note(contact("SEP00000000000B", time.Duration(i)*time.Millisecond, fmt.Sprint("try ", i)))
	}
	r.Note(contact("SEP00000000000B", 0, "late and old")) // an older one does not replace the newest
	r.Note(contact("SEP00000000000A", 0, "a"))
	r.Note(contact("SEP00000000000C", 0, "c"))
	r.Note(contact("SEP00000000000D", 0, "d: one device too many"))
	r.Note(contact("SEP00000000000E", 0, strings.Repeat("x", 2000)))
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sink.batches) != 1 {
		t.Fatalf("%d batches, want 1", len(sink.batches))
	}
	b := sink.batches[0]
	var got []string
	for _, c := range b {
		got = append(got, c.Device+"="+c.Reason)
	}
	if want := "SEP00000000000A=a SEP00000000000B=try 9999 SEP00000000000C=c"; strings.Join(got, " ") != want {
		t.Errorf("batch %q, want %q (sorted by name, newest per device, bounded)", got, want)
	}
	if written, dropped := r.Stats(); written != 3 || dropped != 2 {
		t.Errorf("written %d dropped %d, want 3 and 2", written, dropped)
	}
	if err := r.Flush(ctx); err != nil || len(sink.batches) != 1 {
		t.Errorf("an empty flush wrote: %v, %d batches", err, len(sink.batches))
	}

	// A failed write is kept, unless a newer contact replaced it.
	sink.err = errors.New("database down")
	r.Note(contact("SEP00000000000A", time.Hour, "kept"))
	r.Note(contact("SEP00000000000B", time.Hour, "replaced"))
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush hid the sink's error")
	}
	r.Note(contact("SEP00000000000B", 2*time.Hour, "newer"))
	sink.err = nil
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, c := range sink.batches[1] {
		got = append(got, c.Device+"="+c.Reason)
	}
	if want := "SEP00000000000A=kept SEP00000000000B=newer"; strings.Join(got, " ") != want {
		t.Errorf("retry batch %q, want %q", got, want)
	}
}

func TestRecorderReasonBounded(t *testing.T) {
	sink := &fakeSink{}
	r := NewRecorder(RecorderOptions{Sink: sink})
	r.Note(contact("SEP00000000000E", 0, strings.Repeat("é", 2000)))
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.batches[0][0].Reason; len(got) > device.MaxContactReason || !strings.HasPrefix(got, "é") || strings.ToValidUTF8(got, "?") != got {
		t.Errorf("reason of %d bytes, want at most %d valid UTF-8", len(got), device.MaxContactReason)
	}
}

// TestRecorderRunFlushesAtShutdown: what is pending when the context ends
// is written once more.
func TestRecorderRunFlushesAtShutdown(t *testing.T) {
	sink := &fakeSink{}
	r := NewRecorder(RecorderOptions{Sink: sink, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Note(contact("SEP00000000000A", 0, "a"))
	cancel()
	<-done
	if len(sink.batches) != 1 || sink.batches[0][0].Device != "SEP00000000000A" {
		t.Errorf("batches %+v, want the pending contact written at shutdown", sink.batches)
	}
}

// TestStrangersBoundedAndRateLimited: every request counts, but names
// enter the list at most once per interval, a listed name only moves to the
// front, the list is bounded, and a malformed name is never kept.
func TestStrangersBoundedAndRateLimited(t *testing.T) {
	s := NewStrangers(3, time.Second)
	if u := s.UnknownNames(); u.Count != 0 || len(u.Latest) != 0 || !u.Since.IsZero() {
		t.Fatalf("empty tally %+v", u)
	}
	at := t0
	for i := range 1000 { // a flood of distinct names within one second
		s.NoteUnknown(fmt.Sprintf("SEP%012X", i), "192.0.2.9", at.Add(time.Duration(i)*time.Microsecond))
	}
	u := s.UnknownNames()
	if u.Count != 1000 || len(u.Latest) != 1 || u.Latest[0].Name != "SEP000000000000" || !u.Since.Equal(at) {
		t.Fatalf("after a flood: count %d, latest %+v; want 1000 counted, one name kept", u.Count, u.Latest)
	}
	for i, name := range []string{"SEP0000000000A1", "SEP0000000000A2", "", "SEP0000000000A3"} {
		s.NoteUnknown(name, "192.0.2.9", at.Add(time.Duration(i+1)*time.Second))
	}
	s.NoteUnknown("SEP0000000000A2", "192.0.2.8", at.Add(10*time.Second)) // listed: moves to the front
	u = s.UnknownNames()
	var got []string
	for _, n := range u.Latest {
		got = append(got, n.Name)
	}
	if want := "SEP0000000000A2 SEP0000000000A3 (malformed name)"; strings.Join(got, " ") != want {
		t.Errorf("latest %q, want %q", got, want)
	}
	if u.Count != 1005 || u.Malformed != 1 {
		t.Errorf("count %d malformed %d, want 1005 and 1", u.Count, u.Malformed)
	}
}
