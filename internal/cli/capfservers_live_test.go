package cli

import (
	"encoding/json"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/system"
)

// TestLiveCAPFServers: the admin listener's snippet follows a change of
// capf_servers at the next refresh, without a restart; a stored list this
// version refuses (six servers, written by hand) leaves the last good one.
func TestLiveCAPFServers(t *testing.T) {
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sys := system.NewService(system.Options{DataDir: dir, Store: st})
	node := config.Defaults()
	p, err := newLiveParams(sys, node, node, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.CAPFServers(); len(got) != 0 {
		t.Fatalf("CAPFServers %q, want none by default", got)
	}
	want := []string{"capf1.example", "capf2.example:3805"}
	if _, err := sys.UpdateParameters(t.Context(), device.CLIActor("alice"), map[string]any{"capf_servers": want}); err != nil {
		t.Fatal(err)
	}
	if !p.refresh(t.Context()) || !slices.Equal(p.CAPFServers(), want) {
		t.Fatalf("after the change: %q, want %q", p.CAPFServers(), want)
	}
	p.CAPFServers()[0] = "changed.example" // a copy: the caller cannot change what is in force
	if _, err := st.UpdateFleetParameters(t.Context(), func(system.FleetParameters) (system.FleetChange, error) {
		return system.FleetChange{Set: map[string]json.RawMessage{"capf_servers": json.RawMessage(`["a","b","c","d","e","f"]`)}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if p.refresh(t.Context()) || !slices.Equal(p.CAPFServers(), want) {
		t.Fatalf("after a bad stored list: %q, want the last good %q", p.CAPFServers(), want)
	}
}
