package webui

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// searchField is a field of the Find Phone row, with its label.
type searchField struct {
	Field device.Field
	Label string
}

// findFields are the fields of "Find Phone where …", in CallManager's
// words.
var findFields = []searchField{
	{device.FieldName, "Device Name"},
	{device.FieldDescription, "Description"},
	{device.FieldLSCStatus, "LSC Status"},
	{device.FieldAuthString, "Authentication String"},
	{device.FieldSecurityProfile, "Security Profile"},
	{device.FieldStatus, "Operation Status"},
	{device.FieldLSCExpires, "LSC expires"},
	{device.FieldOperation, "Certificate Operation"},
	{device.FieldAuthMode, "Authentication Mode"},
}

// searchMatch is a comparison of the Find Phone row, with its label.
type searchMatch struct {
	Match device.Match
	Label string
}

var findMatches = []searchMatch{
	{device.MatchBeginsWith, "begins with"},
	{device.MatchContains, "contains"},
	{device.MatchEndsWith, "ends with"},
	{device.MatchEquals, "is exactly"},
	{device.MatchEmpty, "is empty"},
	{device.MatchNotEmpty, "is not empty"},
	{device.MatchBefore, "is before (LSC expires)"},
	{device.MatchAfter, "is after (LSC expires)"},
}

func fieldLabel(f device.Field) string {
	for _, sf := range findFields {
		if sf.Field == f {
			return sf.Label
		}
	}
	return string(f)
}

func matchLabel(m device.Match) string {
	for _, sm := range findMatches {
		if sm.Match == m {
			return strings.TrimSuffix(sm.Label, " (LSC expires)")
		}
	}
	return string(m)
}

// rowsPerPage are the page sizes offered; defaultRows is the first page's.
var rowsPerPage = []int{25, 50, 100, 250}

const (
	defaultRows = 50
	maxRows     = 1000
	// maxConditions bounds the conditions a search carries.
	maxConditions = 20
)

// search is the state of Find and List Phones that its links carry: the
// conditions (as device.Criteria.Where strings), sort and paging.
type search struct {
	Where []string
	Sort  string
	Desc  bool
	Rows  int
	Page  int
}

// parseSearch reads the carried state from a query string.
func parseSearch(q url.Values) search {
	s := search{Where: q["where"], Sort: q.Get("sort"), Desc: q.Get("desc") == "1", Rows: defaultRows, Page: 1}
	if n, err := strconv.Atoi(q.Get("rows")); err == nil && n > 0 {
		s.Rows = min(n, maxRows)
	}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		s.Page = n
	}
	return s
}

// check refuses a search with more conditions than a page carries.
func (s search) check() error {
	if len(s.Where) > maxConditions {
		return fault.InvalidField("where", "a search has at most %d conditions (this one has %d)", maxConditions, len(s.Where))
	}
	return nil
}

// values is the search as a query string.
func (s search) values() url.Values {
	v := url.Values{}
	for _, w := range s.Where {
		v.Add("where", w)
	}
	if s.Sort != "" {
		v.Set("sort", s.Sort)
	}
	if s.Desc {
		v.Set("desc", "1")
	}
	if s.Rows != defaultRows {
		v.Set("rows", strconv.Itoa(s.Rows))
	}
	if s.Page > 1 {
		v.Set("page", strconv.Itoa(s.Page))
	}
	return v
}

// href is path with the search's query string.
func (s search) href(path string) string {
	if q := s.values().Encode(); q != "" {
		return path + "?" + q
	}
	return path
}

// criteriaOnly is the search without sort and paging: what bulk and the
// report carry.
func (s search) criteriaOnly() search { return search{Where: s.Where, Rows: defaultRows, Page: 1} }

// criteria is the search as the device service takes it; all is every
// matching device (no paging).
func (s search) criteria(all bool) device.Criteria {
	c := device.Criteria{Where: s.Where, Sort: s.Sort, Desc: s.Desc}
	if !all {
		c.Limit, c.Offset = s.Rows, (s.Page-1)*s.Rows
	}
	return c
}

