package api

import (
	"time"

	"context"

	"github.com/capf-server/capf/internal/overview"
	"github.com/capf-server/capf/internal/view"
)

// composer returns the composition a device's detail, the report and the
// dashboard render, over the API's services; nil without a device
// service. The API's detail has neither the issued LSCs (GET
// /certificates lists them) nor the snippet (GET
// /devices/{name}/phone-config), so the composer reads neither.
func composer(o Options, s *server) *overview.Composer {
	if o.Devices == nil {
		return nil
	}
	oo := overview.Options{Clock: o.Devices.Now, Records: o.Devices, Logger: s.log}
	// A nil interface converts to a nil interface: a source the API does
	// not have stays out of the composition.
	oo.Fleet, oo.Activation = o.Campaigns, o.System
	if o.Windows != nil {
		oo.Windows = func() overview.Windows { return o.Windows() }
	}
	return overview.New(oo)
}

// notices is the JSON form of the dashboard's notices.
func notices(ns []overview.Notice) []view.Notice {
	out := make([]view.Notice, 0, len(ns))
	for _, n := range ns {
		v := view.Notice{Kind: string(n.Kind), Message: n.Text(time.UTC)}
		if !n.NextOpen.IsZero() {
			t := n.NextOpen.In(time.UTC)
			v.NextOpen = &t
		}
		out = append(out, v)
	}
	return out
}

// dashboardOf composes the dashboard for the audience of ctx's principal.
func (s *server) dashboardOf(ctx context.Context) (view.Dashboard, error) {
	d, err := s.compose.Dashboard(ctx, s.reader(ctx))
	if err != nil {
		return view.Dashboard{}, err
	}
	v := view.DashboardOf(d.Dashboard, d.At)
	v.Notices = notices(d.Notices)
	return v, nil
}
