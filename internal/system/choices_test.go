package system_test

import (
	"encoding/json"
	"testing"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/system"
)

// TestChoicesAreWhatValidateAccepts: every value a select offers is one
// the configuration accepts, each with a label, and a value outside them
// is refused; the parameter list carries them.
func TestChoicesAreWhatValidateAccepts(t *testing.T) {
	defaults, err := json.Marshal(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	problems := func(key, value string) []string {
		t.Helper()
		c, ps := config.DecodeOver(defaults, map[string]any{key: value})
		return append(ps, c.Problems()...)
	}
	ps, err := system.ParametersOf(config.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	with := 0
	for _, p := range ps {
		cs := system.ChoicesOf(p.Name)
		if len(p.Choices) != len(cs) {
			t.Errorf("%s: Parameter.Choices %v, want %v", p.Name, p.Choices, cs)
		}
		if len(cs) == 0 {
			continue
		}
		with++
		t.Run(p.Name, func(t *testing.T) {
			found := false
			for _, c := range cs {
				if c.Label == "" || c.Label == c.Value {
					t.Errorf("%s: no label of its own", c.Value)
				}
				if c.Value == p.Value {
					found = true
				}
				if c.Value == "legacy" {
					continue // needs an RSA CAPF key, which the default is
				}
				if got := problems(p.Name, c.Value); len(got) != 0 {
					t.Errorf("%s %q refused: %v", p.Name, c.Value, got)
				}
			}
			if !found {
				t.Errorf("the default %v is not among the choices", p.Value)
			}
			if len(problems(p.Name, "bogus")) == 0 {
				t.Errorf("%s bogus accepted", p.Name)
			}
		})
	}
	if with != 6 {
		t.Errorf("%d parameters with choices, want 6", with)
	}
}
