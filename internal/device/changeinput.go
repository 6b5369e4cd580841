package device

import (
	"errors"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/safetext"
)

// ChangeInput is a device change as an edge receives it: the raw text of
// each field, from a flag, a JSON member, a form value or a CSV cell. A nil
// field was not given and stays as it is; a given field is parsed, even
// when empty. Every edge fills a ChangeInput from its own syntax and calls
// [ChangeInput.Parse], so that a value means the same wherever it is typed.
type ChangeInput struct {
	Description     *string
	SecurityProfile *string // see [ParseSecurityProfile]
	AuthMode        *string // see [ParseAuthMode]
	// AuthString is 4 to 10 digits; given empty, it clears the string.
	AuthString *string
	Operation  *string // see [ParseOperation]
	Key        *string // see [ParseKeySpec]
	// Deadline is Operation Completes By (see [ParseDeadline]); given
	// empty or "none", it clears the deadline.
	Deadline       *string
	GenerateString bool
	// Loc is the zone of a deadline written without one; nil is UTC.
	Loc *time.Location
}

// The JSON names of the fields a [ChangeInput] parses, as its errors
// blame them (fault.FieldOf).
const (
	FieldNameDescription     = "description"
	FieldNameSecurityProfile = "security_profile"
	FieldNameAuthMode        = "auth_mode"
	FieldNameAuthString      = "auth_string"
	FieldNameGenerateString  = "generate_string"
	FieldNameOperation       = "operation"
	FieldNameKey             = "key"
	FieldNameDeadline        = "deadline"
)

// FieldErrors is every field error of one input, in field order. Each is
// an Invalid fault blaming its field (fault.FieldOf); fault.Message and
// fault.FieldOf of the whole are those of the first, so an edge that shows
// one problem shows the first, and an edge that shows each next to its
// field ranges over Errors.
type FieldErrors struct {
	Errors []error
}

// Error is the messages, one after the other.
func (e *FieldErrors) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, err := range e.Errors {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap gives the field errors to errors.Is and errors.As.
func (e *FieldErrors) Unwrap() []error { return e.Errors }

// ErrorsByField returns each field error of err (a [FieldErrors], or any
// error with a field) by its field, the first per field; an error that
// blames no field is under "".
func ErrorsByField(err error) map[string]error {
	out := map[string]error{}
	var fe *FieldErrors
	errs := []error{err}
	if errors.As(err, &fe) {
		errs = fe.Errors
	}
	for _, e := range errs {
		f := fault.FieldOf(e)
		if _, ok := out[f]; !ok {
			out[f] = e
		}
	}
	return out
}

// Parse checks every given field and returns the change they make. Every
// field that is wrong is named: the error is a [*FieldErrors] of Invalid
// faults, each blaming its field.
func (in ChangeInput) Parse() (Change, error) {
	var c Change
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if in.Description != nil {
		d := *in.Description
		c.Description = &d
	}
	if in.SecurityProfile != nil {
		p, err := ParseSecurityProfile(*in.SecurityProfile)
		add(err)
		c.SecurityProfile = &p
	}
	if in.AuthMode != nil {
		m, err := ParseAuthMode(*in.AuthMode)
		add(err)
		c.AuthMode = &m
	}
	if in.AuthString != nil {
		s := *in.AuthString
		if s != "" {
			add(ValidateAuthString(s))
		}
		c.AuthString = &s
		if in.GenerateString {
			add(fault.InvalidField(FieldNameGenerateString, "give an authentication string or generate one, not both"))
		}
	}
	c.GenerateString = in.GenerateString
	if in.Operation != nil {
		o, err := ParseOperation(*in.Operation)
		add(err)
		c.Operation = &o
	}
	if in.Key != nil {
		k, err := ParseKeySpec(*in.Key)
		add(err)
		c.Key = &k
	}
	if in.Deadline != nil {
		t, err := ParseDeadline(*in.Deadline, in.Loc)
		add(err)
		c.Deadline = &t
	}
	if len(errs) > 0 {
		return Change{}, &FieldErrors{Errors: errs}
	}
	return c, nil
}

// The range of a deadline's year: it keeps the time writable as RFC 3339
// (four-digit years) and clear of the zero time, which means "no deadline".
const (
	MinDeadlineYear = 2000
	MaxDeadlineYear = 9999
)

// deadlineLayouts are the spellings of a deadline without a zone: the web
// UI's datetime-local ("2027-03-31T18:00", with or without seconds) and the
// report's ("2027-03-31 18:00").
var deadlineLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"}

// ParseDeadline reads Operation Completes By: an RFC 3339 time, or a date
// and time without a zone in loc (nil: UTC). Empty or "none" is the zero
// time: no deadline. The result is in UTC.
func ParseDeadline(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	v := strings.TrimSpace(s)
	if v == "" || strings.EqualFold(v, "none") {
		return time.Time{}, nil
	}
	quoted := safetext.Bound(s, 64) // it is quoted in errors, which may reach a log
	t, err := time.Parse(time.RFC3339, v)
	for _, layout := range deadlineLayouts {
		if err == nil {
			break
		}
		t, err = time.ParseInLocation(layout, v, loc)
	}
	if err != nil {
		return time.Time{}, fault.InvalidField(FieldNameDeadline, "Operation Completes By %q: want a date and time such as 2027-03-31T18:00 (%s), or 2027-03-31 18:00, or an RFC 3339 time such as 2027-03-31T18:00:00Z; empty or none for no deadline", quoted, loc)
	}
	if y := t.UTC().Year(); y < MinDeadlineYear || y > MaxDeadlineYear {
		return time.Time{}, fault.InvalidField(FieldNameDeadline, "Operation Completes By %q: the year must be from %d to %d", quoted, MinDeadlineYear, MaxDeadlineYear)
	}
	return t.UTC(), nil
}
