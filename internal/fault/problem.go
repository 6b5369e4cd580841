package fault

import "net/http"

// Problem is an error as an HTTP edge reports it (RFC 9457 problem
// details): the status, a title for the kind, and a detail meant for the
// client: the rule's own [Message], once, with the field it blames as
// data. An Internal error never shows its text: the detail is generic and
// the error itself belongs in the server's log, as does the chain of
// context around any other (see [Chained]).
type Problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field is the input field to blame, if one is (see Error.Field).
	Field string `json:"field,omitempty"`
}

// httpStatus is the one table from error kind to HTTP status.
var httpStatus = map[Kind]int{
	Internal:     http.StatusInternalServerError,
	Invalid:      http.StatusUnprocessableEntity,
	NotFound:     http.StatusNotFound,
	Conflict:     http.StatusConflict,
	Unauthorized: http.StatusUnauthorized,
	Unavailable:  http.StatusServiceUnavailable,
	Forbidden:    http.StatusForbidden,
	Throttled:    http.StatusTooManyRequests,
}

// ProblemOf maps err to its Problem.
func ProblemOf(err error) Problem {
	k := KindOf(err)
	status, ok := httpStatus[k]
	if !ok {
		k, status = Internal, http.StatusInternalServerError
	}
	p := Problem{Status: status, Title: http.StatusText(status)}
	if k == Internal {
		p.Detail = "internal error; see the server log"
		return p
	}
	p.Detail = Message(err)
	p.Field = FieldOf(err)
	return p
}
