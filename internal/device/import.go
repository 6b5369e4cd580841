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
	// LSC, when set, is a certificate another CAPF issued to the phone
	// (capf migrate-from): a row that creates its device gives it this
	// LSC, and the store records it as an issuance. A row that updates a
	// device leaves the device's LSC as it is (see [Store.UpdateDevice]).
	LSC *Certificate
	// MustCreate refuses the row, and so the whole import, with a Conflict
	// error naming its line when its device exists already.
	MustCreate bool
}

// Given says which optional fields an import row sets.
type Given struct {
	Description, SecurityProfile, AuthMode, AuthString, Operation, Key, Deadline bool
}

// Import adds or updates every device in rows in one transaction: if any
// row is invalid, nothing changes and the error names its line. A value not
// given takes its default, as for [Service.Add]; an existing device keeps
// its LSC, history and, unless the row changes its operation or
// configuration, its status. A row equal to the stored device is counted
// unchanged, so importing the CAPF report back changes nothing.
func (s *Service) Import(ctx context.Context, actor Actor, rows []ImportRow) (ImportCounts, error) {
	names := make([]string, len(rows))
	seen := make(map[string]int, len(rows))
	var probs RowErrors
	for i, r := range rows {
		name, err := NormalizeName(r.Device.Name)
		if err != nil {
			probs.Add(rowProblem(r.Line, err))
			continue
		}
		if prev, dup := seen[name]; dup {
			probs.Add(RowProblem{Line: r.Line, Column: columnLabels["name"], Reason: fmt.Sprintf("device %s already appears on line %d", name, prev)})
			continue
		}
		seen[name] = r.Line
		names[i] = name
	}
	if err := probs.Err(); err != nil {
		return ImportCounts{}, err
	}
	now := s.now().UTC()
	// Every row is checked, in the transaction (a row's rules may depend on
	// the stored device): a bad row is noted and stands in as unchanged
	// (or, for a new device, as its defaults), and the last row rolls the
	// whole import back if any was bad. The closure may run again from the
	// first row (see Store): the notes start over there.
	var bad RowErrors
	counts, err := s.store.ImportDevices(ctx, names, actor, func(i int, old *Device) (Device, error) {
		if i == 0 {
			bad = RowErrors{}
		}
		d, err := s.importOne(names[i], rows[i], old, now)
		if err != nil {
			bad.Add(rowProblem(rows[i].Line, err))
			bad.Conflict = bad.Conflict || fault.KindOf(err) == fault.Conflict
			d = s.standIn(names[i], old, now)
		}
		if i == len(names)-1 && len(bad.Problems) > 0 {
			return Device{}, &bad
		}
		return d, nil
	})
	if len(bad.Problems) > 0 {
		return ImportCounts{}, &bad
	}
	if err != nil {
		return ImportCounts{}, fmt.Errorf("import: %w", err)
	}
	return counts, nil
}

// standIn is what a bad row writes until the import is rolled back: the
// stored device as it is, or a new one's defaults.
func (s *Service) standIn(name string, old *Device, now time.Time) Device {
	if old != nil {
		return *old
	}
	d := Device{Name: name, CreatedAt: now, UpdatedAt: now}
	applyDefaults(&d, s.defaultKey)
	return d
}

// columnLabels names the import file's columns by the field an error
// blames (fault.Field), as the file's header and the UI label them.
var columnLabels = map[string]string{
	"name": "Device Name", "description": "Description", "security_profile": "Security Profile",
	"auth_mode": "Authentication Mode", "auth_string": "Authentication String", "operation": "Certificate Operation",
	"key": "Key", "deadline": "Operation Completes By",
}

// rowProblem is the problem of the row on line that err describes, blamed
// on the column of the field err names, if any.
func rowProblem(line int, err error) RowProblem {
	return RowProblem{Line: line, Column: columnLabels[fault.FieldOf(err)], Reason: message(err)}
}

func (s *Service) importOne(name string, r ImportRow, old *Device, now time.Time) (Device, error) {
	if old != nil && r.MustCreate {
		return Device{}, fault.Conflictf("device %s exists already", name)
	}
	d := Device{Name: name}
	if old == nil && r.LSC != nil {
		lsc := *r.LSC
		d.LSC = &lsc
	}
	r.change().Apply(&d)
	applyDefaults(&d, s.keyDefault())
	if old != nil {
		d.CreatedAt, d.Status = old.CreatedAt, old.Status
	} else {
		d.CreatedAt = now
	}
	if err := s.prepare(&d, old, rule{explicitString: r.Given.AuthString && r.Device.AuthString != ""}, now); err != nil {
		return Device{}, err
	}
	d.UpdatedAt = now
	return d, nil
}

// change is the row as a Change: the values given, and nothing for the
// cells left empty (they take their defaults).
func (r ImportRow) change() Change {
	g, in := r.Given, r.Device
	var c Change
	if g.Description {
		c.Description = &in.Description
	}
	if g.SecurityProfile {
		c.SecurityProfile = &in.SecurityProfile
	}
	if g.AuthMode {
		c.AuthMode = &in.AuthMode
	}
	if g.AuthString {
		c.AuthString = &in.AuthString
	}
	if g.Operation {
		c.Operation = &in.Operation
	}
	if g.Key {
		c.Key = &in.Key
	}
	if g.Deadline {
		c.Deadline = &in.Deadline
	}
	return c
}

// message returns the text of a fault error without the kind's wrapping.
func message(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}
