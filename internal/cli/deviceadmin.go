package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/capf-server/capf/internal/apiclient"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/overview"
	"github.com/capf-server/capf/internal/report"
	"github.com/capf-server/capf/internal/view"
)

// deviceAdmin is what the device, report, audit and campaign commands do,
// in the views they print: on the local data directory (localAdmin) or on
// a remote server through its API (remoteAdmin, with --server). Both give
// the same views, so the commands print the same bytes either way.
type deviceAdmin interface {
	AddDevice(ctx context.Context, name string, c device.Change) (view.Device, error)
	ChangeDevice(ctx context.Context, name string, c device.Change) (view.Device, error)
	ShowDevice(ctx context.Context, name string, history int) (view.DeviceDetail, error)
	RemoveDevice(ctx context.Context, name string) error
	// FindDevices runs a Find Phone search; the criteria are valid (the
	// command checked them with listFlags.query).
	FindDevices(ctx context.Context, c device.Criteria) (view.DeviceList, error)
	// Import applies a CAPF import file, all or nothing; an error about
	// the file's content begins with its name.
	Import(ctx context.Context, name string, csv io.Reader) (device.ImportCounts, error)
	// Report writes the CAPF report of the devices c matches.
	Report(ctx context.Context, w io.Writer, c device.Criteria) error
	Audit(ctx context.Context, q device.AuditQuery) ([]view.AuditEvent, error)
	// ResetDevice resets one phone; the outcome is returned with the
	// error of a failed notification.
	ResetDevice(ctx context.Context, name string) (view.Reset, error)
	// ResetDevices resets every phone the criteria match (valid criteria).
	ResetDevices(ctx context.Context, c device.Criteria) (view.BulkReset, error)
	// Campaigns returns the bulk operations, newest first (limit 0: all
	// locally, the API's most through a server).
	Campaigns(ctx context.Context, limit int) ([]device.Campaign, error)
	// Campaign returns where the campaign id (a positive number) stands.
	Campaign(ctx context.Context, id int64) (device.CampaignProgress, error)
	// CancelCampaign cancels the campaign id (a positive number).
	CancelCampaign(ctx context.Context, id int64) (device.CampaignCancel, error)
}

// deviceAdmin returns the deviceAdmin a command works through and a
// function that releases it: remote when --server (or CAPF_SERVER) names a
// server, else the data directory, opened with mode for each call.
func (g *globals) deviceAdmin(mode access) (deviceAdmin, func(), error) {
	if g.remote.server == "" {
		return &localAdmin{g: g, mode: mode}, func() {}, nil
	}
	c, err := g.apiClient()
	if err != nil {
		return nil, nil, err
	}
	return remoteAdmin{c}, c.Close, nil
}

// localAdmin works on the data directory through device.Service, opening
// the store for each call.
type localAdmin struct {
	g    *globals
	mode access
}

func (l *localAdmin) service(ctx context.Context) (*device.Service, func(), error) {
	return l.g.openService(ctx, l.mode)
}

func (l *localAdmin) AddDevice(ctx context.Context, name string, c device.Change) (view.Device, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return view.Device{}, err
	}
	defer done()
	d, err := svc.Add(ctx, l.g.actor(), newDevice(name, c), c.GenerateString)
	if err != nil {
		return view.Device{}, err
	}
	return view.DeviceOf(d, svc.Now()), nil
}

func (l *localAdmin) ChangeDevice(ctx context.Context, name string, c device.Change) (view.Device, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return view.Device{}, err
	}
	defer done()
	d, err := svc.Change(ctx, l.g.actor(), name, c)
	if err != nil {
		return view.Device{}, err
	}
	return view.DeviceOf(d, svc.Now()), nil
}

func (l *localAdmin) ShowDevice(ctx context.Context, name string, history int) (view.DeviceDetail, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return view.DeviceDetail{}, err
	}
	defer done()
	d, err := localComposer(svc).Detail(ctx, svc.Reader(true), name, history)
	if err != nil {
		return view.DeviceDetail{}, err
	}
	return view.DetailOf(d.Device, d.At, d.History, d.Fetched, d.LastReset), nil
}

// localComposer is the composition of details and reports over svc, as
// the server's API composes them: the data directory's administrator sees
// every string.
func localComposer(svc *device.Service) *overview.Composer {
	return overview.New(overview.Options{Clock: svc.Now, Records: svc})
}

func (l *localAdmin) RemoveDevice(ctx context.Context, name string) error {
	svc, done, err := l.service(ctx)
	if err != nil {
		return err
	}
	defer done()
	return svc.Remove(ctx, l.g.actor(), name)
}

// find runs the search c at the service's clock reading.
func find(ctx context.Context, svc *device.Service, c device.Criteria) (device.Page, error) {
	q, err := c.Query(svc.Now())
	if err != nil {
		return device.Page{}, err
	}
	return svc.List(ctx, q)
}

func (l *localAdmin) FindDevices(ctx context.Context, c device.Criteria) (view.DeviceList, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return view.DeviceList{}, err
	}
	defer done()
	page, err := find(ctx, svc, c)
	if err != nil {
		return view.DeviceList{}, err
	}
	return view.DeviceList{Total: page.Total, Devices: view.Devices(page.Devices, svc.Now())}, nil
}

