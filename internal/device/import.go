package device

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// ImportRow is one row of a bulk import: the values given and which of the
// optional ones were given (an empty cell means the default).
type ImportRow struct {
	Line   int // line in the source file, for error messages
	Device Device
	Given  Given
}

// Given says which optional fields an import row sets.
type Given struct {
	Description, SecurityProfile, AuthMode, AuthString, Operation, Key, Deadline bool
}

// Import adds or updates every device in rows in one transaction: if any
// row is invalid, nothing changes and the error names its line. A value not
// given takes its default, as for [Service.Add]; an existing device keeps
// its LSC and history.
func (s *Service) Import(ctx context.Context, rows []ImportRow) (ImportCounts, error) {
	all, err := s.store.ListDevices(ctx, Query{})
	if err != nil {
		return ImportCounts{}, fmt.Errorf("import: read devices: %w", err)
	}
	existing := make(map[string]*Device, len(all.Devices))
	for i := range all.Devices {
		existing[all.Devices[i].Name] = &all.Devices[i]
	}
	now := s.now().UTC()
	out := make([]Device, 0, len(rows))
	seen := make(map[string]int, len(rows))
	for _, r := range rows {
		d, err := s.importOne(r, existing, now)
		if err != nil {
			return ImportCounts{}, fault.Invalidf("line %d: %s", r.Line, message(err))
		}
		if prev, dup := seen[d.Name]; dup {
			return ImportCounts{}, fault.Invalidf("line %d: device %s already appears on line %d", r.Line, d.Name, prev)
		}
		seen[d.Name] = r.Line
		out = append(out, d)
	}
	counts, err := s.store.ImportDevices(ctx, out)
	if err != nil {
		return ImportCounts{}, fmt.Errorf("import: %w", err)
	}
	return counts, nil
}

func (s *Service) importOne(r ImportRow, existing map[string]*Device, now time.Time) (Device, error) {
	name, err := NormalizeName(r.Device.Name)
	if err != nil {
		return Device{}, err
	}
	d := Device{Name: name}
	g, in := r.Given, r.Device
	if g.Description {
		d.Description = in.Description
	}
	if g.SecurityProfile {
		d.SecurityProfile = in.SecurityProfile
	}
	if g.AuthMode {
		d.AuthMode = in.AuthMode
	}
	if g.AuthString {
		d.AuthString = in.AuthString
	}
	if g.Operation {
		d.Operation = in.Operation
	}
	if g.Key {
		d.Key = in.Key
	}
	if g.Deadline {
		d.Deadline = in.Deadline.UTC()
	}
	applyDefaults(&d, s.defaultKey)
	old := existing[name]
	if old != nil {
		d.CreatedAt, d.LSC, d.Status = old.CreatedAt, old.LSC, old.Status
	} else {
		d.CreatedAt = now
	}
	if err := s.prepare(&d, old, false, now); err != nil {
		return Device{}, err
	}
	d.UpdatedAt = now
	return d, nil
}

// message returns the text of a fault error without the kind's wrapping.
func message(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}