// condition turns a Find Phone row into a Where string, or "" when the row
// selects every phone (a value-taking match with no value, as CallManager's
// empty Find). A wrong row is an Invalid error naming the "value" field.
func condition(field, match, value string, now time.Time) (string, error) {
	f, m := device.Field(field), device.Match(match)
	value = strings.TrimSpace(value)
	known := false
	for _, sf := range findFields {
		known = known || sf.Field == f
	}
	if !known {
		return "", fault.InvalidField("field", "Find Phone where %q: not a field to search on", field)
	}
	takesValue := m != device.MatchEmpty && m != device.MatchNotEmpty
	if takesValue && value == "" {
		return "", nil
	}
	switch f {
	case device.FieldLSCStatus:
		switch m {
		case device.MatchEmpty, device.MatchNotEmpty, device.MatchBefore, device.MatchAfter:
			return "", fault.InvalidField("match", "LSC Status: use \"is exactly\" with none, valid or expired")
		}
		v := strings.ToLower(value)
		if v != device.LSCNone && v != device.LSCValid && v != device.LSCExpired {
			return "", fault.InvalidField("value", "LSC Status %q: want none, valid or expired", value)
		}
		return string(f) + ":" + string(device.MatchEquals) + ":" + v, nil
	case device.FieldLSCExpires:
		if m != device.MatchBefore && m != device.MatchAfter {
			return "", fault.InvalidField("match", "LSC expires: use \"is before\" or \"is after\" with a date")
		}
		t, err := parseWhen(value, now)
		if err != nil {
			return "", err
		}
		return string(f) + ":" + string(m) + ":" + t.UTC().Format(time.RFC3339), nil
	}
	switch m {
	case device.MatchBefore, device.MatchAfter:
		return "", fault.InvalidField("match", "%s: \"%s\" applies only to LSC expires", fieldLabel(f), matchLabel(m))
	case device.MatchEmpty, device.MatchNotEmpty:
		return string(f) + ":" + string(m), nil
	case device.MatchBeginsWith, device.MatchContains, device.MatchEndsWith, device.MatchEquals:
	default:
		return "", fault.InvalidField("match", "match %q: not a comparison", match)
	}
	if m == device.MatchEquals {
		// Exact matches on a choice accept the CallManager label.
		switch f {
		case device.FieldSecurityProfile:
			if p, err := device.ParseSecurityProfile(value); err == nil {
				value = string(p)
			}
		case device.FieldOperation:
			if o, err := device.ParseOperation(value); err == nil {
				value = string(o)
			}
		case device.FieldAuthMode:
			if a, err := device.ParseAuthMode(value); err == nil {
				value = string(a)
			}
		}
	}
	return string(f) + ":" + string(m) + ":" + value, nil
}

// parseWhen reads a date for LSC expires: a date, or a date and time, in
// now's zone (the page's), an RFC 3339 time, or a span from now such as
// 30d or 720h.
func parseWhen(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, now.Location()); err == nil {
			return t, nil
		}
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= -36500 && n <= 36500 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(d), nil
	}
	return time.Time{}, fault.InvalidField("value", "LSC expires %q: want a date (2027-03-31) or a date and time (2027-03-31 18:00) in %s, or a span from now such as 30d", v, now.Location())
}

// describeWhere is a Where string in words: "Device Name begins with
// SEP00"; a time (of LSC expires) is shown in loc, the page's zone.
func describeWhere(w string, loc *time.Location) string {
	parts := strings.SplitN(w, ":", 3)
	if len(parts) < 2 {
		return w
	}
	s := fieldLabel(device.Field(parts[0])) + " " + matchLabel(device.Match(parts[1]))
	if len(parts) == 3 {
		if t, err := time.Parse(time.RFC3339, parts[2]); err == nil && device.Field(parts[0]) == device.FieldLSCExpires {
			s += " " + t.In(loc).Format("2006-01-02 15:04 MST")
		} else {
			s += " " + strconv.Quote(parts[2])
		}
	}
	return s
}

// column is a sortable (or not) header of the phone table.
type column struct {
	Label    string
	Href     string // "" when not sortable
	AriaSort string // ascending, descending or ""
}

// conditionView is a carried condition with a link that drops it.
type conditionView struct {
	Text, RemoveHref string
}

// listRow is one phone of the table.
type listRow struct {
	device.Device
	LSCState   string
	LSCExpires time.Time
	StatusID   string
}

// listData is Find and List Phones' content.
type listData struct {
	Fields     []option
	Matches    []option
	Value      string
	Errors     formErrors
	Where      []string
	Conditions []conditionView
	Columns    []column
	Rows       []listRow
	Total      int
	First      int
	Last       int
	Page       int
	Pages      int
	PrevHref   string
	NextHref   string
	RowsChoice []option
	Sort       string
	Desc       bool
	RowsParam  int // rows per page when not the default, carried by the find form
	BulkHref   string
	ReportHref string
	Banners    []banner
}

