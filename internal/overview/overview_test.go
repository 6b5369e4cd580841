package overview_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/overview"
	"github.com/capf-server/capf/internal/system"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const phone = "SEP001122334455"

// audience is a device reader for one audience: hide blanks the strings,
// as device.Reader does for a viewer. It records what it was asked.
type audience struct {
	hide    bool
	devices map[string]device.Device
	page    device.Page
	listErr error
	queries []device.Query
}

func (a *audience) Get(_ context.Context, name string) (device.Device, error) {
	d, ok := a.devices[name]
	if !ok {
		return device.Device{}, fault.New(fault.NotFound, "device %s not found", name)
	}
	if a.hide {
		d.AuthString = ""
	}
	return d, nil
}

func (a *audience) List(_ context.Context, q device.Query) (device.Page, error) {
	a.queries = append(a.queries, q)
	if a.listErr != nil {
		return device.Page{}, a.listErr
	}
	p := a.page
	p.Devices = append([]device.Device(nil), p.Devices...)
	a.Redact(p.Devices)
	return p, nil
}

func (a *audience) Redact(ds []device.Device) {
	if !a.hide {
		return
	}
	for i := range ds {
		ds[i].AuthString = ""
	}
}

// records are a device's recorded facts; fail names the one read that
// fails. It records the names and limits it was asked for.
type records struct {
	fail     string
	history  []device.Attempt
	fetched  []device.FetchedCertificate
	reset    device.Reset
	asked    []string
	limit    int
	issuedQs []lsc.Query
	issued   []lsc.Record
}

var errBroken = errors.New("disk on fire")

func (r *records) read(what, name string) error {
	r.asked = append(r.asked, what+" "+name)
	if r.fail == what {
		return errBroken
	}
	return nil
}

func (r *records) History(_ context.Context, name string, limit int) ([]device.Attempt, error) {
	r.limit = limit
	return r.history, r.read("history", name)
}

func (r *records) Fetched(_ context.Context, name string) ([]device.FetchedCertificate, error) {
	return r.fetched, r.read("fetched", name)
}

func (r *records) LastReset(_ context.Context, name string) (device.Reset, error) {
	return r.reset, r.read("reset", name)
}

func (r *records) List(_ context.Context, q lsc.Query) ([]lsc.Record, error) {
	r.issuedQs = append(r.issuedQs, q)
	return r.issued, r.read("issued", q.Device)
}

func clock() time.Time { return now }

func TestDetail(t *testing.T) {
	lscUntil := now.Add(40 * 24 * time.Hour)
	stored := device.Device{
		Name: phone, SecurityProfile: device.Authenticated, AuthMode: device.AuthString, AuthString: "135790",
		Operation: device.OpInstall, LSC: &device.Certificate{Serial: "0A", NotAfter: lscUntil},
	}
	hist := []device.Attempt{{Device: phone, StartedAt: now.Add(-time.Minute), Result: "Success"}}
	fetched := []device.FetchedCertificate{{Type: "LSC", FetchedAt: now, DER: []byte{1, 2}}}
	reset := device.Reset{Device: phone, At: now.Add(-time.Hour), Actor: "web:ops", OK: true}
	issued := []lsc.Record{{Issuance: device.Issuance{Serial: "0A", Device: phone, NotAfter: lscUntil}}}

	for _, tc := range []struct {
		name        string
		hide        bool   // the audience may not see strings
		issued      bool   // the composer has the inventory
		phones      string // the port phones reach the service at; "" no Phones
		fail        string // the read that fails
		wantString  string
		wantSnippet string // a fragment of the snippet
		wantSnipErr string // a fragment of SnippetError
		wantErr     error
	}{
		{name: "admin sees everything", wantString: "135790"},
		{name: "viewer gets the string blanked", hide: true},
		{name: "inventory listed", issued: true, wantString: "135790"},
		{name: "snippet on the real port", phones: "3804", wantString: "135790", wantSnippet: "<phonePort>3804</phonePort>"},
		{name: "snippet impossible says why", phones: "0", wantString: "135790", wantSnipErr: "want a port number from 1 to 65535"},
		{name: "history fails", fail: "history", wantErr: errBroken},
		{name: "fetched fails", fail: "fetched", wantErr: errBroken},
		{name: "reset fails", fail: "reset", wantErr: errBroken},
		{name: "inventory fails", issued: true, fail: "issued", wantErr: errBroken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &audience{hide: tc.hide, devices: map[string]device.Device{phone: stored}}
			r := &records{fail: tc.fail, history: hist, fetched: fetched, reset: reset, issued: issued}
			o := overview.Options{Clock: clock, Records: r}
			if tc.issued {
				o.Issued = r
			}
			if tc.phones != "" {
				o.Phones = func() (string, string) { return "capf.example<x>", tc.phones }
			}
			d, err := overview.New(o).Detail(context.Background(), a, phone, 7)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.HasPrefix(err.Error(), "detail of "+phone+": ") {
					t.Fatalf("err = %v; want %v, in the detail of %s", err, tc.wantErr, phone)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Device.Name != phone || d.Device.AuthString != tc.wantString {
				t.Errorf("device %s string %q; want %s %q", d.Device.Name, d.Device.AuthString, phone, tc.wantString)
			}
			if !d.At.Equal(now) || d.LSCState != "valid" {
				t.Errorf("at %v LSC state %q; want %v valid", d.At, d.LSCState, now)
			}
			if r.limit != 7 || len(d.History) != 1 || len(d.Fetched) != 1 || d.LastReset != reset {
				t.Errorf("history limit %d, %d attempts, %d fetched, reset %+v", r.limit, len(d.History), len(d.Fetched), d.LastReset)
			}
			if d.Inventory != tc.issued || (tc.issued && (len(d.Issued) != 1 || r.issuedQs[0] != lsc.Query{Device: phone, Limit: overview.IssuedListed})) {
				t.Errorf("inventory %v issued %+v (asked %+v)", d.Inventory, d.Issued, r.issuedQs)
			}
			if !strings.Contains(d.Snippet, tc.wantSnippet) || (tc.wantSnippet == "") != (d.Snippet == "") {
				t.Errorf("snippet %q; want one with %q", d.Snippet, tc.wantSnippet)
			}
			if tc.wantSnippet != "" && !strings.Contains(d.Snippet, "capf.example&lt;x&gt;") {
				t.Errorf("snippet %q does not escape the host", d.Snippet)
			}
			if tc.wantSnipErr == "" && d.SnippetError != nil || tc.wantSnipErr != "" && (d.SnippetError == nil || !strings.Contains(d.SnippetError.Error(), tc.wantSnipErr) || fault.KindOf(d.SnippetError) != fault.Invalid) {
				t.Errorf("snippet error %v; want one with %q", d.SnippetError, tc.wantSnipErr)
			}
		})
	}
}

