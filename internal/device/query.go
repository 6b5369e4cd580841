package device

import (
	"time"

	"github.com/capf-server/capf/internal/fault"
)

var textFields = map[Field]bool{
	FieldName: true, FieldDescription: true, FieldSecurityProfile: true, FieldAuthMode: true,
	FieldAuthString: true, FieldOperation: true, FieldStatus: true,
}

var textMatches = map[Match]bool{
	MatchBeginsWith: true, MatchContains: true, MatchEndsWith: true,
	MatchEquals: true, MatchEmpty: true, MatchNotEmpty: true,
}

// Validate checks every filter and the sort field, so that a store only
// sees queries it can run. LSC expiry values must be RFC 3339 times.
func (q Query) Validate() error {
	for _, f := range q.Filters {
		switch {
		case textFields[f.Field]:
			if !textMatches[f.Match] {
				return fault.Invalidf("filter on %s: match %q: want begins-with, contains, ends-with, equals, is-empty or is-not-empty", f.Field, f.Match)
			}
		case f.Field == FieldLSCStatus:
			if f.Match != MatchEquals {
				return fault.Invalidf("filter on %s: only equals applies", f.Field)
			}
			if f.Value != LSCNone && f.Value != LSCValid && f.Value != LSCExpired && f.Value != LSCRevoked {
				return fault.Invalidf("filter on %s: value %q: want none, valid, expired or revoked", f.Field, f.Value)
			}
		case f.Field == FieldLSCExpires:
			if f.Match == MatchEmpty || f.Match == MatchNotEmpty {
				break // no LSC on record, an LSC on record
			}
			if f.Match != MatchBefore && f.Match != MatchAfter {
				return fault.Invalidf("filter on %s: match %q: want before, after, is-empty or is-not-empty", f.Field, f.Match)
			}
			if _, err := time.Parse(time.RFC3339, f.Value); err != nil {
				return fault.Invalidf("filter on %s: value %q is not an RFC 3339 time", f.Field, f.Value)
			}
		default:
			return fault.Invalidf("filter: unknown field %q", f.Field)
		}
	}
	switch q.Sort {
	case "", FieldLSCExpires:
	default:
		if !textFields[q.Sort] {
			return fault.Invalidf("sort: unknown field %q", q.Sort)
		}
	}
	if q.Offset < 0 {
		return fault.Invalidf("offset %d is negative", q.Offset)
	}
	return nil
}
