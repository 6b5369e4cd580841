package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// The devices of the listing tests, evaluated at listNow.
const (
	lobby  = "SEP000000000001" // encrypted, string 1234, install, pending, LSC valid for a year
	front  = "SEP000000000002" // authenticated, null, none, None, LSC expired yesterday
	jdoe   = "CSFJDOE"         // non-secure, mic, delete, Upgrade Success, no LSC
	droid  = "BOTJDOE"         // authenticated, lsc, troubleshoot, LSC valid for 30 days
	admin  = "TCTADMIN"        // encrypted, string 987654, install, Upgrade Failed, no LSC
	day    = 24 * time.Hour
	allSEP = "SEP"
)

// listNow is the Query.Now of the listing tests.
var listNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// listDevices returns the listing tests' devices.
func listDevices() []device.Device {
	mk := func(name, desc string, p device.SecurityProfile, m device.AuthMode, as string,
		op device.Operation, status string, lsc *device.Certificate) device.Device {
		return device.Device{
			Name: name, Description: desc, SecurityProfile: p, AuthMode: m, AuthString: as,
			Operation: op, Key: device.RSA2048, Status: status, LSC: lsc,
			CreatedAt: t0, UpdatedAt: t0,
		}
	}
	return []device.Device{
		mk(lobby, "Lobby phone", device.Encrypted, device.AuthString, "1234",
			device.OpInstall, device.StatusPending, newCert("01", listNow.Add(365*day))),
		mk(front, "Front desk_50% off", device.Authenticated, device.AuthNull, "",
			device.OpNone, device.StatusNone, newCert("02", listNow.Add(-day))),
		mk(jdoe, "", device.NonSecure, device.AuthMIC, "",
			device.OpDelete, "Upgrade Success", nil),
		mk(droid, "lobby Android", device.Authenticated, device.AuthLSC, "",
			device.OpTroubleshoot, device.StatusPending, newCert("04", listNow.Add(30*day))),
		mk(admin, "Front desk phone", device.Encrypted, device.AuthString, "987654",
			device.OpInstall, "Upgrade Failed: Invalid MIC", nil),
	}
}

// filterCase is one ListDevices filter test: the names it must return, in
// name order.
type filterCase struct {
	name    string
	filters []device.Filter
	want    []string
}

// f is shorthand for a filter.
func f(field device.Field, m device.Match, v string) device.Filter {
	return device.Filter{Field: field, Match: m, Value: v}
}

// rfc returns t as an RFC 3339 filter value.
func rfc(t time.Time) string { return t.Format(time.RFC3339) }

