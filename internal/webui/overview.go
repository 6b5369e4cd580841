package webui

import (
	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/overview"
)

// composer returns the composition the phone page, the report and the
// dashboard render, over the UI's services; nil without a device service.
func composer(o Options, u *ui) *overview.Composer {
	if o.Devices == nil {
		return nil
	}
	oo := overview.Options{Clock: o.Devices.Now, Records: o.Devices, Phones: o.Phones, Servers: o.Servers, Logger: u.log}
	// A nil interface converts to a nil interface: a source the UI does
	// not have stays out of the composition.
	oo.Issued, oo.Fleet, oo.Activation = o.Certificates, o.Campaigns, o.System
	if o.Windows != nil {
		oo.Windows = func() overview.Windows { return o.Windows() }
	}
	return overview.New(oo)
}

// audience is the device reader of p: what it reads, a viewer's
// authentication strings blanked.
func (u *ui) audience(p account.Principal) device.Reader { return u.o.Devices.Reader(p.SeesSecrets()) }
