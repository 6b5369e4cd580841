package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// fail is the one mapping from a domain error to the problem the client
// gets: the status and detail of fault.ProblemOf (an Internal error's text
// goes to the log only), the field the error blames as
// errors[{location: in.<field>}] (in is "body", "query", "body.change", …),
// Retry-After for a throttled request when the wait is known, and
// WWW-Authenticate for a 401.
//
// The detail says the rule once (fault.Message); the chain of context the
// layers wrapped around it goes to the log here, the one place it is
// mapped.
func (s *server) fail(ctx context.Context, err error, in string) error {
	p := s.problem(ctx, err)
	var details []error
	if p.Field != "" {
		loc := p.Field
		if in != "" {
			loc = in + "." + p.Field
		}
		details = append(details, &huma.ErrorDetail{Location: loc, Message: p.Detail})
	}
	e := huma.NewError(p.Status, p.Detail, details...)
	h := http.Header{}
	switch p.Status {
	case http.StatusTooManyRequests:
		if s.o.RetryAfter != nil {
			if d := s.o.RetryAfter(err); d > 0 {
				h.Set("Retry-After", strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10))
			}
		}
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Bearer realm="capf"`)
	}
	if len(h) > 0 {
		return huma.ErrorWithHeaders(e, h)
	}
	return e
}

// problem maps err to its problem and logs it: an internal error in full,
// any other with the chain of context around its rule when there is one.
func (s *server) problem(ctx context.Context, err error) fault.Problem {
	p := fault.ProblemOf(err)
	switch {
	case p.Status == http.StatusInternalServerError:
		s.log.ErrorContext(ctx, "api: internal error", "err", err)
	case fault.Chained(err):
		s.log.InfoContext(ctx, "api: request refused", "status", p.Status, "detail", p.Detail, "err", err)
	}
	return p
}

// blame returns an Invalid err naming field as the input at fault, unless
// it names one already; the message stays. Other errors (not found, …)
// are not a field's fault and are returned as they are.
func blame(field string, err error) error {
	if err == nil || fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "" {
		return err
	}
	return fault.InvalidField(field, "%s", fault.Message(err))
}

// unavailable is the error of a route whose service is not wired in.
func unavailable(what string) error {
	return fault.New(fault.Unavailable, "%s not available on this server", what)
}

// importFail maps an import error: a bad file is 422 naming every
// problem (up to device.MaxRowProblems) as an error detail located at its
// "line N", the message naming the column and the reason.
func (s *server) importFail(ctx context.Context, err error) error {
	ps, _ := device.RowProblemsOf(err)
	if fault.KindOf(err) != fault.Invalid || len(ps) == 0 {
		return s.fail(ctx, err, "body")
	}
	p := s.problem(ctx, err)
	details := make([]error, 0, len(ps))
	for _, rp := range ps {
		details = append(details, &huma.ErrorDetail{Location: "line " + strconv.Itoa(rp.Line), Message: rp.String()})
	}
	return huma.NewError(p.Status, p.Detail, details...)
}
