package postgres

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/system"
)

// TestWatchFleetParameters: a change committed through one store (another
// node) reaches the watcher of another at once; after the listening
// connection is killed, the watcher connects again and says so, and hears
// the next change.
func TestWatchFleetParameters(t *testing.T) {
	a, dsn := openTemp(t, Options{})
	defer a.Close()
	app := pgtest.Name("capf_watch_")
	b, err := Open(t.Context(), pgtest.WithParam(t, dsn, "application_name", app), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	changed := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WatchFleetParameters(ctx, func() { changed <- struct{}{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); <-done }()
	listening := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			// A backend of b's that ran LISTEN and waits.
			var n int
			if err := a.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
				WHERE application_name = $1 AND query LIKE 'LISTEN %' AND state = 'idle'`, app).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the watcher does not listen")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	set := func(v string) {
		t.Helper()
		if _, err := a.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
			return system.FleetChange{Set: map[string]json.RawMessage{"retry_delay": json.RawMessage(v)}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	heard := func(what string) {
		t.Helper()
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the watcher was not called", what)
		}
	}
	drain := func() {
		for {
			select {
			case <-changed:
			default:
				return
			}
		}
	}
	listening()
	set(`"30s"`)
	heard("a change")

	// Kill the listening connection, as a failover or an administrator
	// would.
	drain()
	pgtest.Exec(t, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN %'`, app)
	heard("reconnected") // a change may have been missed: the watcher says so
	listening()
	drain()
	set(`"45s"`)
	heard("a change after the reconnection")
}
