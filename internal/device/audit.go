package device

import (
	"fmt"
	"time"
)

// Actor is who made an administrative change: the CLI user, an API token, a
// web account, or the system itself.
type Actor struct {
	Kind   string // ActorCLI, ActorAPI, ActorWeb or ActorSystem
	Name   string // the account or token name; the OS user for the CLI
	Remote string // where the request came from, when known
}

// The kinds of Actor.
const (
	ActorCLI    = "cli"
	ActorAPI    = "api"
	ActorWeb    = "web"
	ActorSystem = "system"
)

// String returns "kind:name" (or just the kind), as audit listings show it.
func (a Actor) String() string {
	if a.Name == "" {
		return a.Kind
	}
	return a.Kind + ":" + a.Name
}

// CLIActor returns the actor of a command run as the OS user name.
func CLIActor(user string) Actor { return Actor{Kind: ActorCLI, Name: user} }

// The audit actions.
const (
	AuditDeviceCreate     = "device.create"
	AuditDeviceUpdate     = "device.update"
	AuditDeviceDelete     = "device.delete"
	AuditAuthStringLocked = "device.auth-string-used-up"
)

// FieldChange is one field an administrative change altered, with its value
// before and after, as text. Secrets are masked.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// AuditEvent is one administrative change, kept in the same transaction as
// the change itself.
type AuditEvent struct {
	ID      int64         `json:"id"`
	At      time.Time     `json:"at"`
	Actor   Actor         `json:"-"`
	Action  string        `json:"action"`
	Target  string        `json:"target"` // the device name, or what else changed
	Changes []FieldChange `json:"changes"`
	Detail  string        `json:"detail,omitempty"`
}

// AuditQuery selects audit events, newest first.
type AuditQuery struct {
	Target string // "" for every target
	Limit  int    // <= 0: all
}

// maskSecret describes an authentication string without revealing it.
func maskSecret(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("(%d digits)", len(s))
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

// Diff lists the administrator-owned fields (and the Operation Status an
// administrator's change implies) that differ between old and new, in a
// fixed order. A changed authentication string is reported as changed,
// never shown.
func Diff(old, new Device) []FieldChange {
	var cs []FieldChange
	add := func(field, o, n string) {
		if o != n {
			cs = append(cs, FieldChange{Field: field, Old: o, New: n})
		}
	}
	add("description", old.Description, new.Description)
	add("security-profile", string(old.SecurityProfile), string(new.SecurityProfile))
	add("auth-mode", string(old.AuthMode), string(new.AuthMode))
	if old.AuthString != new.AuthString {
		o, n := maskSecret(old.AuthString), maskSecret(new.AuthString)
		if o == n {
			n += " (new)"
		}
		cs = append(cs, FieldChange{Field: "auth-string", Old: o, New: n})
	}
	add("operation", string(old.Operation), string(new.Operation))
	add("key", string(old.Key), string(new.Key))
	add("deadline", timeText(old.Deadline), timeText(new.Deadline))
	add("status", old.Status, new.Status)
	return cs
}

// CreationChanges lists d's fields as changes from nothing, for the audit
// event of a new device.
func CreationChanges(d Device) []FieldChange {
	return Diff(Device{Deadline: time.Time{}}, d)
}
