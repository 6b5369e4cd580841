package device

import (
	"context"

	"github.com/capf-server/capf/internal/fault"
)

// Reader is the read side of the Service for one audience. An
// authentication string is a credential: whoever has it can enrol a phone
// as the device. An audience that may not see secrets (the viewer role)
// gets every string blanked and may neither filter nor sort on the string,
// since "begins with" answers would give a string away digit by digit.
type Reader struct {
	s    *Service
	hide bool
}

// Reader returns the read side for an audience that may (seeSecrets) or
// may not see authentication strings.
func (s *Service) Reader(seeSecrets bool) Reader { return Reader{s: s, hide: !seeSecrets} }

// UsesAuthString reports whether q filters or sorts on the authentication
// string.
func (q Query) UsesAuthString() bool {
	if q.Sort == FieldAuthString {
		return true
	}
	for _, f := range q.Filters {
		if f.Field == FieldAuthString {
			return true
		}
	}
	return false
}

// errSecretSearch refuses a search by the string to an audience that may
// not see it.
var errSecretSearch = fault.New(fault.Forbidden, "searching or sorting by authentication string needs the admin role")

// List is Service.List for the audience.
func (r Reader) List(ctx context.Context, q Query) (Page, error) {
	if r.hide && q.UsesAuthString() {
		return Page{}, errSecretSearch
	}
	p, err := r.s.List(ctx, q)
	if err != nil {
		return Page{}, err
	}
	r.redact(p.Devices)
	return p, nil
}

// Count is how many devices q matches (its Limit and Offset aside), under
// the same rule as List: an audience that may not see secrets may not
// count by the string either, since a count of 1 or 0 for "auth-string
// equals N" gives the string away as surely as the list would.
func (r Reader) Count(ctx context.Context, q Query) (int, error) {
	q.Limit, q.Offset = 1, 0
	p, err := r.List(ctx, q)
	if err != nil {
		return 0, err
	}
	return p.Total, nil
}

// Get is Service.Get for the audience.
func (r Reader) Get(ctx context.Context, name string) (Device, error) {
	d, err := r.s.Get(ctx, name)
	if err != nil {
		return Device{}, err
	}
	if r.hide {
		d.AuthString = ""
	}
	return d, nil
}

// Dashboard is Service.Dashboard for the audience.
func (r Reader) Dashboard(ctx context.Context) (Dashboard, error) {
	d, err := r.s.Dashboard(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	r.redact(d.Expiring)
	r.redact(d.InProgress)
	return d, nil
}

// Redact blanks the strings of ds when the audience may not see them.
func (r Reader) Redact(ds []Device) { r.redact(ds) }

func (r Reader) redact(ds []Device) {
	if !r.hide {
		return
	}
	for i := range ds {
		ds[i].AuthString = ""
	}
}