var filterCases = []filterCase{
	{"none", nil, []string{droid, jdoe, lobby, front, admin}},

	{"name/begins-with-ignores-case", []device.Filter{f(device.FieldName, device.MatchBeginsWith, "sep")}, []string{lobby, front}},
	{"name/contains", []device.Filter{f(device.FieldName, device.MatchContains, "jDoE")}, []string{droid, jdoe}},
	{"name/ends-with", []device.Filter{f(device.FieldName, device.MatchEndsWith, "001")}, []string{lobby}},
	{"name/equals-ignores-case", []device.Filter{f(device.FieldName, device.MatchEquals, "csfjdoe")}, []string{jdoe}},
	{"name/equals-not-prefix", []device.Filter{f(device.FieldName, device.MatchEquals, "CSF")}, nil},
	{"name/is-empty", []device.Filter{f(device.FieldName, device.MatchEmpty, "")}, nil},
	{"name/is-not-empty", []device.Filter{f(device.FieldName, device.MatchNotEmpty, "")}, []string{droid, jdoe, lobby, front, admin}},

	{"description/begins-with", []device.Filter{f(device.FieldDescription, device.MatchBeginsWith, "FRONT")}, []string{front, admin}},
	{"description/contains", []device.Filter{f(device.FieldDescription, device.MatchContains, "LOBBY")}, []string{droid, lobby}},
	{"description/contains-underscore-literal", []device.Filter{f(device.FieldDescription, device.MatchContains, "_")}, []string{front}},
	{"description/contains-percent-literal", []device.Filter{f(device.FieldDescription, device.MatchContains, "%")}, []string{front}},
	{"description/contains-backslash", []device.Filter{f(device.FieldDescription, device.MatchContains, `\`)}, nil},
	{"description/contains-quote", []device.Filter{f(device.FieldDescription, device.MatchContains, `' OR ''='`)}, nil},
	{"description/ends-with", []device.Filter{f(device.FieldDescription, device.MatchEndsWith, "PHONE")}, []string{lobby, admin}},
	{"description/equals", []device.Filter{f(device.FieldDescription, device.MatchEquals, "lobby phone")}, []string{lobby}},
	{"description/is-empty", []device.Filter{f(device.FieldDescription, device.MatchEmpty, "")}, []string{jdoe}},
	{"description/is-not-empty", []device.Filter{f(device.FieldDescription, device.MatchNotEmpty, "")}, []string{droid, lobby, front, admin}},

	{"security-profile/equals", []device.Filter{f(device.FieldSecurityProfile, device.MatchEquals, "ENCRYPTED")}, []string{lobby, admin}},
	{"security-profile/begins-with", []device.Filter{f(device.FieldSecurityProfile, device.MatchBeginsWith, "non")}, []string{jdoe}},
	{"security-profile/contains", []device.Filter{f(device.FieldSecurityProfile, device.MatchContains, "crypt")}, []string{lobby, admin}},
	{"security-profile/ends-with", []device.Filter{f(device.FieldSecurityProfile, device.MatchEndsWith, "ated")}, []string{droid, front}},
	{"security-profile/is-empty", []device.Filter{f(device.FieldSecurityProfile, device.MatchEmpty, "")}, nil},
	{"security-profile/is-not-empty", []device.Filter{f(device.FieldSecurityProfile, device.MatchNotEmpty, "")}, []string{droid, jdoe, lobby, front, admin}},

	{"auth-mode/equals", []device.Filter{f(device.FieldAuthMode, device.MatchEquals, "MIC")}, []string{jdoe}},
	{"auth-mode/begins-with", []device.Filter{f(device.FieldAuthMode, device.MatchBeginsWith, "s")}, []string{lobby, admin}},
	{"auth-mode/contains", []device.Filter{f(device.FieldAuthMode, device.MatchContains, "u")}, []string{front}},
	{"auth-mode/ends-with", []device.Filter{f(device.FieldAuthMode, device.MatchEndsWith, "c")}, []string{droid, jdoe}},
	{"auth-mode/is-empty", []device.Filter{f(device.FieldAuthMode, device.MatchEmpty, "")}, nil},
	{"auth-mode/is-not-empty", []device.Filter{f(device.FieldAuthMode, device.MatchNotEmpty, "")}, []string{droid, jdoe, lobby, front, admin}},

	{"auth-string/equals", []device.Filter{f(device.FieldAuthString, device.MatchEquals, "1234")}, []string{lobby}},
	{"auth-string/begins-with", []device.Filter{f(device.FieldAuthString, device.MatchBeginsWith, "98")}, []string{admin}},
	{"auth-string/contains", []device.Filter{f(device.FieldAuthString, device.MatchContains, "4")}, []string{lobby, admin}},
	{"auth-string/ends-with", []device.Filter{f(device.FieldAuthString, device.MatchEndsWith, "34")}, []string{lobby}},
	{"auth-string/is-empty", []device.Filter{f(device.FieldAuthString, device.MatchEmpty, "")}, []string{droid, jdoe, front}},
	{"auth-string/is-not-empty", []device.Filter{f(device.FieldAuthString, device.MatchNotEmpty, "")}, []string{lobby, admin}},

	{"operation/equals", []device.Filter{f(device.FieldOperation, device.MatchEquals, "install")}, []string{lobby, admin}},
	{"operation/begins-with", []device.Filter{f(device.FieldOperation, device.MatchBeginsWith, "T")}, []string{droid}},
	{"operation/contains", []device.Filter{f(device.FieldOperation, device.MatchContains, "l")}, []string{droid, jdoe, lobby, admin}},
	{"operation/ends-with", []device.Filter{f(device.FieldOperation, device.MatchEndsWith, "e")}, []string{jdoe, front}},
	{"operation/is-empty", []device.Filter{f(device.FieldOperation, device.MatchEmpty, "")}, nil},
	{"operation/is-not-empty", []device.Filter{f(device.FieldOperation, device.MatchNotEmpty, "")}, []string{droid, jdoe, lobby, front, admin}},

	{"status/equals", []device.Filter{f(device.FieldStatus, device.MatchEquals, "operation pending")}, []string{droid, lobby}},
	{"status/begins-with", []device.Filter{f(device.FieldStatus, device.MatchBeginsWith, "upgrade")}, []string{jdoe, admin}},
	{"status/contains", []device.Filter{f(device.FieldStatus, device.MatchContains, "FAILED:")}, []string{admin}},
	{"status/ends-with", []device.Filter{f(device.FieldStatus, device.MatchEndsWith, "success")}, []string{jdoe}},
	{"status/is-empty", []device.Filter{f(device.FieldStatus, device.MatchEmpty, "")}, nil},
	{"status/is-not-empty", []device.Filter{f(device.FieldStatus, device.MatchNotEmpty, "")}, []string{droid, jdoe, lobby, front, admin}},

	{"lsc-status/none", []device.Filter{f(device.FieldLSCStatus, device.MatchEquals, device.LSCNone)}, []string{jdoe, admin}},
	{"lsc-status/valid", []device.Filter{f(device.FieldLSCStatus, device.MatchEquals, device.LSCValid)}, []string{droid, lobby}},
	{"lsc-status/expired", []device.Filter{f(device.FieldLSCStatus, device.MatchEquals, device.LSCExpired)}, []string{front}},

	{"lsc-expires/before", []device.Filter{f(device.FieldLSCExpires, device.MatchBefore, rfc(listNow.Add(60*day)))}, []string{droid, front}},
	{"lsc-expires/after", []device.Filter{f(device.FieldLSCExpires, device.MatchAfter, rfc(listNow))}, []string{droid, lobby}},
	{"lsc-expires/after-far", []device.Filter{f(device.FieldLSCExpires, device.MatchAfter, rfc(listNow.Add(60*day)))}, []string{lobby}},
	{"lsc-expires/before-all", []device.Filter{f(device.FieldLSCExpires, device.MatchBefore, rfc(listNow.Add(-30*day)))}, nil},
	{"lsc-expires/other-zone", []device.Filter{f(device.FieldLSCExpires, device.MatchBefore,
		listNow.Add(-day).Add(time.Second).In(time.FixedZone("", 5*3600)).Format(time.RFC3339))}, []string{front}},

	{"search-within/two-filters", []device.Filter{
		f(device.FieldName, device.MatchBeginsWith, allSEP),
		f(device.FieldLSCStatus, device.MatchEquals, device.LSCValid),
	}, []string{lobby}},
	{"search-within/three-filters", []device.Filter{
		f(device.FieldDescription, device.MatchContains, "desk"),
		f(device.FieldStatus, device.MatchBeginsWith, "upgrade"),
		f(device.FieldAuthString, device.MatchNotEmpty, ""),
	}, []string{admin}},
	{"search-within/same-field-twice", []device.Filter{
		f(device.FieldName, device.MatchContains, "JDOE"),
		f(device.FieldName, device.MatchBeginsWith, "BOT"),
	}, []string{droid}},
	{"search-within/contradiction", []device.Filter{
		f(device.FieldLSCStatus, device.MatchEquals, device.LSCNone),
		f(device.FieldLSCExpires, device.MatchAfter, rfc(listNow.Add(-1000*day))),
	}, nil},
}

// nameOrder is the listing devices sorted by name.
func nameOrder(ns ...string) []string {
	out := slices.Clone(ns)
	slices.Sort(out)
	return out
}

// runList covers ListDevices.
func runList(t *testing.T, open opener) {
	s := open.fresh(t)
	create(t, s, listDevices()...)

	t.Run("filter", func(t *testing.T) {
		for _, c := range filterCases {
			t.Run(c.name, func(t *testing.T) {
				page, err := s.ListDevices(t.Context(), device.Query{Filters: c.filters, Now: listNow})
				must(t, err)
				want := nameOrder(c.want...)
				if got := names(page.Devices); !slices.Equal(got, want) {
					t.Errorf("devices = %v, want %v", got, want)
				}
				if page.Total != len(want) {
					t.Errorf("Total = %d, want %d", page.Total, len(want))
				}
			})
		}
	})

	t.Run("round-trip", func(t *testing.T) {
		page, err := s.ListDevices(t.Context(), device.Query{Now: listNow})
		must(t, err)
		byName := map[string]device.Device{}
		for _, d := range listDevices() {
			byName[d.Name] = d
		}
		for _, d := range page.Devices {
			checkDevice(t, d, byName[d.Name])
		}
	})

	t.Run("sort", func(t *testing.T) {
		cases := []struct {
			name string
			sort device.Field
			desc bool
			want []string
		}{
			{"default-name", "", false, []string{droid, jdoe, lobby, front, admin}},
			{"name-asc", device.FieldName, false, []string{droid, jdoe, lobby, front, admin}},
			{"name-desc", device.FieldName, true, []string{admin, front, lobby, jdoe, droid}},
			{"default-desc", "", true, []string{admin, front, lobby, jdoe, droid}},
			{"security-profile-asc-then-name", device.FieldSecurityProfile, false, []string{droid, front, lobby, admin, jdoe}},
			{"security-profile-desc", device.FieldSecurityProfile, true, []string{jdoe, admin, lobby, front, droid}},
			{"operation-asc", device.FieldOperation, false, []string{jdoe, lobby, admin, front, droid}},
			{"auth-string-asc", device.FieldAuthString, false, []string{droid, jdoe, front, lobby, admin}},
			{"status-asc", device.FieldStatus, false, []string{front, droid, lobby, admin, jdoe}},
			{"lsc-expires-asc-no-lsc-last", device.FieldLSCExpires, false, []string{front, droid, lobby, jdoe, admin}},
			{"lsc-expires-desc-no-lsc-last", device.FieldLSCExpires, true, []string{lobby, droid, front, admin, jdoe}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				page, err := s.ListDevices(t.Context(), device.Query{Sort: c.sort, Desc: c.desc, Now: listNow})
				must(t, err)
				if got := names(page.Devices); !slices.Equal(got, c.want) {
					t.Errorf("order = %v, want %v", got, c.want)
				}
			})
		}
	})

	t.Run("paging", func(t *testing.T) {
		all := []string{droid, jdoe, lobby, front, admin}
		cases := []struct {
			name          string
			filters       []device.Filter
			offset, limit int
			want          []string
			total         int
		}{
			{"first-page", nil, 0, 2, all[:2], 5},
			{"second-page", nil, 2, 2, all[2:4], 5},
			{"last-partial-page", nil, 4, 2, all[4:], 5},
			{"past-the-end", nil, 10, 2, nil, 5},
			{"no-limit", nil, 0, 0, all, 5},
			{"negative-limit-is-none", nil, 1, -1, all[1:], 5},
			{"filtered-total", []device.Filter{f(device.FieldName, device.MatchBeginsWith, "SEP")}, 1, 1, []string{front}, 2},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				page, err := s.ListDevices(t.Context(), device.Query{Filters: c.filters, Offset: c.offset, Limit: c.limit, Now: listNow})
				must(t, err)
				if got := names(page.Devices); !slices.Equal(got, c.want) {
					t.Errorf("devices = %v, want %v", got, c.want)
				}
				if page.Total != c.total {
					t.Errorf("Total = %d, want %d", page.Total, c.total)
				}
			})
		}
	})

	t.Run("invalid-query", func(t *testing.T) {
		cases := []struct {
			name string
			q    device.Query
		}{
			{"unknown-field", device.Query{Filters: []device.Filter{f("colour", device.MatchEquals, "red")}}},
			{"sql-in-field", device.Query{Filters: []device.Filter{f("name; DROP TABLE devices", device.MatchEquals, "x")}}},
			{"text-before", device.Query{Filters: []device.Filter{f(device.FieldName, device.MatchBefore, "x")}}},
			{"lsc-status-contains", device.Query{Filters: []device.Filter{f(device.FieldLSCStatus, device.MatchContains, "valid")}}},
			{"lsc-status-value", device.Query{Filters: []device.Filter{f(device.FieldLSCStatus, device.MatchEquals, "shiny")}}},
			{"lsc-expires-not-rfc3339", device.Query{Filters: []device.Filter{f(device.FieldLSCExpires, device.MatchBefore, "2026-01-01")}}},
			{"lsc-expires-equals", device.Query{Filters: []device.Filter{f(device.FieldLSCExpires, device.MatchEquals, rfc(listNow))}}},
			{"unknown-sort", device.Query{Sort: "name desc"}},
			{"lsc-status-sort", device.Query{Sort: device.FieldLSCStatus}},
			{"negative-offset", device.Query{Offset: -1}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := s.ListDevices(t.Context(), c.q)
				wantKind(t, err, fault.ErrInvalid, "")
			})
		}
		if got := get(t, s, lobby); got.Name != lobby {
			t.Errorf("store damaged by invalid queries")
		}
	})

	t.Run("now-defaults-to-clock", func(t *testing.T) {
		s := open.fresh(t)
		old, future := newDevice("SEP0000000000AA"), newDevice("SEP0000000000BB")
		old.LSC = newCert("AA", time.Now().Add(-time.Hour))
		future.LSC = newCert("BB", time.Now().Add(time.Hour))
		create(t, s, old, future)
		for _, c := range []struct{ state, want string }{
			{device.LSCExpired, old.Name},
			{device.LSCValid, future.Name},
		} {
			page, err := s.ListDevices(t.Context(), device.Query{
				Filters: []device.Filter{f(device.FieldLSCStatus, device.MatchEquals, c.state)},
			})
			must(t, err)
			if got := names(page.Devices); !slices.Equal(got, []string{c.want}) {
				t.Errorf("lsc-status %s = %v, want [%s]", c.state, got, c.want)
			}
		}
	})

	t.Run("empty-store", func(t *testing.T) {
		s := open.fresh(t)
		page, err := s.ListDevices(t.Context(), device.Query{})
		must(t, err)
		if page.Total != 0 || len(page.Devices) != 0 {
			t.Errorf("page = %+v, want empty", page)
		}
	})
}