// TestDetailOfUnknown: an unknown phone is the audience's NotFound, and
// nothing else is read.
func TestDetailOfUnknown(t *testing.T) {
	r := &records{}
	_, err := overview.New(overview.Options{Clock: clock, Records: r, Issued: r}).Detail(context.Background(), &audience{}, "SEP0000000000AA", 20)
	if fault.KindOf(err) != fault.NotFound || fault.Message(err) != "device SEP0000000000AA not found" {
		t.Fatalf("err = %v (%v); want the NotFound unwrapped", err, fault.KindOf(err))
	}
	if len(r.asked) != 0 {
		t.Errorf("read %v for an unknown phone", r.asked)
	}
}

func TestReport(t *testing.T) {
	secret := device.Device{Name: phone, AuthMode: device.AuthString, AuthString: "135790"}
	earlier := now.Add(-time.Hour)
	for _, tc := range []struct {
		name       string
		hide       bool
		q          device.Query
		listErr    error
		wantAt     time.Time
		wantString string
		wantKind   fault.Kind
	}{
		{name: "evaluated at the composer's clock", q: device.Query{}, wantAt: now, wantString: "135790"},
		{name: "a query's own clock reading is kept", q: device.Query{Now: earlier}, wantAt: earlier, wantString: "135790"},
		{name: "viewer gets the strings blanked", hide: true, wantAt: now},
		{name: "a refused search is the audience's error", hide: true, listErr: fault.New(fault.Forbidden, "no"), wantKind: fault.Forbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &audience{hide: tc.hide, page: device.Page{Total: 1, Devices: []device.Device{secret}}, listErr: tc.listErr}
			rep, err := overview.New(overview.Options{Clock: clock, Records: &records{}}).Report(context.Background(), a, tc.q)
			if tc.wantKind != 0 || tc.listErr != nil {
				if fault.KindOf(err) != tc.wantKind {
					t.Fatalf("err = %v; want kind %v", err, tc.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !rep.At.Equal(tc.wantAt) || len(a.queries) != 1 || !a.queries[0].Now.Equal(tc.wantAt) {
				t.Errorf("report at %v, queried %+v; want %v", rep.At, a.queries, tc.wantAt)
			}
			if len(rep.Devices) != 1 || rep.Devices[0].AuthString != tc.wantString {
				t.Errorf("devices %+v; want the string %q", rep.Devices, tc.wantString)
			}
		})
	}
}

type fleet struct {
	d   device.Dashboard
	err error
}

func (f fleet) Dashboard(context.Context) (device.Dashboard, error) {
	// A fresh copy each time, as the service gives.
	d := f.d
	d.Expiring = append([]device.Device(nil), f.d.Expiring...)
	d.InProgress = append([]device.Device(nil), f.d.InProgress...)
	return d, f.err
}

type activation struct {
	active bool
	err    error
}

func (a activation) Activation(context.Context) (system.Activation, error) {
	return system.Activation{Active: a.active}, a.err
}

// closedUntil is a maintenance schedule closed until a time (zero: no
// window ever opens).
type closedUntil struct{ until time.Time }

func (c closedUntil) Open(t time.Time) bool { return !c.until.IsZero() && !t.Before(c.until) }
func (c closedUntil) NextOpen(t time.Time) time.Time {
	if c.until.IsZero() {
		return time.Time{}
	}
	return c.until
}

func TestDashboard(t *testing.T) {
	secret := func(n string) device.Device {
		return device.Device{Name: n, AuthMode: device.AuthString, AuthString: "135790"}
	}
	base := device.Dashboard{Devices: 2, Expiring: []device.Device{secret("SEP000000000001")}, InProgress: []device.Device{secret("SEP000000000002")}}
	opensAt := now.Add(90 * time.Minute)
	for _, tc := range []struct {
		name        string
		hide        bool
		fleet       overview.Fleet
		act         overview.Activation
		windows     overview.Windows
		wantString  string
		wantNotices []overview.Notice
		wantLog     string
		wantKind    fault.Kind
		wantErr     error
	}{
		{name: "admin, active, no windows", fleet: fleet{d: base}, act: activation{active: true}, wantString: "135790", wantNotices: []overview.Notice{}},
		{name: "viewer gets the lists redacted", hide: true, fleet: fleet{d: base}, wantNotices: []overview.Notice{}},
		{name: "window open", fleet: fleet{d: base}, windows: closedUntil{now.Add(-time.Hour)}, wantString: "135790", wantNotices: []overview.Notice{}},
		{name: "deactivated and window closed", fleet: fleet{d: base}, act: activation{}, windows: closedUntil{opensAt}, wantString: "135790",
			wantNotices: []overview.Notice{{Kind: overview.NoticeDeactivated}, {Kind: overview.NoticeWindowClosed, NextOpen: opensAt, In: 90 * time.Minute}}},
		{name: "closed with no next window", fleet: fleet{d: base}, windows: closedUntil{}, wantString: "135790",
			wantNotices: []overview.Notice{{Kind: overview.NoticeWindowClosed}}},
		{name: "activation unreadable: logged, no notice", fleet: fleet{d: base}, act: activation{err: errBroken}, wantString: "135790",
			wantNotices: []overview.Notice{}, wantLog: "disk on fire"},
		{name: "no fleet", wantKind: fault.Unavailable},
		{name: "fleet fails", fleet: fleet{err: errBroken}, wantErr: errBroken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			o := overview.Options{Clock: clock, Records: &records{}, Fleet: tc.fleet, Activation: tc.act, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			if tc.windows != nil {
				o.Windows = func() overview.Windows { return tc.windows }
			}
			d, err := overview.New(o).Dashboard(context.Background(), &audience{hide: tc.hide})
			switch {
			case tc.wantKind != 0:
				if fault.KindOf(err) != tc.wantKind {
					t.Fatalf("err = %v; want kind %v", err, tc.wantKind)
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v; want %v", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if d.Devices != 2 || !d.At.Equal(now) {
				t.Errorf("devices %d at %v", d.Devices, d.At)
			}
			for _, l := range [][]device.Device{d.Expiring, d.InProgress} {
				if len(l) != 1 || l[0].AuthString != tc.wantString {
					t.Errorf("list %+v; want the string %q", l, tc.wantString)
				}
			}
			if len(d.Notices) != len(tc.wantNotices) {
				t.Fatalf("notices %+v; want %+v", d.Notices, tc.wantNotices)
			}
			for i := range d.Notices {
				if g, w := d.Notices[i], tc.wantNotices[i]; g.Kind != w.Kind || !g.NextOpen.Equal(w.NextOpen) || g.In != w.In {
					t.Errorf("notice %d = %+v; want %+v", i, g, w)
				}
			}
			if !strings.Contains(logs.String(), tc.wantLog) || tc.wantLog == "" && logs.Len() != 0 {
				t.Errorf("log %q; want %q", logs.String(), tc.wantLog)
			}
		})
	}
}

func TestNoticeText(t *testing.T) {
	zurich, err := time.LoadLocation("Europe/Zurich")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	opens := time.Date(2026, 11, 25, 13, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		n    overview.Notice
		loc  *time.Location
		want string
	}{
		{"deactivated", overview.Notice{Kind: overview.NoticeDeactivated}, time.UTC,
			"The CAPF service is deactivated: phones are refused until it is activated (Serviceability > Service Activation)."},
		{"closed, next in UTC", overview.Notice{Kind: overview.NoticeWindowClosed, NextOpen: opens, In: 90*time.Minute + 20*time.Second}, time.UTC,
			"No maintenance window is open: phones with a pending operation are told to retry later. The next window opens Wed 2026-11-25 13:30 UTC (in 1h30m0s)."},
		{"closed, next in the page's zone", overview.Notice{Kind: overview.NoticeWindowClosed, NextOpen: opens, In: time.Hour}, zurich,
			"No maintenance window is open: phones with a pending operation are told to retry later. The next window opens Wed 2026-11-25 14:30 CET (in 1h0m0s)."},
		{"closed, none known", overview.Notice{Kind: overview.NoticeWindowClosed}, time.UTC,
			"No maintenance window is open: phones with a pending operation are told to retry later."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.n.Text(tc.loc); got != tc.want {
				t.Errorf("Text = %q\nwant   %q", got, tc.want)
			}
		})
	}
}
