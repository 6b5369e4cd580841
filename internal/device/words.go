package device

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// fieldLabels are the fields of Find Phone in CallManager's words.
var fieldLabels = map[Field]string{
	FieldName:            "Device Name",
	FieldDescription:     "Description",
	FieldSecurityProfile: "Security Profile",
	FieldAuthMode:        "Authentication Mode",
	FieldAuthString:      "Authentication String",
	FieldOperation:       "Certificate Operation",
	FieldStatus:          "Operation Status",
	FieldLSCStatus:       "LSC Status",
	FieldLSCExpires:      "LSC expires",
}

// Label returns the field as an administrator reads it ("Device Name"),
// or the field itself when it is unknown.
func (f Field) Label() string {
	if l, ok := fieldLabels[f]; ok {
		return l
	}
	return string(f)
}

// matchLabels are the comparisons of Find Phone in words.
var matchLabels = map[Match]string{
	MatchBeginsWith: "begins with",
	MatchContains:   "contains",
	MatchEndsWith:   "ends with",
	MatchEquals:     "is",
	MatchEmpty:      "is empty",
	MatchNotEmpty:   "is not empty",
	MatchBefore:     "before",
	MatchAfter:      "after",
}

// Label returns the comparison in words ("begins with"), or the match
// itself when it is unknown.
func (m Match) Label() string {
	if l, ok := matchLabels[m]; ok {
		return l
	}
	return string(m)
}

// condition is one condition of a search in words: "Device Name begins
// with "SEP00"", "Certificate Operation is No Pending Operation". A value
// with a label of its own (an operation, a mode, a profile) is shown by
// its label; an authentication string by its length only; other text
// quoted.
func condition(f Field, m Match, v string) string {
	switch {
	case f == FieldLSCExpires && m == MatchEmpty:
		return "no LSC on record"
	case f == FieldLSCExpires && m == MatchNotEmpty:
		return "an LSC on record"
	case m == MatchEmpty || m == MatchNotEmpty:
		return f.Label() + " " + m.Label()
	}
	value := strconv.Quote(v)
	switch f {
	case FieldAuthString:
		value = maskSecret(v)
	case FieldOperation:
		if o, err := ParseOperation(v); err == nil && m == MatchEquals {
			value = o.Label()
		}
	case FieldAuthMode:
		if a, err := ParseAuthMode(v); err == nil && m == MatchEquals {
			value = a.Label()
		}
	case FieldSecurityProfile:
		if p, err := ParseSecurityProfile(v); err == nil && m == MatchEquals {
			value = p.Label()
		}
	case FieldLSCStatus, FieldLSCExpires:
		value = v
	}
	return f.Label() + " " + m.Label() + " " + value
}

// String returns the criteria in words, as a campaign records its search:
// `Device Name begins with "SEP00" and Certificate Operation is No
// Pending Operation`, or "all phones" when there is none. An
// authentication string searched for is shown by its length only. A
// condition it cannot read is shown as given (its secret masked).
func (c Criteria) String() string {
	var parts []string
	add := func(f Field, m Match, v string) { parts = append(parts, condition(f, m, v)) }
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
		add(FieldSecurityProfile, MatchEquals, c.SecurityProfile)
	}
	if c.LSCStatus != "" {
		add(FieldLSCStatus, MatchEquals, strings.ToLower(c.LSCStatus))
	}
	if c.Operation != "" {
		add(FieldOperation, MatchEquals, c.Operation)
	}
	if c.Status != "" {
		add(FieldStatus, MatchContains, c.Status)
	}
	if c.ExpiresBefore != "" {
		add(FieldLSCExpires, MatchBefore, c.ExpiresBefore)
	}
	for _, w := range c.Where {
		parts = append(parts, whereWords(w))
	}
	if len(parts) == 0 {
		return "all phones"
	}
	text := strings.Join(parts, " and ")
	if utf8.RuneCountInString(text) > maxSearchText {
		r := []rune(text)
		text = string(r[:maxSearchText]) + "…"
	}
	return text
}

// whereWords is one FIELD:MATCH[:VALUE] condition in words.
func whereWords(w string) string {
	parts := strings.SplitN(w, ":", 3)
	if len(parts) < 2 {
		return strconv.Quote(w)
	}
	f, m := Field(parts[0]), Match(parts[1])
	_, knownField := fieldLabels[f]
	_, knownMatch := matchLabels[m]
	if !knownField || !knownMatch {
		if f == FieldAuthString && len(parts) == 3 {
			w = parts[0] + ":" + parts[1] + ":" + maskSecret(parts[2])
		}
		return strconv.Quote(w)
	}
	v := ""
	if len(parts) == 3 {
		v = parts[2]
	}
	return condition(f, m, v)
}
