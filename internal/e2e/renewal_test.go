package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store/sqlite"
	"github.com/capf-server/capf/internal/wire"
)

// TestRenewalThroughSimulator: a renewal run whose clock stands ten days
// before a phone's LSC expires (a second process on the same database, as
// another node would be) arms the phone; the phone, authenticating with
// that LSC, gets a new one of the same key type through capf serve, and
// the old one is superseded.
func TestRenewalThroughSimulator(t *testing.T) {
	s := startServer(t, nil, "")
	name, state := newPhoneName(), t.TempDir()
	first := enroll(t, s, name, state, "ec256")
	oldSerial := fmt.Sprintf("%X", first.Installed.SerialNumber.Bytes())

	st, err := sqlite.Open(context.Background(), filepath.Join(s.data, "capf.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	later := first.Installed.NotAfter.Add(-10 * 24 * time.Hour)
	armed, err := lsc.NewRenewal(st, func() time.Time { return later }).Run(t.Context(), 30*24*time.Hour)
	if err != nil || len(armed) != 1 || armed[0] != name {
		t.Fatalf("renewal armed %v, %v; want %s", armed, err, name)
	}
	if d := s.device(name); d.Operation != "install" || d.AuthMode != "lsc" || d.Status != "Operation Pending" {
		t.Fatalf("device after the renewal was armed: %+v", d)
	}
	res, err := s.phone(name, state, nil)
	if err != nil || res.EndReason != wire.ReasonSuccess || res.Installed == nil {
		t.Fatalf("renewal session: %+v %v", res, err)
	}
	if got := fmt.Sprintf("%X", res.Installed.SerialNumber.Bytes()); got == oldSerial {
		t.Fatal("the phone kept its old LSC")
	}
	checkKeyType(t, res.Installed, "ec")
	if d := s.device(name); d.Status != "Upgrade Success" || d.Operation != "none" || len(d.History) == 0 || d.History[0].AuthMode != "lsc" {
		t.Errorf("device after the renewal: %+v", d)
	}
	if out := s.mustCapf("cert", "show", oldSerial); !strings.Contains(out, "superseded") {
		t.Errorf("the old LSC after the renewal:\n%s", out)
	}
}
