package overview

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/system"
)

// Audience reads devices for one audience; device.Reader implements it.
// An audience that may not see authentication strings gets them blanked
// by Get, List and Redact, and is refused a search by string.
type Audience interface {
	Get(ctx context.Context, name string) (device.Device, error)
	List(ctx context.Context, q device.Query) (device.Page, error)
	// Redact blanks the strings of ds for an audience that may not see
	// them.
	Redact(ds []device.Device)
}

// Records reads what the sessions and administrators recorded about a
// device; none of it is secret. *device.Service implements it.
type Records interface {
	History(ctx context.Context, name string, limit int) ([]device.Attempt, error)
	Fetched(ctx context.Context, name string) ([]device.FetchedCertificate, error)
	LastReset(ctx context.Context, name string) (device.Reset, error)
}

// Issued lists the LSCs issued to a device; *lsc.Service implements it.
type Issued interface {
	List(ctx context.Context, q lsc.Query) ([]lsc.Record, error)
}

// Fleet gives the overview of the fleet; *device.Service implements it.
// Its lists carry authentication strings: the Composer redacts them for
// the audience.
type Fleet interface {
	Dashboard(ctx context.Context) (device.Dashboard, error)
}

// Activation says whether the CAPF service is active; *system.Service
// implements it.
type Activation interface {
	Activation(ctx context.Context) (system.Activation, error)
}

// Windows says when the maintenance windows are open, as the phone
// sessions see them.
type Windows interface {
	Open(t time.Time) bool
	NextOpen(t time.Time) time.Time
}

// Options are the sources a Composer reads. Clock and Records are
// required; a nil optional source leaves its part out.
type Options struct {
	// Clock is the service's clock (device.Service.Now): LSC states and
	// windows are evaluated at one reading of it per composition.
	Clock   func() time.Time
	Records Records
	// Issued lists the LSCs of a phone's detail; nil: Detail.Inventory
	// is false and Detail.Issued empty.
	Issued Issued
	// Phones is the address phones reach the service at, for the
	// configuration snippet; nil: no snippet.
	Phones func() (host, port string)
	// Servers is the fleet parameter capf_servers in force: the capfList
	// of the snippet when it lists any (capflist.Resolve); nil or empty:
	// Phones alone.
	Servers func() []string
	// Fleet gives the dashboard; nil: Dashboard is Unavailable.
	Fleet Fleet
	// Activation and Windows give the notices; nil: the service counts as
	// active, the windows as always open.
	Activation Activation
	Windows    func() Windows
	// Logger takes the failures a notice cannot show; discarded when nil.
	Logger *slog.Logger
}

// Composer composes details, reports and the dashboard from its sources.
// It is safe for concurrent use.
type Composer struct {
	o   Options
	log *slog.Logger
}