// phoneList is Find and List Phones.
func (u *ui) phoneList(w http.ResponseWriter, r *http.Request, p account.Principal) {
	q := r.URL.Query()
	s := parseSearch(q)
	now := u.o.Devices.Now()
	errs := formErrors{}
	field, match, value := q.Get("field"), q.Get("match"), q.Get("value")
	if field == "" {
		field, match = string(device.FieldName), string(device.MatchBeginsWith)
	}
	status := http.StatusOK
	if q.Has("field") {
		cond, err := condition(field, match, value, now.In(u.loc))
		if err == nil && q.Has("within") && cond != "" && len(s.Where) >= maxConditions {
			err = fault.InvalidField("value", "a search has at most %d conditions", maxConditions)
		}
		if err == nil {
			if !q.Has("within") {
				s.Where = nil
			}
			if cond != "" {
				s.Where = append(s.Where, cond)
			}
			s.Page = 1
			http.Redirect(w, r, s.href("/phones"), http.StatusSeeOther)
			return
		}
		status = u.formError(errs, err)
	}
	d := listData{Value: value, Errors: errs, Where: s.Where, Sort: s.Sort, Desc: s.Desc}
	if s.Rows != defaultRows {
		d.RowsParam = s.Rows
	}
	for _, f := range findFields {
		d.Fields = append(d.Fields, option{Value: string(f.Field), Label: f.Label, Selected: string(f.Field) == field})
	}
	for _, m := range findMatches {
		d.Matches = append(d.Matches, option{Value: string(m.Match), Label: m.Label, Selected: string(m.Match) == match})
	}
	for _, n := range rowsPerPage {
		d.RowsChoice = append(d.RowsChoice, option{Value: strconv.Itoa(n), Label: strconv.Itoa(n), Selected: n == s.Rows})
	}
	for i, w := range s.Where {
		rest := s
		rest.Where = append(append([]string(nil), s.Where[:i]...), s.Where[i+1:]...)
		rest.Page = 1
		d.Conditions = append(d.Conditions, conditionView{Text: describeWhere(w, u.loc), RemoveHref: rest.href("/phones")})
	}
	d.Columns = u.columns(s)
	d.BulkHref = s.criteriaOnly().href("/bulk")
	d.ReportHref = s.criteriaOnly().href("/report.csv")

	err := s.check()
	var qry device.Query
	if err == nil {
		qry, err = s.criteria(false).Query(now)
	}
	if err == nil {
		var page device.Page
		page, err = u.o.Devices.Reader(p.SeesSecrets()).List(r.Context(), qry)
		if err == nil {
			d.Total = page.Total
			for _, dv := range page.Devices {
				row := listRow{Device: dv, LSCState: dv.LSCState(now), StatusID: "status-" + dv.Name}
				if dv.LSC != nil {
					row.LSCExpires = dv.LSC.NotAfter
				}
				d.Rows = append(d.Rows, row)
			}
		}
	}
	if err != nil {
		if fault.KindOf(err) != fault.Invalid {
			u.fail(w, r, p, err)
			return
		}
		// A hand-edited or stale link: say what is wrong with it.
		errs[""] = fault.ProblemOf(err).Detail
		status = http.StatusUnprocessableEntity
	}
	d.Page = s.Page
	d.Pages = max(1, (d.Total+s.Rows-1)/s.Rows)
	if len(d.Rows) > 0 {
		d.First = (s.Page-1)*s.Rows + 1
		d.Last = d.First + len(d.Rows) - 1
	}
	if s.Page > 1 {
		prev := s
		prev.Page--
		d.PrevHref = prev.href("/phones")
	}
	if s.Page < d.Pages {
		next := s
		next.Page++
		d.NextHref = next.href("/phones")
	}
	d.Banners = u.banners(r.Context())
	u.render(w, r, p, status, "phones.html", "Find and List Phones", "phones", d)
}

// columns are the table's headers; a click sorts by the column, a second
// click reverses.
func (u *ui) columns(s search) []column {
	cols := []struct {
		label string
		field device.Field
	}{
		{"Device Name", device.FieldName},
		{"Description", device.FieldDescription},
		{"Security Profile", device.FieldSecurityProfile},
		{"Authentication Mode", device.FieldAuthMode},
		{"Authentication String", device.FieldAuthString},
		{"Certificate Operation", device.FieldOperation},
		{"Operation Status", device.FieldStatus},
		{"LSC Status", ""},
		{"LSC expires", device.FieldLSCExpires},
	}
	cur := s.Sort
	if cur == "" {
		cur = string(device.FieldName)
	}
	out := make([]column, 0, len(cols))
	for _, c := range cols {
		col := column{Label: c.label}
		if c.field != "" {
			ns := s
			ns.Sort, ns.Desc, ns.Page = string(c.field), false, 1
			if string(c.field) == cur {
				ns.Desc = !s.Desc
				col.AriaSort = "ascending"
				if s.Desc {
					col.AriaSort = "descending"
				}
			}
			if ns.Sort == string(device.FieldName) {
				ns.Sort = ""
			}
			col.Href = ns.href("/phones")
		}
		out = append(out, col)
	}
	return out
}

// countPhones is how many phones a search matches, counted for p's
// audience: a viewer may not count by authentication string.
func (u *ui) countPhones(r *http.Request, p account.Principal, s search) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	q, err := s.criteria(false).Query(u.o.Devices.Now())
	if err != nil {
		return 0, err
	}
	return u.o.Devices.Reader(p.SeesSecrets()).Count(r.Context(), q)
}

// searchText describes the conditions of a search in words, times in loc.
func searchText(s search, loc *time.Location) string {
	if len(s.Where) == 0 {
		return "every phone"
	}
	parts := make([]string, len(s.Where))
	for i, w := range s.Where {
		parts[i] = describeWhere(w, loc)
	}
	return fmt.Sprintf("phones where %s", strings.Join(parts, " and "))
}