// Import parses the file before it opens the store, so a bad file is
// reported the same whatever the state of the data directory.
func (l *localAdmin) Import(ctx context.Context, name string, csv io.Reader) (device.ImportCounts, error) {
	rows, err := report.ParseImport(csv)
	if err != nil {
		return device.ImportCounts{}, inFile(name, err)
	}
	svc, done, err := l.service(ctx)
	if err != nil {
		return device.ImportCounts{}, err
	}
	defer done()
	counts, err := svc.Import(ctx, l.g.actor(), report.ImportRows(rows))
	if err != nil {
		return device.ImportCounts{}, inFile(name, err)
	}
	return counts, nil
}

// inFile names the file in an import's complaint about its content: the
// file belongs to the message the administrator reads (its rows are
// data of the error), not to a chain of context.
func inFile(name string, err error) error {
	var re *device.RowErrors
	if errors.As(err, &re) {
		re.File = name
		return err
	}
	if k := fault.KindOf(err); k == fault.Invalid || k == fault.Conflict {
		return &fault.Error{Kind: k, Msg: name + ": " + fault.Message(err), Field: fault.FieldOf(err)}
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (l *localAdmin) Report(ctx context.Context, w io.Writer, c device.Criteria) error {
	svc, done, err := l.service(ctx)
	if err != nil {
		return err
	}
	defer done()
	q, err := c.Query(svc.Now())
	if err != nil {
		return err
	}
	rep, err := localComposer(svc).Report(ctx, svc.Reader(true), q)
	if err != nil {
		return err
	}
	return report.WriteReport(w, rep.Devices, rep.At)
}

func (l *localAdmin) Audit(ctx context.Context, q device.AuditQuery) ([]view.AuditEvent, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	evs, err := svc.Audit(ctx, q)
	if err != nil {
		return nil, err
	}
	return view.Audit(evs), nil
}

func (l *localAdmin) Campaigns(ctx context.Context, limit int) ([]device.Campaign, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return svc.Campaigns(ctx, limit)
}

func (l *localAdmin) Campaign(ctx context.Context, id int64) (device.CampaignProgress, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return device.CampaignProgress{}, err
	}
	defer done()
	return svc.Campaign(ctx, id)
}

func (l *localAdmin) CancelCampaign(ctx context.Context, id int64) (device.CampaignCancel, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return device.CampaignCancel{}, err
	}
	defer done()
	return svc.CancelCampaign(ctx, l.g.actor(), id)
}

// remoteAdmin works on a remote server through its REST API; the server
// applies the rules and records the token's name as the actor. A device
// name is checked here first, as the service checks it, so that one the
// URL cannot carry (an empty one) gets the service's message too.
type remoteAdmin struct{ c *apiclient.Client }

func (r remoteAdmin) AddDevice(ctx context.Context, name string, c device.Change) (view.Device, error) {
	if _, err := device.NormalizeName(name); err != nil {
		return view.Device{}, err
	}
	return r.c.CreateDevice(ctx, name, c)
}

func (r remoteAdmin) ChangeDevice(ctx context.Context, name string, c device.Change) (view.Device, error) {
	if _, err := device.NormalizeName(name); err != nil {
		return view.Device{}, err
	}
	return r.c.UpdateDevice(ctx, name, c)
}

func (r remoteAdmin) ShowDevice(ctx context.Context, name string, history int) (view.DeviceDetail, error) {
	if _, err := device.NormalizeName(name); err != nil {
		return view.DeviceDetail{}, err
	}
	return r.c.Device(ctx, name, history)
}

func (r remoteAdmin) RemoveDevice(ctx context.Context, name string) error {
	if _, err := device.NormalizeName(name); err != nil {
		return err
	}
	return r.c.DeleteDevice(ctx, name)
}

func (r remoteAdmin) FindDevices(ctx context.Context, c device.Criteria) (view.DeviceList, error) {
	return r.c.Devices(ctx, c)
}

// Import names the file in the server's complaint about its content (an
// Invalid answer: the line and what is wrong with it), as a local import
// does; any other failure is the server's or the connection's.
func (r remoteAdmin) Import(ctx context.Context, name string, csv io.Reader) (device.ImportCounts, error) {
	counts, err := r.c.Import(ctx, csv)
	if fault.KindOf(err) == fault.Invalid {
		return device.ImportCounts{}, inFile(name, err)
	}
	return counts, err
}

func (r remoteAdmin) Report(ctx context.Context, w io.Writer, c device.Criteria) error {
	return r.c.Report(ctx, w, c)
}

func (r remoteAdmin) Audit(ctx context.Context, q device.AuditQuery) ([]view.AuditEvent, error) {
	return r.c.Audit(ctx, q)
}

func (r remoteAdmin) Campaigns(ctx context.Context, limit int) ([]device.Campaign, error) {
	return r.c.Campaigns(ctx, limit)
}

func (r remoteAdmin) Campaign(ctx context.Context, id int64) (device.CampaignProgress, error) {
	return r.c.Campaign(ctx, id)
}

func (r remoteAdmin) CancelCampaign(ctx context.Context, id int64) (device.CampaignCancel, error) {
	return r.c.CancelCampaign(ctx, id)
}
