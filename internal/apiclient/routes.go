package apiclient

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/view"
)

// criteriaQuery is c as the query of GET /devices and GET /report, without
// the paging.
func criteriaQuery(c device.Criteria) url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("name", c.Name)
	set("description", c.Description)
	set("auth_string", c.AuthString)
	set("security_profile", c.SecurityProfile)
	set("lsc_status", c.LSCStatus)
	set("operation", c.Operation)
	set("status", c.Status)
	set("expires_before", c.ExpiresBefore)
	for _, w := range c.Where {
		q.Add("where", w)
	}
	set("sort", c.Sort)
	if c.Desc {
		q.Set("desc", "true")
	}
	return q
}

// Devices returns the devices c matches: the page c.Limit and c.Offset
// select, or, when c.Limit is 0, every match. The API serves at most
// PageSize devices a call, so a longer listing takes several calls; Total
// is the server's count in the last one.
func (c *Client) Devices(ctx context.Context, cr device.Criteria) (view.DeviceList, error) {
	q := criteriaQuery(cr)
	out := view.DeviceList{Devices: []view.Device{}}
	offset, want := cr.Offset, cr.Limit
	for {
		n := PageSize
		if want > 0 && want-len(out.Devices) < n {
			n = want - len(out.Devices)
		}
		q.Set("limit", strconv.Itoa(n))
		q.Set("offset", strconv.Itoa(offset))
		var page view.DeviceList
		if err := c.call(ctx, request{method: http.MethodGet, path: "/devices", query: q}, &page); err != nil {
			return view.DeviceList{}, err
		}
		out.Total = page.Total
		out.Devices = append(out.Devices, page.Devices...)
		offset += len(page.Devices)
		if len(page.Devices) < n || offset >= page.Total || (want > 0 && len(out.Devices) >= want) {
			return out, nil
		}
	}
}

// pageLimit is n as a limit the API takes (1 to PageSize): 0 or less, or
// more than the API gives, asks for PageSize.
func pageLimit(n int) string {
	if n <= 0 || n > PageSize {
		n = PageSize
	}
	return strconv.Itoa(n)
}

// Device returns the device called name with its latest history attempts
// (0: as many as the API gives, PageSize; the server keeps fewer) and its
// Troubleshoot certificates.
func (c *Client) Device(ctx context.Context, name string, history int) (view.DeviceDetail, error) {
	var d view.DeviceDetail
	q := url.Values{"history": {pageLimit(history)}}
	err := c.call(ctx, request{method: http.MethodGet, path: "/devices/" + url.PathEscape(name), query: q}, &d)
	return d, err
}

// deviceBody is the body of POST /devices and PATCH /devices/{name}: a
// field left nil is absent (unchanged, or the default).
type deviceBody struct {
	Name            string  `json:"name,omitempty"`
	Description     *string `json:"description,omitempty"`
	SecurityProfile *string `json:"security_profile,omitempty"`
	AuthMode        *string `json:"auth_mode,omitempty"`
	AuthString      *string `json:"auth_string,omitempty"`
	Operation       *string `json:"operation,omitempty"`
	Key             *string `json:"key,omitempty"`
	Deadline        *string `json:"deadline,omitempty"` // RFC 3339; "" clears it
	GenerateString  bool    `json:"generate_string,omitempty"`
}

// bodyOf is ch in the API's words.
func bodyOf(name string, ch device.Change) deviceBody {
	b := deviceBody{Name: name, Description: ch.Description, AuthString: ch.AuthString, GenerateString: ch.GenerateString}
	str := func(s string) *string { return &s }
	if ch.SecurityProfile != nil {
		b.SecurityProfile = str(string(*ch.SecurityProfile))
	}
	if ch.AuthMode != nil {
		b.AuthMode = str(string(*ch.AuthMode))
	}
	if ch.Operation != nil {
		b.Operation = str(string(*ch.Operation))
	}
	if ch.Key != nil {
		b.Key = str(string(*ch.Key))
	}
	if ch.Deadline != nil {
		if ch.Deadline.IsZero() {
			b.Deadline = str("")
		} else {
			b.Deadline = str(ch.Deadline.UTC().Format(time.RFC3339Nano))
		}
	}
	return b
}

// CreateDevice adds the device called name with the settings ch gives
// (the others take their defaults).
func (c *Client) CreateDevice(ctx context.Context, name string, ch device.Change) (view.Device, error) {
	body, err := jsonBody(bodyOf(name, ch))
	if err != nil {
		return view.Device{}, err
	}
	var d view.Device
	err = c.call(ctx, request{method: http.MethodPost, path: "/devices", body: body, contentType: "application/json"}, &d)
	return d, err
}

// UpdateDevice changes the settings ch gives of the device called name.
func (c *Client) UpdateDevice(ctx context.Context, name string, ch device.Change) (view.Device, error) {
	body, err := jsonBody(bodyOf("", ch))
	if err != nil {
		return view.Device{}, err
	}
	var d view.Device
	err = c.call(ctx, request{method: http.MethodPatch, path: "/devices/" + url.PathEscape(name), body: body, contentType: "application/json"}, &d)
	return d, err
}

// DeleteDevice removes the device called name.
func (c *Client) DeleteDevice(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/devices/" + url.PathEscape(name)}, nil)
}

