package system

import (
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
)

// Choice is one value of a parameter that takes one of a fixed set, with
// the words the web UI shows for it.
type Choice struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// keyChoices labels key type names as Key Size (Bits) does: "RSA 2048",
// "EC P-256".
func keyChoices(names []string) []Choice {
	out := make([]Choice, len(names))
	for i, n := range names {
		out[i] = Choice{Value: n, Label: device.KeySpec(n).Label()}
	}
	return out
}

// choices are the parameters with a fixed set of values, by key, in the
// order the UI offers them. The values are config's lists, which
// config.Validate checks against.
var choices = map[string][]Choice{
	"tls_profile": {
		{Value: "modern", Label: "Modern (TLS 1.2 and later, ECDHE)"},
		{Value: "legacy", Label: "Legacy (adds TLS 1.0/1.1 for 79xx phones)"},
	},
	"capf_key":    keyChoices(config.CAPFKeys),
	"default_key": keyChoices(config.PhoneKeys),
	"sudi_verification": {
		{Value: "when-trusted", Label: "When trusted"},
		{Value: "required", Label: "Required"},
		{Value: "off", Label: "Off"},
	},
	"log_level": {
		{Value: "debug", Label: "Debug"},
		{Value: "info", Label: "Info"},
		{Value: "warn", Label: "Warning"},
		{Value: "error", Label: "Error"},
	},
	"log_format": {
		{Value: "text", Label: "Text (key=value lines)"},
		{Value: "json", Label: "JSON (one object per line)"},
	},
}

// ChoicesOf returns the values key may take, or nil when it takes any
// value of its type.
func ChoicesOf(key string) []Choice { return choices[key] }
