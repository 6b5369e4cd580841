package device

import (
	"errors"
	"fmt"
	"strings"

	"github.com/capf-server/capf/internal/fault"
)

// MaxRowProblems is how many problems of an import file are named; a file
// with more says so.
const MaxRowProblems = 100

// RowProblem is what is wrong with one row (or one value of a row) of an
// import file, as data: the edges show it without reading the message.
type RowProblem struct {
	Line   int    // the physical line the row starts on (1-based)
	Column string // the column to blame, as the file's header names it; "" for the whole row
	Reason string // what is wrong, for the administrator
}

// String is "line N: column C: reason".
func (p RowProblem) String() string {
	if p.Column == "" {
		return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
	}
	return fmt.Sprintf("line %d: column %s: %s", p.Line, p.Column, p.Reason)
}

// RowErrors is the error of an import file with bad rows: every problem
// found, in line order, at most [MaxRowProblems] (More says there were
// more). Nothing of the file was imported. It is an Invalid fault.
type RowErrors struct {
	Problems []RowProblem
	More     bool
	// Conflict: a row collides with what is stored (a device that must be
	// new exists already), so the import is a Conflict, not Invalid.
	Conflict bool
	// File names the file the rows came from, as the administrator gave
	// it, when the edge knows it ("" : none); the message starts with it.
	File string
}

// Error starts with the first problem ("line N: …", after "FILE: " when
// File is known); with several, one line each, then a line that counts
// them.
func (e *RowErrors) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(p.String())
	}
	if n := len(e.Problems); n > 1 || e.More {
		more := ""
		if e.More {
			more = " (and more; the first " + fmt.Sprint(n) + " are named)"
		}
		fmt.Fprintf(&b, "\n%d problems%s; nothing was imported", n, more)
	}
	return b.String()
}

// Unwrap makes the error an Invalid fault for the edges (Conflict when a
// row collides with what is stored).
func (e *RowErrors) Unwrap() error {
	kind := fault.Invalid
	if e.Conflict {
		kind = fault.Conflict
	}
	return &fault.Error{Kind: kind, Msg: e.Error()}
}

// Add appends a problem; beyond [MaxRowProblems] it only sets More.
func (e *RowErrors) Add(p RowProblem) {
	if len(e.Problems) >= MaxRowProblems {
		e.More = true
		return
	}
	e.Problems = append(e.Problems, p)
}

// RowError is the error of one problem.
func RowError(line int, column, format string, args ...any) error {
	return &RowErrors{Problems: []RowProblem{{Line: line, Column: column, Reason: fmt.Sprintf(format, args...)}}}
}

// Err returns e, or nil when it holds no problem.
func (e *RowErrors) Err() error {
	if e == nil || len(e.Problems) == 0 {
		return nil
	}
	return e
}

// RowProblemsOf returns the problems an import error names: those of a
// *RowErrors in err's chain, else none.
func RowProblemsOf(err error) (ps []RowProblem, more bool) {
	var re *RowErrors
	if errors.As(err, &re) {
		return re.Problems, re.More
	}
	return nil, false
}
