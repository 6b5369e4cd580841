package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
)

// TestLiveParams: the sessions' source follows a change of the fleet
// parameters in the database once the counter moves (without a restart),
// keeps the last good parameters when the stored ones do not apply, and
// takes the next good change.
func TestLiveParams(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sys := system.NewService(system.Options{DataDir: dir, Store: st})
	node := config.Defaults()
	var logs lockedBuffer
	p, err := newLiveParams(sys, node, node, 0, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	admin := device.CLIActor("alice")
	if got := p.Current().RetryDelay; got != time.Minute {
		t.Fatalf("RetryDelay %v, want the default 1m", got)
	}
	if p.refresh(t.Context()) {
		t.Fatal("refresh without a change reported new parameters")
	}
	if _, err := sys.UpdateParameters(t.Context(), admin, map[string]any{"retry_delay": "7s", "maintenance_windows": []string{"Sat 00:00-01:00"}}); err != nil {
		t.Fatal(err)
	}
	if p.Current().RetryDelay != time.Minute {
		t.Fatal("Current changed before a refresh: it must not read the database")
	}
	if !p.refresh(t.Context()) || p.Current().RetryDelay != 7*time.Second || p.Current().Windows == nil {
		t.Fatalf("after the change: %+v", p.Current())
	}

	// A value this version does not accept, written by another version or
	// by hand: logged, and the last good parameters stay.
	if _, err := st.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
		return system.FleetChange{Set: map[string]json.RawMessage{"retry_delay": json.RawMessage(`"soon"`)}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if p.refresh(t.Context()) || p.Current().RetryDelay != 7*time.Second {
		t.Fatalf("bad stored parameters: %+v", p.Current())
	}
	if !strings.Contains(logs.String(), "the previous ones stay in force") || !strings.Contains(logs.String(), "retry_delay") {
		t.Fatalf("log:\n%s", logs.String())
	}
	if _, err := sys.UpdateParameters(t.Context(), admin, map[string]any{"retry_delay": "9s"}); err != nil {
		t.Fatal(err)
	}
	if !p.refresh(t.Context()) || p.Current().RetryDelay != 9*time.Second {
		t.Fatalf("after a good change: %+v", p.Current())
	}

	// run polls: a change applies within the poll period.
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() { defer close(stopped); p.run(ctx, 10*time.Millisecond, nil) }()
	defer func() { cancel(); <-stopped }()
	if _, err := sys.UpdateParameters(t.Context(), admin, map[string]any{"retry_delay": "11s"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Current().RetryDelay != 11*time.Second {
		if time.Now().After(deadline) {
			t.Fatal("run did not apply the change")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