// New returns a Composer over o's sources; o.Clock and o.Records must be
// set.
func New(o Options) *Composer {
	if o.Clock == nil || o.Records == nil {
		panic("overview: New needs a Clock and Records")
	}
	c := &Composer{o: o, log: o.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Now is a reading of the Composer's clock.
func (c *Composer) Now() time.Time { return c.o.Clock() }

// IssuedListed bounds the LSCs a phone's detail lists (the newest).
const IssuedListed = 20

// Detail is everything known about one phone, as its page, `capf device
// show` and GET /devices/{name} show it.
type Detail struct {
	Device device.Device
	// At is the clock reading LSCState (and any other state of the
	// detail) was evaluated at.
	At       time.Time
	LSCState string
	// History is the latest attempts, newest first.
	History []device.Attempt
	// Fetched are the certificates Troubleshoot fetched from the phone.
	Fetched []device.FetchedCertificate
	// LastReset is the phone's latest reset; zero when none.
	LastReset device.Reset
	// Inventory says Issued was read: the LSCs issued to the phone, newest
	// first, at most IssuedListed.
	Inventory bool
	Issued    []lsc.Record
	// Snippet is the phone's configuration snippet (device.PhoneConfig)
	// when the Composer knows where phones reach the service;
	// SnippetError says why there is none when it could not be made.
	Snippet      string
	SnippetError error
	// Servers are the CAPF servers the snippet's capfList names, in the
	// order phones try them.
	Servers []capflist.Server
}

// Detail composes the detail of the phone called name, read through a
// (whose redaction applies to it), with at most history attempts (0: all).
// An unknown name is the audience's NotFound error, unwrapped.
func (c *Composer) Detail(ctx context.Context, a Audience, name string, history int) (Detail, error) {
	d, err := a.Get(ctx, name)
	if err != nil {
		return Detail{}, err
	}
	return c.DetailOf(ctx, d, history)
}

// DetailOf composes the detail of d, a device the caller already read for
// its audience (a form shown again after a refused save, say).
func (c *Composer) DetailOf(ctx context.Context, d device.Device, history int) (Detail, error) {
	now := c.o.Clock()
	v := Detail{Device: d, At: now, LSCState: d.LSCState(now)}
	var err error
	if v.History, err = c.o.Records.History(ctx, d.Name, history); err != nil {
		return Detail{}, fmt.Errorf("detail of %s: history: %w", d.Name, err)
	}
	if v.Fetched, err = c.o.Records.Fetched(ctx, d.Name); err != nil {
		return Detail{}, fmt.Errorf("detail of %s: Troubleshoot certificates: %w", d.Name, err)
	}
	if v.LastReset, err = c.o.Records.LastReset(ctx, d.Name); err != nil {
		return Detail{}, fmt.Errorf("detail of %s: latest reset: %w", d.Name, err)
	}
	if c.o.Issued != nil {
		if v.Issued, err = c.o.Issued.List(ctx, lsc.Query{Device: d.Name, Limit: IssuedListed}); err != nil {
			return Detail{}, fmt.Errorf("detail of %s: issued LSCs: %w", d.Name, err)
		}
		v.Inventory = true
	}
	if c.o.Phones != nil {
		v.Servers, v.Snippet, v.SnippetError = c.snippet(d)
	}
	return v, nil
}

// snippet returns the servers of d's configuration snippet and the
// snippet (see PhoneSnippet).
func (c *Composer) snippet(d device.Device) ([]capflist.Server, string, error) {
	var entries []string
	if c.o.Servers != nil {
		entries = c.o.Servers()
	}
	host, port := c.o.Phones()
	return PhoneSnippet(d, entries, host, port)
}

// PhoneSnippet returns d's configuration snippet (device.PhoneConfig) and
// the servers its capfList names: the entries of capf_servers when there
// are any, else host and port, where this node listens for phones (the
// rule is capflist.Resolve's). A list that does not resolve is Invalid,
// naming capf_servers or this node's address.
func PhoneSnippet(d device.Device, capfServers []string, host, port string) ([]capflist.Server, string, error) {
	servers, err := capflist.Resolve(capfServers, host, port)
	if err != nil && len(capfServers) > 0 {
		return nil, "", fault.Invalidf("capf_servers: %s", fault.Message(err))
	}
	if err != nil {
		return nil, "", fault.Invalidf("the address phones reach this node at: %s", fault.Message(err))
	}
	snippet, err := device.PhoneConfig(d, servers)
	if err != nil {
		return nil, "", err
	}
	return servers, snippet, nil
}

// Report is the CAPF report's content: the devices a search matched, in
// its order, and the clock reading their LSC states are evaluated at.
type Report struct {
	Devices []device.Device
	At      time.Time
}

// Report composes the report of the devices q matches, read through a.
// A q without a clock reading is evaluated at the Composer's clock.
func (c *Composer) Report(ctx context.Context, a Audience, q device.Query) (Report, error) {
	if q.Now.IsZero() {
		q.Now = c.o.Clock()
	}
	page, err := a.List(ctx, q)
	if err != nil {
		return Report{}, err
	}
	return Report{Devices: page.Devices, At: q.Now}, nil
}

// Dashboard is the overview of the fleet with the notices about the
// whole service.
type Dashboard struct {
	device.Dashboard
	// At is the clock reading the notices (and the LSC states of the
	// lists) are evaluated at.
	At      time.Time
	Notices []Notice
}

// errNoFleet is the error of a Composer without a Fleet.
var errNoFleet = fault.New(fault.Unavailable, "the dashboard is not available on this server")

// Dashboard composes the fleet overview, its lists redacted for a, with
// the notices.
func (c *Composer) Dashboard(ctx context.Context, a Audience) (Dashboard, error) {
	if c.o.Fleet == nil {
		return Dashboard{}, errNoFleet
	}
	d, err := c.o.Fleet.Dashboard(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	a.Redact(d.Expiring)
	a.Redact(d.InProgress)
	now := c.o.Clock()
	return Dashboard{Dashboard: d, At: now, Notices: c.notices(ctx, now)}, nil
}
