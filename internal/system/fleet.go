package system

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// AuditTargetParameters is the audit target of a change of the fleet
// parameters in the database; a node setting's change names the file,
// config.FileName.
const AuditTargetParameters = "parameters"

// MigrationActor is the actor of the one-time import of a capf.json's
// fleet parameters into the database.
var MigrationActor = device.Actor{Kind: device.ActorSystem, Name: "migration"}

// path is capf.json's.
func (s *Service) path() string { return filepath.Join(s.dir, config.FileName) }

// readFile returns the node's capf.json, or nil when there is none.
func (s *Service) readFile() ([]byte, error) {
	b, err := os.ReadFile(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read service parameters: %w", err)
	}
	return b, nil
}

// Compose returns the parameters in force on a node whose own
// configuration (capf.json, flags) is node: its node settings, and the
// fleet parameters of fp over their defaults. For a fleet key that no
// capf.json was imported for yet (fp.WasImported), the value node took
// from its file stands in for the default, since it is what the import
// will store. A stored value that does not decode or check is an Invalid
// error naming it (a database written by a newer version, or by hand).
func Compose(node config.Config, fp FleetParameters) (config.Config, error) {
	vals, err := values(node)
	if err != nil {
		return config.Config{}, err
	}
	defs, err := values(config.Defaults())
	if err != nil {
		return config.Config{}, err
	}
	for _, k := range config.FleetKeys {
		if fp.WasImported(k) {
			vals[k] = defs[k]
		}
	}
	for k, v := range fp.Values {
		if config.IsFleet(k) {
			vals[k] = v
		}
	}
	b, err := json.Marshal(vals)
	if err != nil {
		return config.Config{}, fmt.Errorf("encode service parameters: %w", err)
	}
	cfg, problems := config.Decode(b)
	if len(problems) > 0 {
		return config.Config{}, problemError(problems, nil)
	}
	return cfg, nil
}

// Effective returns the parameters in force for a node whose own
// configuration is node (see Compose), with the version of the fleet
// parameters they include.
func (s *Service) Effective(ctx context.Context, node config.Config) (config.Config, int64, error) {
	fp, err := s.store.FleetParameters(ctx)
	if err != nil {
		return config.Config{}, 0, fmt.Errorf("read the fleet parameters: %w", err)
	}
	cfg, err := Compose(node, fp)
	if err != nil {
		return config.Config{}, 0, fmt.Errorf("fleet parameters version %d: %w", fp.Version, err)
	}
	return cfg, fp.Version, nil
}

// FleetVersion returns the change counter of the fleet parameters.
func (s *Service) FleetVersion(ctx context.Context) (int64, error) {
	v, err := s.store.FleetParametersVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the fleet parameters version: %w", err)
	}
	return v, nil
}

// Parameters returns every service parameter, in display order, with the
// value in force: a node setting's from the node's capf.json (its default
// where the file has none), a fleet parameter's from the database.
func (s *Service) Parameters(ctx context.Context) ([]Parameter, error) {
	node, err := config.Load(s.dir)
	if err != nil {
		return nil, err
	}
	cfg, _, err := s.Effective(ctx, node)
	if err != nil {
		return nil, err
	}
	return list(cfg)
}

