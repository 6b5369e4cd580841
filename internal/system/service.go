package system

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// The audit actions of the service.
const (
	AuditParametersUpdate  = "parameters.update"
	AuditParametersImport  = "parameters.import"
	AuditServiceActivate   = "service.activate"
	AuditServiceDeactivate = "service.deactivate"
)

// ServiceState is the stored activation of the CAPF service.
type ServiceState struct {
	Active    bool
	ChangedAt time.Time // zero: never changed (the default, active)
	ChangedBy string    // the actor, as Actor.String gives it
}

// Store keeps the service state, the fleet parameters and the audit
// stream. Both backends implement it and pass store/storetest.RunSystem.
type Store interface {
	// GetServiceState returns the stored state; with none stored, an
	// active service that was never changed.
	GetServiceState(ctx context.Context) (ServiceState, error)
	// SetServiceState stores st and appends ev in the same transaction.
	SetServiceState(ctx context.Context, st ServiceState, ev device.AuditEvent) error
	// AppendAudit appends an audit event that goes with no other write.
	AppendAudit(ctx context.Context, ev device.AuditEvent) error

	// FleetParameters returns the stored fleet parameters and their
	// change counter; a new database has none, version 0, not imported.
	FleetParameters(ctx context.Context) (FleetParameters, error)
	// FleetParametersVersion returns the change counter alone: the cheap
	// read every node polls.
	FleetParametersVersion(ctx context.Context) (int64, error)
	// UpdateFleetParameters runs change over the parameters as stored,
	// inside a write transaction that holds every other writer of them
	// off, and then writes what it returns in the same transaction: the
	// keys of Set (every other key keeps its stored value, so writers of
	// different keys never undo each other), the imported mark, a change
	// counter one higher when Set is not empty, and Audit (unless its
	// Action is empty). A change with nothing to set and no import to
	// mark writes nothing, its Audit included. An error from change is
	// returned as it is and nothing is written. It returns the parameters
	// as they stand after the transaction.
	//
	// change may run more than once: PostgreSQL runs the transaction
	// again on a serialization failure or a deadlock, with what is then
	// stored. It must decide from cur alone and have no other effect.
	// On PostgreSQL a committed change also notifies the channel
	// FleetChannel.
	UpdateFleetParameters(ctx context.Context, change func(cur FleetParameters) (FleetChange, error)) (FleetParameters, error)
}

// FleetChannel is the PostgreSQL notification channel a committed change
// of the fleet parameters notifies (its payload is the new version).
const FleetChannel = "capf_fleet_parameters"

// FleetParameters are the fleet parameters as a store holds them.
type FleetParameters struct {
	// Values are the parameters set so far, by key, as JSON text; a key
	// never set is absent, and its default applies.
	Values map[string]json.RawMessage
	// Version counts the committed changes: 0 before the first.
	Version int64
	// Imported is true once a node's capf.json was imported (or found
	// to hold nothing to import): that happens once per database.
	Imported bool
	// ImportedKeys are the fleet keys a capf.json was imported for,
	// sorted: each key once per database, so that a node setting that
	// becomes a fleet parameter in a later version is imported by the
	// first node of that version.
	ImportedKeys []string
}

// WasImported reports whether a capf.json was imported for key.
func (fp FleetParameters) WasImported(key string) bool { return slices.Contains(fp.ImportedKeys, key) }

// FleetChange is what an UpdateFleetParameters closure asks the store to
// write.
type FleetChange struct {
	Set          map[string]json.RawMessage // the keys to store; valid JSON each
	MarkImported bool                       // record that capf.json was imported
	ImportedKeys []string                   // record that capf.json was imported for these keys (implies MarkImported)
	Audit        device.AuditEvent          // appended in the same transaction; none if Action is ""
}

// Empty reports whether c writes nothing.
func (c FleetChange) Empty() bool {
	return len(c.Set) == 0 && !c.MarkImported && len(c.ImportedKeys) == 0
}

// Marks reports whether c marks something not yet marked in cur: the
// import, or a key of ImportedKeys.
func (c FleetChange) Marks(cur FleetParameters) bool {
	if (c.MarkImported || len(c.ImportedKeys) > 0) && !cur.Imported {
		return true
	}
	return slices.ContainsFunc(c.ImportedKeys, func(k string) bool { return !cur.WasImported(k) })
}

