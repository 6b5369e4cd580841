package device

import (
	"slices"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// Criteria is a Find Phone search as an administrator states it, in any
// edge's terms (CLI flags, API query parameters, a web form): each set
// field is one criterion, and every criterion must hold. Where adds
// "FIELD:MATCH:VALUE" conditions (FIELD:MATCH for is-empty and
// is-not-empty): the search within results.
type Criteria struct {
	Name            string // begins with
	Description     string // contains
	AuthString      string // is exactly
	SecurityProfile string // is (name or CallManager label)
	LSCStatus       string // none, valid, expired or revoked
	Operation       string // is (name or CallManager label)
	Status          string // Operation Status contains
	ExpiresBefore   string // LSC expires before: an RFC 3339 time, or a duration from now such as 720h
	Where           []string
	Sort            string // a field of SortFields; "" for the name
	Desc            bool
	Limit, Offset   int
}

// SortFields are the fields a Find Phone result can be sorted by.
var SortFields = []Field{
	FieldName, FieldDescription, FieldSecurityProfile, FieldAuthMode,
	FieldAuthString, FieldOperation, FieldStatus, FieldLSCExpires,
}

// FieldList lists fields as "a, b, c", for messages and help.
func FieldList(fs []Field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// Query turns the criteria into a device query evaluated at now; a
// criterion that does not parse is an Invalid error that names it.
func (c Criteria) Query(now time.Time) (Query, error) {
	sort := Field(c.Sort)
	if sort == "" {
		sort = FieldName
	}
	q := Query{Sort: sort, Desc: c.Desc, Limit: c.Limit, Offset: c.Offset, Now: now}
	add := func(field Field, m Match, v string) {
		q.Filters = append(q.Filters, Filter{Field: field, Match: m, Value: v})
	}
	if c.Name != "" {
		add(FieldName, MatchBeginsWith, c.Name)
	}
	if c.Description != "" {
		add(FieldDescription, MatchContains, c.Description)
	}
	if c.AuthString != "" {
		add(FieldAuthString, MatchEquals, c.AuthString)
	}
	if c.SecurityProfile != "" {
		p, err := ParseSecurityProfile(c.SecurityProfile)
		if err != nil {
			return q, err
		}
		add(FieldSecurityProfile, MatchEquals, string(p))
	}
	if c.LSCStatus != "" {
		add(FieldLSCStatus, MatchEquals, strings.ToLower(c.LSCStatus))
	}
	if c.Operation != "" {
		o, err := ParseOperation(c.Operation)
		if err != nil {
			return q, err
		}
		add(FieldOperation, MatchEquals, string(o))
	}
	if c.Status != "" {
		add(FieldStatus, MatchContains, c.Status)
	}
	if c.ExpiresBefore != "" {
		t, err := time.Parse(time.RFC3339, c.ExpiresBefore)
		if err != nil {
			d, derr := time.ParseDuration(c.ExpiresBefore)
			if derr != nil {
				return q, fault.InvalidField("expires_before", "expires-before %q: want an RFC 3339 time or a duration like 720h", c.ExpiresBefore)
			}
			t = now.Add(d)
		}
		add(FieldLSCExpires, MatchBefore, t.UTC().Format(time.RFC3339))
	}
	for _, w := range c.Where {
		parts := strings.SplitN(w, ":", 3)
		if len(parts) < 2 {
			return q, fault.InvalidField("where", "where %q: want FIELD:MATCH:VALUE", w)
		}
		m := Match(parts[1])
		takesValue := m != MatchEmpty && m != MatchNotEmpty
		switch {
		case takesValue && len(parts) < 3:
			return q, fault.InvalidField("where", "where %q: match %s needs a value: want FIELD:%s:VALUE", w, m, m)
		case !takesValue && len(parts) == 3:
			return q, fault.InvalidField("where", "where %q: match %s takes no value: want FIELD:%s", w, m, m)
		}
		v := ""
		if len(parts) == 3 {
			v = parts[2]
		}
		add(Field(parts[0]), m, v)
	}
	if !slices.Contains(SortFields, q.Sort) {
		return q, fault.InvalidField("sort", "sort %q: want one of %s", c.Sort, FieldList(SortFields))
	}
	return q, q.Validate()
}