// History returns the latest limit attempts of the device called name
// (0: PageSize).
func (c *Client) History(ctx context.Context, name string, limit int) ([]view.Attempt, error) {
	var as []view.Attempt
	q := url.Values{"limit": {pageLimit(limit)}}
	err := c.call(ctx, request{method: http.MethodGet, path: "/devices/" + url.PathEscape(name) + "/history", query: q}, &as)
	return as, err
}

// importCounts is the answer of POST /import.
type importCounts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// Import sends a CAPF import file (CSV) for the server to apply, all or
// nothing; a bad row is an Invalid error whose message names its line.
func (c *Client) Import(ctx context.Context, csv io.Reader) (device.ImportCounts, error) {
	var n importCounts
	err := c.call(ctx, request{method: http.MethodPost, path: "/import", body: csv, contentType: "text/csv", stream: true}, &n)
	return device.ImportCounts{Created: n.Created, Updated: n.Updated, Unchanged: n.Unchanged}, err
}

// Report streams the CAPF report (CSV) of every device cr matches to w.
// The API's report has no paging: a criteria with a Limit or an Offset is
// refused rather than ignored.
func (c *Client) Report(ctx context.Context, w io.Writer, cr device.Criteria) error {
	if cr.Limit != 0 || cr.Offset != 0 {
		return fault.Invalidf("the server's report holds every device the search matches: limit and offset work only on a local report")
	}
	q := criteriaQuery(cr)
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: "/report", query: q, stream: true})
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/csv" {
		return fmt.Errorf("GET /report: the server answered %q, not text/csv", resp.Header.Get("Content-Type"))
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, c.maxReport))
	if err != nil {
		return fmt.Errorf("GET /report: %w", err)
	}
	if n == c.maxReport {
		if extra, _ := io.ReadFull(resp.Body, make([]byte, 1)); extra > 0 {
			return fmt.Errorf("GET /report: the report is larger than the limit of %d bytes; the output is cut short", c.maxReport)
		}
	}
	return nil
}

// Audit returns the audit events q selects, newest first; a Limit of 0
// asks for PageSize, the most the API gives.
func (c *Client) Audit(ctx context.Context, aq device.AuditQuery) ([]view.AuditEvent, error) {
	q := url.Values{"limit": {pageLimit(aq.Limit)}}
	if aq.Target != "" {
		q.Set("target", aq.Target)
	}
	evs := []view.AuditEvent{}
	err := c.call(ctx, request{method: http.MethodGet, path: "/audit", query: q}, &evs)
	return evs, err
}

// Service returns the state of the CAPF service (Service Activation).
func (c *Client) Service(ctx context.Context) (system.Activation, error) {
	var a system.Activation
	err := c.call(ctx, request{method: http.MethodGet, path: "/service"}, &a)
	return a, err
}

// SetService activates or deactivates the CAPF service.
func (c *Client) SetService(ctx context.Context, active bool) (system.Activation, error) {
	body, err := jsonBody(struct {
		Active bool `json:"active"`
	}{active})
	if err != nil {
		return system.Activation{}, err
	}
	var a system.Activation
	err = c.call(ctx, request{method: http.MethodPut, path: "/service", body: body, contentType: "application/json"}, &a)
	return a, err
}

// ResetDevice asks the server to reset the device called name (Save, then
// Reset) and returns the outcome it recorded.
func (c *Client) ResetDevice(ctx context.Context, name string) (view.Reset, error) {
	var r view.Reset
	err := c.call(ctx, request{method: http.MethodPost, path: "/devices/" + url.PathEscape(name) + "/reset"}, &r)
	return r, err
}

// ResetDevices asks the server to reset every device cr matches (its
// Limit and Offset are ignored); it may take a while, so it has the
// longer deadline.
func (c *Client) ResetDevices(ctx context.Context, cr device.Criteria) (view.BulkReset, error) {
	crit := map[string]any{}
	for k, v := range map[string]string{"name": cr.Name, "description": cr.Description, "auth_string": cr.AuthString,
		"security_profile": cr.SecurityProfile, "lsc_status": cr.LSCStatus, "operation": cr.Operation, "status": cr.Status,
		"expires_before": cr.ExpiresBefore} {
		if v != "" {
			crit[k] = v
		}
	}
	if len(cr.Where) > 0 {
		crit["where"] = cr.Where
	}
	body, err := jsonBody(map[string]any{"criteria": crit})
	if err != nil {
		return view.BulkReset{}, err
	}
	var b view.BulkReset
	err = c.call(ctx, request{method: http.MethodPost, path: "/devices/reset", body: body, contentType: "application/json", stream: true}, &b)
	return b, err
}

// Parameters returns the service parameters of the server: its node
// settings and the fleet's parameters, with their values and help.
func (c *Client) Parameters(ctx context.Context) ([]system.Parameter, error) {
	ps := []system.Parameter{}
	err := c.call(ctx, request{method: http.MethodGet, path: "/parameters"}, &ps)
	return ps, err
}

// UpdateParameters changes the parameters values names (all or nothing,
// audited as the token) and returns them all as they are then.
func (c *Client) UpdateParameters(ctx context.Context, values map[string]any) ([]system.Parameter, error) {
	body, err := jsonBody(map[string]any{"values": values})
	if err != nil {
		return nil, err
	}
	ps := []system.Parameter{}
	err = c.call(ctx, request{method: http.MethodPatch, path: "/parameters", body: body, contentType: "application/json"}, &ps)
	return ps, err
}