// ImportFile imports the fleet parameters the node's capf.json sets into
// the database, once per key and database: the first node to call it
// (`capf serve` does, at start) stores them, audited as system:migration,
// and marks their keys imported; every later call, on any node, changes
// nothing. When a later version makes a node setting a fleet parameter,
// the first node of that version imports that key alone. A parameter an
// administrator already set in the database keeps that value. A file with
// no fleet parameter (or none at all) only marks the keys. It returns the
// keys it imported. The file stays as it is; its fleet parameters are
// ignored from then on (FileFleetKeys lists them for a warning).
func (s *Service) ImportFile(ctx context.Context) ([]string, error) {
	b, err := s.readFile()
	if err != nil {
		return nil, err
	}
	// A file that does not load matters only while there is an import
	// to make.
	set, ferr := fileFleet(b)
	var imported []string
	_, err = s.store.UpdateFleetParameters(ctx, func(cur FleetParameters) (FleetChange, error) {
		imported = nil
		pending := slices.DeleteFunc(slices.Clone(config.FleetKeys), cur.WasImported)
		if len(pending) == 0 {
			return FleetChange{}, nil
		}
		if ferr != nil {
			return FleetChange{}, ferr
		}
		ch := FleetChange{Set: map[string]json.RawMessage{}, MarkImported: true, ImportedKeys: pending}
		defs, err := values(config.Defaults())
		if err != nil {
			return FleetChange{}, err
		}
		var changes []device.FieldChange
		for _, p := range config.Params {
			v, ok := set[p.Key]
			if _, stored := cur.Values[p.Key]; !ok || stored || !slices.Contains(pending, p.Key) {
				continue // an administrator's change made before the import wins
			}
			ch.Set[p.Key] = v
			imported = append(imported, p.Key)
			changes = append(changes, device.FieldChange{Field: p.Key, Old: string(defs[p.Key]), New: string(v)})
		}
		if len(changes) > 0 {
			ch.Audit = device.AuditEvent{At: s.now(), Actor: MigrationActor, Action: AuditParametersImport,
				Target: AuditTargetParameters, Changes: changes}
		}
		return ch, nil
	})
	if err != nil {
		return nil, fmt.Errorf("import the fleet parameters of %s: %w", s.path(), err)
	}
	return imported, nil
}

// fileFleet returns the fleet parameters a capf.json sets, each as the
// canonical JSON of its decoded value; a file that does not load is an
// error naming its problems.
func fileFleet(b []byte) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	if b == nil {
		return out, nil
	}
	cfg, problems := config.Decode(b)
	if len(problems) > 0 {
		return nil, problemError(problems, nil)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fault.Invalidf("service parameters: %v", err)
	}
	vals, err := values(cfg)
	if err != nil {
		return nil, err
	}
	for k := range raw {
		if config.IsFleet(k) {
			out[k] = vals[k]
		}
	}
	return out, nil
}

