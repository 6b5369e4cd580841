package system

// Parameter is one service parameter as System > Service Parameters shows
// it.
type Parameter struct {
	Name string `json:"name"` // the key in capf.json, e.g. "certificate_validity_days"
	// Value and Default are JSON-native: a string, a number, a boolean, or
	// a list of strings (durations are strings such as "30m").
	Value   any    `json:"value"`
	Default any    `json:"default"`
	Type    string `json:"type"` // one of the Type constants
	Help    string `json:"help"`
	// Restart is true for a node setting, kept in the node's capf.json,
	// that takes effect at the next `capf serve` start; false for a fleet
	// parameter, kept in the database, that every node's sessions follow
	// within seconds.
	Restart bool `json:"restart"`
	// HostOnly is true for a node setting only the host's administrator
	// may set (config.HostOnlyKeys): the API and the web UI show it and
	// refuse to change it.
	HostOnly bool `json:"host_only,omitempty"`
	// Choices are the values a parameter with a fixed set may take, with
	// their labels; empty for a free value of its type.
	Choices []Choice `json:"choices,omitempty"`
}

// The types of Parameter.Type.
const (
	TypeString   = "string"
	TypeInteger  = "integer"
	TypeBoolean  = "boolean"
	TypeDuration = "duration"
	TypeList     = "list" // of strings
)

// Activation is the state of the CAPF service (Service Activation).
type Activation struct {
	Active    bool   `json:"active"`
	ChangedAt string `json:"changed_at,omitempty"` // RFC 3339; empty if never changed
	ChangedBy string `json:"changed_by,omitempty"` // the actor, as the audit names it
}