// MergeImported returns the sorted union of the keys cur was imported for
// and those c marks.
func (c FleetChange) MergeImported(cur FleetParameters) []string {
	keys := append([]string{}, cur.ImportedKeys...)
	keys = append(keys, c.ImportedKeys...)
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Options configure a Service.
type Options struct {
	DataDir string // holds the node's capf.json
	Store   Store
	Now     func() time.Time // time.Now if nil
}

// Service is the system administration: service parameters and
// activation.
type Service struct {
	dir   string
	store Store
	now   func() time.Time

	mu sync.Mutex // serialises parameter updates of this process
}

// NewService returns the service over o.
func NewService(o Options) *Service {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Service{dir: o.DataDir, store: o.Store, now: now}
}

// paramTypes maps each capf.json key to its Type, from the Go types of
// config.Config's fields.
var paramTypes = func() map[string]string {
	m := map[string]string{}
	durType := reflect.TypeFor[config.Duration]()
	t := reflect.TypeFor[config.Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Type == durType:
			m[key] = TypeDuration
		case f.Type.Kind() == reflect.Int:
			m[key] = TypeInteger
		case f.Type.Kind() == reflect.Bool:
			m[key] = TypeBoolean
		case f.Type.Kind() == reflect.Slice:
			m[key] = TypeList
		default:
			m[key] = TypeString
		}
	}
	return m
}()

// values returns c's parameters by capf.json key, as JSON text.
func values(c config.Config) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode service parameters: %w", err)
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode service parameters: %w", err)
	}
	return m, nil
}

// redact replaces the password of the database URL in vals (the JSON
// text of each parameter) with xxxxx: parameters are shown and audited,
// and the database node setting may hold a password.
func redact(vals map[string]json.RawMessage) {
	var db string
	if json.Unmarshal(vals["database"], &db) != nil || db == "" {
		return
	}
	b, err := json.Marshal(config.RedactDatabase(db))
	if err == nil {
		vals["database"] = b
	}
}

