package webui

import (
	"fmt"

	"github.com/capf-server/capf/internal/system"
)

// InUse is a node setting as the running `capf serve` applied it when it
// started: node settings take effect only then, and a flag or an
// environment variable may override the node's capf.json.
type InUse struct {
	// Value is JSON-native, as system.Parameter.Value (a database URL's
	// password redacted).
	Value any
	// Source names what set it when that is not capf.json, as the page
	// shows it: "the --listen flag", "the CAPF_DB environment variable";
	// "" for capf.json (or its default).
	Source string
}

// choiceOptions returns the options of a parameter with a fixed set of
// values, current selected; a current value outside the set (a file
// edited by hand) is kept as the first option, so that saving the form
// does not change it unseen. nil when the parameter takes any value.
func choiceOptions(cs []system.Choice, current string) []option {
	if len(cs) == 0 {
		return nil
	}
	out := make([]option, 0, len(cs)+1)
	found := false
	for _, c := range cs {
		sel := c.Value == current
		found = found || sel
		out = append(out, option{Value: c.Value, Label: c.Label, Selected: sel})
	}
	if !found {
		out = append([]option{{Value: current, Label: current + " (not one of the choices)", Selected: true}}, out...)
	}
	return out
}

// inUseNote says what the running service uses for p when that is not
// shown, the value p holds now: the note is "" for a fleet parameter
// (the database's value is in force on every node within seconds) and
// for a node setting started with the value shown and not overridden.
func (u *ui) inUseNote(p system.Parameter, shown string) string {
	if !p.Restart || u.o.InUse == nil {
		return ""
	}
	v, ok := u.o.InUse[p.Name]
	if !ok {
		return ""
	}
	text := paramText(v.Value)
	label := text
	for _, c := range p.Choices {
		if c.Value == text {
			label = c.Label
		}
	}
	if label == "" {
		label = "(empty)"
	}
	switch {
	case v.Source != "":
		return fmt.Sprintf("In use on this node: %s, set by %s, which overrides capf.json.", label, v.Source)
	case text != shown:
		return fmt.Sprintf("In use on this node: %s, as capf.json was when capf serve started; the value above applies at the next start.", label)
	}
	return ""
}
