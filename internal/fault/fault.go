// Package fault defines the kinds of error the domain returns, so that each
// edge of the system (CAPF reason codes, HTTP status, CLI exit codes) maps
// them once. Domain code wraps a kind with context using fmt.Errorf and %w;
// edges classify with [KindOf].
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the edges that report it.
type Kind int

// The error kinds.
const (
	Internal     Kind = iota // a bug or an unexpected failure; details go to the log only
	Invalid                  // the input is wrong; the message says how
	NotFound                 // the named thing does not exist
	Conflict                 // the thing exists already, or changed under us
	Unauthorized             // the credentials were not accepted
	Unavailable              // try again later
	Forbidden                // authenticated, but the role does not allow it
	Throttled                // too many attempts; wait before the next one
)

var kindNames = [...]string{"internal", "invalid", "not-found", "conflict", "unauthorized", "unavailable", "forbidden", "throttled"}

// String returns the kind's name.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Error is an error of a known kind with a message meant for the person or
// client that caused it.
type Error struct {
	Kind Kind
	Msg  string
	// Field names the input that is wrong, in the JSON vocabulary of the
	// edges (e.g. "auth_string", "certificate_validity_days"), when one
	// field is to blame; a form shows the message next to it.
	Field string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, fault.ErrNotFound) and the like match any error of
// the same kind.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Msg == "" && t.Kind == e.Kind
	}
	return false
}

// Sentinels to compare kinds with errors.Is.
var (
	ErrInvalid      = &Error{Kind: Invalid}
	ErrNotFound     = &Error{Kind: NotFound}
	ErrConflict     = &Error{Kind: Conflict}
	ErrUnauthorized = &Error{Kind: Unauthorized}
	ErrUnavailable  = &Error{Kind: Unavailable}
	ErrForbidden    = &Error{Kind: Forbidden}
	ErrThrottled    = &Error{Kind: Throttled}
)

// New returns an error of kind k with a formatted message.
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Invalidf returns an Invalid error.
func Invalidf(format string, args ...any) error { return New(Invalid, format, args...) }

// NotFoundf returns a NotFound error.
func NotFoundf(format string, args ...any) error { return New(NotFound, format, args...) }

// Conflictf returns a Conflict error.
func Conflictf(format string, args ...any) error { return New(Conflict, format, args...) }

// InvalidField returns an Invalid error that blames the input field.
func InvalidField(field, format string, args ...any) error {
	return &Error{Kind: Invalid, Msg: fmt.Sprintf(format, args...), Field: field}
}

// FieldOf returns the field the first *Error in err's chain blames, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Message returns what err says to the person or client that caused it:
// the message of the first *Error in err's chain — the rule, said once,
// without the context the layers wrapped around it ("change device X:
// update device …"), which belongs in the log (see [Chained]). An error
// without a kind says its whole text (an edge hides it if Internal).
func Message(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Msg != "" {
		return e.Msg
	}
	return err.Error()
}

// Chained reports whether err's text holds more than its [Message]: the
// context wrapped around the rule, which the edge that maps err logs.
func Chained(err error) bool {
	return err != nil && err.Error() != Message(err)
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}