// native decodes a parameter's JSON text as the JSON-native value of its
// type: int64, bool, string or []string.
func native(typ string, raw json.RawMessage) any {
	switch typ {
	case TypeInteger:
		var n int64
		if json.Unmarshal(raw, &n) == nil {
			return n
		}
	case TypeBoolean:
		var b bool
		if json.Unmarshal(raw, &b) == nil {
			return b
		}
	case TypeList:
		l := []string{}
		if json.Unmarshal(raw, &l) == nil {
			if l == nil {
				l = []string{}
			}
			return l
		}
	default:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// ParametersOf returns every parameter of config.Params, in order, with
// its value in cur: what Parameters shows where there is no database yet.
func ParametersOf(cur config.Config) ([]Parameter, error) { return list(cur) }

// list returns every parameter of config.Params, in order, with its value
// in cur.
func list(cur config.Config) ([]Parameter, error) {
	vals, err := values(cur)
	if err != nil {
		return nil, err
	}
	redact(vals)
	defs, err := values(config.Defaults())
	if err != nil {
		return nil, err
	}
	ps := make([]Parameter, 0, len(config.Params))
	for _, p := range config.Params {
		typ := paramTypes[p.Key]
		ps = append(ps, Parameter{
			Name:     p.Key,
			Value:    native(typ, vals[p.Key]),
			Default:  native(typ, defs[p.Key]),
			Type:     typ,
			Help:     p.Help,
			Restart:  !config.IsFleet(p.Key),
			HostOnly: config.IsHostOnly(p.Key),
			Choices:  ChoicesOf(p.Key),
		})
	}
	return ps, nil
}

// problemError returns the first problem as an Invalid error naming its
// parameter, preferring a problem about a parameter of set: the caller's
// input is what to blame first.
func problemError(problems []string, set map[string]any) error {
	pick, field := problems[0], problemKey(problems[0])
	for _, p := range problems {
		if k := problemKey(p); set != nil && k != "" {
			if _, ok := set[k]; ok {
				pick, field = p, k
				break
			}
		}
	}
	if field == "" {
		return fault.Invalidf("service parameters: %s", pick)
	}
	return fault.InvalidField(field, "%s", pick)
}

// problemKey returns the parameter a config problem is about (its first
// word, up to a space or colon), or "" when the problem names none.
func problemKey(p string) string {
	k := p
	if i := strings.IndexAny(p, " :"); i >= 0 {
		k = p[:i]
	}
	if _, ok := paramTypes[k]; ok {
		return k
	}
	return ""
}

// diff lists the parameters that differ between old and new, with their
// JSON text, in display order.
func diff(old, new config.Config) ([]device.FieldChange, error) {
	ov, err := values(old)
	if err != nil {
		return nil, err
	}
	nv, err := values(new)
	if err != nil {
		return nil, err
	}
	changed := func(k string) bool { return !bytes.Equal(ov[k], nv[k]) }
	dbChanged := changed("database")
	redact(ov)
	redact(nv)
	var cs []device.FieldChange
	for _, p := range config.Params {
		if !bytes.Equal(ov[p.Key], nv[p.Key]) || (p.Key == "database" && dbChanged) {
			cs = append(cs, device.FieldChange{Field: p.Key, Old: string(ov[p.Key]), New: string(nv[p.Key])})
		}
	}
	return cs, nil
}

// maxParamText bounds the text of one form input.
const maxParamText = 64 << 10

// ParseParamValue converts the text of a form input for p into the
// JSON-native value UpdateParameters takes: an integer, a boolean ("true"
// or "on" for true; "false" or nothing, an unchecked box, for false), a
// duration or string as text, a list with one entry per non-empty line. The
// value's range is checked by UpdateParameters.
func ParseParamValue(p Parameter, text string) (any, error) {
	if len(text) > maxParamText {
		return nil, fault.InvalidField(p.Name, "%s: longer than %d bytes", p.Name, maxParamText)
	}
	t := strings.TrimSpace(text)
	switch p.Type {
	case TypeInteger:
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fault.InvalidField(p.Name, "%s: want a whole number, got %q", p.Name, t)
		}
		return n, nil
	case TypeBoolean:
		switch strings.ToLower(t) {
		case "true", "on":
			return true, nil
		case "false", "":
			return false, nil
		}
		return nil, fault.InvalidField(p.Name, "%s: want true or false, got %q", p.Name, t)
	case TypeDuration:
		if _, err := time.ParseDuration(t); err != nil {
			return nil, fault.InvalidField(p.Name, "%s: %q is not a duration: want a number with a unit, such as \"90s\" or \"30m\"", p.Name, t)
		}
		return t, nil
	case TypeList:
		l := []string{}
		for line := range strings.Lines(text) {
			if line = strings.TrimSpace(line); line != "" {
				l = append(l, line)
			}
		}
		return l, nil
	case TypeString:
		return t, nil
	}
	return nil, fault.InvalidField(p.Name, "%s: unknown parameter type %q", p.Name, p.Type)
}

// Activation returns whether the CAPF service accepts phones.
func (s *Service) Activation(ctx context.Context) (Activation, error) {
	st, err := s.store.GetServiceState(ctx)
	if err != nil {
		return Activation{}, fmt.Errorf("read the service activation: %w", err)
	}
	return activation(st), nil
}

func activation(st ServiceState) Activation {
	a := Activation{Active: st.Active, ChangedBy: st.ChangedBy}
	if !st.ChangedAt.IsZero() {
		a.ChangedAt = st.ChangedAt.UTC().Format(time.RFC3339)
	}
	return a
}

// SetActive activates or deactivates the CAPF service: a running `capf
// serve` stops or starts accepting phones within about a second. The
// change is audited; setting the state it already has changes nothing.
func (s *Service) SetActive(ctx context.Context, actor device.Actor, active bool) (Activation, error) {
	cur, err := s.store.GetServiceState(ctx)
	if err != nil {
		return Activation{}, fmt.Errorf("read the service activation: %w", err)
	}
	if cur.Active == active {
		return activation(cur), nil
	}
	st := ServiceState{Active: active, ChangedAt: s.now(), ChangedBy: actor.String()}
	action := AuditServiceDeactivate
	if active {
		action = AuditServiceActivate
	}
	ev := device.AuditEvent{At: st.ChangedAt, Actor: actor, Action: action, Target: "service",
		Changes: []device.FieldChange{{Field: "state", Old: stateWord(cur.Active), New: stateWord(active)}}}
	if err := s.store.SetServiceState(ctx, st, ev); err != nil {
		return Activation{}, fmt.Errorf("set the service activation: %w", err)
	}
	return activation(st), nil
}

func stateWord(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}