// FileFleetKeys returns the fleet parameters the node's capf.json still
// sets: after the import they are ignored, and `capf serve` says so.
func (s *Service) FileFleetKeys() ([]string, error) {
	b, err := s.readFile()
	if err != nil {
		return nil, err
	}
	set, err := fileFleet(b)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// UpdateParameters sets the parameters of set (keys to JSON-native
// values). A fleet parameter is changed in the database: validated with
// the other fleet parameters as stored, and stored with its audit event in
// the same transaction; only the keys of set are written, so another
// administrator's concurrent change of other keys stands. A node setting
// is written to the node's capf.json (atomically, mode 0600) and applies
// when `capf serve` starts again. Every value is checked as `capf serve`
// checks it before anything is written; the first problem is returned as
// an Invalid error naming its parameter, and then nothing changes. A value
// equal to the one in force changes and audits nothing.
func (s *Service) UpdateParameters(ctx context.Context, actor device.Actor, set map[string]any) ([]Parameter, error) {
	names := slices.Sorted(maps.Keys(set))
	fleet, node := map[string]any{}, map[string]any{}
	for _, name := range names {
		if _, ok := paramTypes[name]; !ok {
			return nil, fault.InvalidField(name, "unknown service parameter %q", name)
		}
		if config.IsHostOnly(name) && actor.Kind != device.ActorCLI {
			return nil, fault.New(fault.Forbidden, "%s names a program, file or database of the host: set it in capf.json on the host (capf config set %s …), not through the API or the web UI", name, name)
		}
		if config.IsFleet(name) {
			fleet[name] = set[name]
		} else {
			node[name] = set[name]
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.readFile()
	if err != nil {
		return nil, err
	}
	oldFile, _ := config.DecodeOver(b, nil)
	newFile, problems := config.DecodeOver(b, node)
	if len(problems) > 0 && len(node) > 0 {
		return nil, problemError(problems, node)
	}
	if len(fleet) > 0 {
		if err := s.checkFleet(fleet); err != nil {
			return nil, err
		}
		if err := s.updateFleet(ctx, actor, fleet); err != nil {
			return nil, err
		}
	}
	if len(node) > 0 {
		if err := s.writeNode(ctx, actor, b, oldFile, newFile); err != nil {
			return nil, err
		}
	}
	return s.Parameters(ctx)
}

// checkFleet checks the values of fleet on their own, over the defaults,
// so that a bad value is refused before anything (the import included) is
// written; updateFleet checks them again with what is stored.
func (s *Service) checkFleet(fleet map[string]any) error {
	base, err := fleetDoc(nil)
	if err != nil {
		return err
	}
	if _, problems := config.DecodeOver(base, fleet); len(problems) > 0 {
		return problemError(problems, fleet)
	}
	return nil
}

// fleetDoc returns a JSON object of every fleet parameter: its default,
// or its value in stored.
func fleetDoc(stored map[string]json.RawMessage) ([]byte, error) {
	defs, err := values(config.Defaults())
	if err != nil {
		return nil, err
	}
	doc := map[string]json.RawMessage{}
	for _, k := range config.FleetKeys {
		doc[k] = defs[k]
		if v, ok := stored[k]; ok {
			doc[k] = v
		}
	}
	return json.Marshal(doc)
}

// updateFleet writes the fleet parameters of fleet in one transaction
// with their audit event.
func (s *Service) updateFleet(ctx context.Context, actor device.Actor, fleet map[string]any) error {
	at := s.now()
	_, err := s.store.UpdateFleetParameters(ctx, func(cur FleetParameters) (FleetChange, error) {
		base, err := fleetDoc(cur.Values)
		if err != nil {
			return FleetChange{}, err
		}
		// A stored value that does not check (written by another version,
		// or by hand) may be replaced: only the result must check.
		old, _ := config.DecodeOver(base, nil)
		cfg, problems := config.DecodeOver(base, fleet)
		if len(problems) > 0 {
			return FleetChange{}, problemError(problems, fleet)
		}
		ov, err := values(old)
		if err != nil {
			return FleetChange{}, err
		}
		maps.Copy(ov, cur.Values) // as stored, even where it did not decode
		nv, err := values(cfg)
		if err != nil {
			return FleetChange{}, err
		}
		ch := FleetChange{Set: map[string]json.RawMessage{}}
		var changes []device.FieldChange
		for _, p := range config.Params {
			if _, ok := fleet[p.Key]; !ok || bytes.Equal(ov[p.Key], nv[p.Key]) {
				continue
			}
			ch.Set[p.Key] = nv[p.Key]
			changes = append(changes, device.FieldChange{Field: p.Key, Old: string(ov[p.Key]), New: string(nv[p.Key])})
		}
		if len(changes) > 0 {
			ch.Audit = device.AuditEvent{At: at, Actor: actor, Action: AuditParametersUpdate, Target: AuditTargetParameters, Changes: changes}
		}
		return ch, nil
	})
	if err != nil {
		return fmt.Errorf("change the fleet parameters: %w", err)
	}
	return nil
}

// writeNode replaces the node's capf.json (b as read) with newFile's node
// settings and audits the change, unless nothing changed.
func (s *Service) writeNode(ctx context.Context, actor device.Actor, b []byte, oldFile, newFile config.Config) error {
	changes, err := diff(oldFile, newFile)
	if err != nil {
		return err
	}
	changes = slices.DeleteFunc(changes, func(c device.FieldChange) bool { return config.IsFleet(c.Field) })
	if len(changes) == 0 && b != nil {
		return nil
	}
	out, err := s.nodeFile(b, newFile)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path(), append(out, '\n'), 0o600, false); err != nil {
		return fmt.Errorf("write service parameters: %w", err)
	}
	if len(changes) > 0 {
		ev := device.AuditEvent{At: s.now(), Actor: actor, Action: AuditParametersUpdate, Target: config.FileName, Changes: changes}
		if err := s.store.AppendAudit(ctx, ev); err != nil {
			return fmt.Errorf("audit the parameter change (%s is written): %w", config.FileName, err)
		}
	}
	return nil
}

// nodeFile returns the new text of capf.json: the node settings of cfg,
// and the fleet parameters the old file b still sets, as they were (they
// are ignored once imported, but an administrator's file is not thinned
// behind their back).
func (s *Service) nodeFile(b []byte, cfg config.Config) ([]byte, error) {
	keep, err := fileFleet(b)
	if err != nil {
		return nil, err
	}
	out, err := config.NodeJSON(cfg)
	if err != nil || len(keep) == 0 {
		return out, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("encode service parameters: %w", err)
	}
	maps.Copy(doc, keep)
	return json.MarshalIndent(doc, "", "  ")
}
