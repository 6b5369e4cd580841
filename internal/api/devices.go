package api

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/view"
)

// Filters are the Find Phone criteria as query parameters; every one
// that is set must hold.
type Filters struct {
	Name            string   `query:"name" maxLength:"256" doc:"device name begins with"`
	Description     string   `query:"description" maxLength:"256" doc:"description contains"`
	AuthString      string   `query:"auth_string" maxLength:"256" doc:"authentication string is exactly"`
	SecurityProfile string   `query:"security_profile" maxLength:"256" doc:"security profile is: non-secure, authenticated or encrypted"`
	LSCStatus       string   `query:"lsc_status" maxLength:"256" doc:"LSC status is: none, valid, expired or revoked"`
	Operation       string   `query:"operation" maxLength:"256" doc:"pending operation is: none, install, delete or troubleshoot"`
	Status          string   `query:"status" maxLength:"256" doc:"Operation Status contains, e.g. Failed"`
	ExpiresBefore   string   `query:"expires_before" maxLength:"256" doc:"LSC expires before: an RFC 3339 time, or a duration from now such as 720h"`
	Where           []string `query:"where,explode" maxItems:"32" doc:"FIELD:MATCH:VALUE (FIELD:MATCH for is-empty and is-not-empty), repeatable: search within results. Fields: name, description, security-profile, auth-mode, auth-string, operation, status, lsc-status, lsc-expires; matches: begins-with, contains, ends-with, equals, is-empty, is-not-empty, before, after"`
	Sort            string   `query:"sort" maxLength:"64" doc:"sort field: name, description, security-profile, auth-mode, auth-string, operation, status, lsc-expires"`
	Desc            bool     `query:"desc" doc:"sort descending"`
}

func (f Filters) criteria() device.Criteria {
	return device.Criteria{
		Name: f.Name, Description: f.Description, AuthString: f.AuthString, SecurityProfile: f.SecurityProfile,
		LSCStatus: f.LSCStatus, Operation: f.Operation, Status: f.Status, ExpiresBefore: f.ExpiresBefore,
		Where: f.Where, Sort: f.Sort, Desc: f.Desc,
	}
}

// criteriaQuery is c.Query(now), with the error naming the criterion that
// fails (in the API's field names) when the domain's does not: the first
// criterion that fails on its own is the one to blame.
func criteriaQuery(c device.Criteria, now time.Time) (device.Query, error) {
	q, err := c.Query(now)
	if err == nil || fault.FieldOf(err) != "" {
		return q, err
	}
	for _, one := range []struct {
		field string
		c     device.Criteria
	}{
		{"name", device.Criteria{Name: c.Name}},
		{"description", device.Criteria{Description: c.Description}},
		{"auth_string", device.Criteria{AuthString: c.AuthString}},
		{"security_profile", device.Criteria{SecurityProfile: c.SecurityProfile}},
		{"lsc_status", device.Criteria{LSCStatus: c.LSCStatus}},
		{"operation", device.Criteria{Operation: c.Operation}},
		{"status", device.Criteria{Status: c.Status}},
		{"expires_before", device.Criteria{ExpiresBefore: c.ExpiresBefore}},
		{"where", device.Criteria{Where: c.Where}},
		{"sort", device.Criteria{Sort: c.Sort}},
	} {
		if _, e := one.c.Query(now); e != nil {
			return q, blame(one.field, err)
		}
	}
	return q, err
}

// DeviceFields are a device's CAPF settings as a request gives them: each
// one absent stays as it is (or takes its default, for a new device).
type DeviceFields struct {
	Description     *string `json:"description,omitempty" maxLength:"1024" doc:"description (at most 128 characters)"`
	SecurityProfile *string `json:"security_profile,omitempty" maxLength:"64" doc:"non-secure, authenticated or encrypted (or the CallManager label)"`
	AuthMode        *string `json:"auth_mode,omitempty" maxLength:"64" doc:"string, null, lsc or mic (or the CallManager label)"`
	AuthString      *string `json:"auth_string,omitempty" maxLength:"64" doc:"authentication string, 4 to 10 digits; empty clears it"`
	Operation       *string `json:"operation,omitempty" maxLength:"64" doc:"none, install, delete or troubleshoot (or the CallManager label)"`
	Key             *string `json:"key,omitempty" maxLength:"64" doc:"rsa512, rsa1024, rsa2048, rsa3072, rsa4096, ec256, ec384 or ec521"`
	Deadline        *string `json:"deadline,omitempty" maxLength:"64" doc:"Operation Completes By, RFC 3339 (e.g. 2026-12-01T18:00:00Z) or 2026-12-01 18:00 in UTC; empty or none clears it"`
	GenerateString  bool    `json:"generate_string,omitempty" doc:"generate a new random authentication string"`
}

// change turns the fields into a device change with the one parser of
// device changes; a value that does not parse is an Invalid error naming
// its field (the first, if several are wrong).
func (f DeviceFields) change() (device.Change, error) {
	return device.ChangeInput{
		Description: f.Description, SecurityProfile: f.SecurityProfile, AuthMode: f.AuthMode,
		AuthString: f.AuthString, Operation: f.Operation, Key: f.Key, Deadline: f.Deadline,
		GenerateString: f.GenerateString,
	}.Parse()
}

type listDevicesInput struct {
	Filters
	Limit  int `query:"limit" default:"50" minimum:"1" maximum:"1000" doc:"at most this many"`
	Offset int `query:"offset" minimum:"0" doc:"skip this many"`
}

type deviceListOutput struct{ Body view.DeviceList }

type newDeviceInput struct {
	Body struct {
		Name string `json:"name" minLength:"1" maxLength:"64" doc:"device name, e.g. SEP001122334455"`
		DeviceFields
	}
}

type newDeviceOutput struct {
	Location string `header:"Location" doc:"the new device's URL"`
	Body     view.Device
}

type deviceOutput struct{ Body view.Device }

// DeviceName is the device a request names in its path.
type DeviceName struct {
	Name string `path:"name" maxLength:"64" doc:"device name"`
}

// normalized returns the device name in its stored form, or an error that
// blames the path's name.
func (n DeviceName) normalized() (string, error) {
	name, err := device.NormalizeName(n.Name)
	return name, err
}

type getDeviceInput struct {
	DeviceName
	History int `query:"history" default:"20" minimum:"1" maximum:"1000" doc:"how many recent attempts to include"`
}

type deviceDetailOutput struct{ Body view.DeviceDetail }

type patchDeviceInput struct {
	DeviceName
	Body DeviceFields
}

type historyInput struct {
	DeviceName
	Limit int `query:"limit" default:"20" minimum:"1" maximum:"1000" doc:"at most this many, newest first"`
}

type historyOutput struct{ Body []view.Attempt }

type fetchedOutput struct{ Body []view.Fetched }

type fetchedFileInput struct {
	DeviceName
	Index  int    `path:"index" minimum:"0" doc:"position in the device's list of Troubleshoot certificates, from 0"`
	Format string `query:"format" enum:"pem,der" default:"pem" doc:"pem or der"`
}

// fileOutput is a file to download.
type fileOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentDisposition string `header:"Content-Disposition"`
	Body               []byte
}

// Media types of the downloads.
const (
	mediaPEM = "application/x-pem-file"
	mediaDER = "application/pkix-cert"
	mediaCSV = "text/csv; charset=utf-8"
)

// fileResponses documents a download's media types.
func fileResponses(desc string, media ...string) map[string]*huma.Response {
	content := map[string]*huma.MediaType{}
	for _, m := range media {
		content[m] = &huma.MediaType{Schema: &huma.Schema{Type: huma.TypeString, Format: "binary"}}
	}
	return map[string]*huma.Response{"200": {Description: desc, Content: content}}
}

func attachment(name string) string {
	return fmt.Sprintf("attachment; filename=%q", name)
}

func (s *server) registerDevices() {
	tags := []string{"devices"}
	add(s, readAccess, huma.Operation{
		OperationID: "list-devices", Method: http.MethodGet, Path: "/devices", Tags: tags,
		Summary: "Find and list phones", Description: "Every criterion given must hold.",
	}, s.listDevices)
	add(s, writeAccess, huma.Operation{
		OperationID: "create-device", Method: http.MethodPost, Path: "/devices", Tags: tags, DefaultStatus: http.StatusCreated,
		Summary: "Add a phone", Errors: []int{http.StatusConflict},
	}, s.createDevice)
	add(s, readAccess, huma.Operation{
		OperationID: "get-device", Method: http.MethodGet, Path: "/devices/{name}", Tags: tags,
		Summary: "A phone with its recent attempts and Troubleshoot certificates",
	}, s.getDevice)
	add(s, writeAccess, huma.Operation{
		OperationID: "update-device", Method: http.MethodPatch, Path: "/devices/{name}", Tags: tags,
		Summary: "Change a phone's CAPF settings", Description: "Fields absent stay as they are.",
	}, s.updateDevice)
	add(s, writeAccess, huma.Operation{
		OperationID: "delete-device", Method: http.MethodDelete, Path: "/devices/{name}", Tags: tags, DefaultStatus: http.StatusNoContent,
		Summary: "Remove a phone", Description: "Certificates issued to it stay on record.",
	}, s.deleteDevice)
	add(s, readAccess, huma.Operation{
		OperationID: "device-history", Method: http.MethodGet, Path: "/devices/{name}/history", Tags: tags,
		Summary: "A phone's attempts, newest first",
	}, s.deviceHistory)
	add(s, readAccess, huma.Operation{
		OperationID: "device-certificates", Method: http.MethodGet, Path: "/devices/{name}/certificates", Tags: tags,
		Summary: "The certificates Troubleshoot fetched from a phone, newest first",
	}, s.deviceCertificates)
	add(s, readAccess, huma.Operation{
		OperationID: "device-certificate-file", Method: http.MethodGet, Path: "/devices/{name}/certificates/{index}", Tags: tags,
		Summary:   "Download one Troubleshoot certificate",
		Responses: fileResponses("the certificate", mediaPEM, mediaDER),
	}, s.deviceCertificateFile)
}

func (s *server) listDevices(ctx context.Context, in *listDevicesInput) (*deviceListOutput, error) {
	c := in.criteria()
	c.Limit, c.Offset = in.Limit, in.Offset
	now := s.o.Devices.Now()
	q, err := criteriaQuery(c, now)
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	page, err := s.reader(ctx).List(ctx, q)
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	return &deviceListOutput{Body: view.DeviceList{Total: page.Total, Devices: view.Devices(page.Devices, now)}}, nil
}

func (s *server) createDevice(ctx context.Context, in *newDeviceInput) (*newDeviceOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	c, err := in.Body.change()
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	name, err := device.NormalizeName(in.Body.Name)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	d := device.Device{Name: name}
	c.Apply(&d)
	d, err = s.o.Devices.Add(ctx, actor, d, c.GenerateString)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return &newDeviceOutput{Location: Prefix + "/devices/" + url.PathEscape(d.Name), Body: view.DeviceOf(d, s.o.Devices.Now())}, nil
}

func (s *server) getDevice(ctx context.Context, in *getDeviceInput) (*deviceDetailOutput, error) {
	name, err := in.normalized()
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	d, err := s.compose.Detail(ctx, s.reader(ctx), name, in.History)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return &deviceDetailOutput{Body: view.DetailOf(d.Device, d.At, d.History, d.Fetched, d.LastReset)}, nil
}

func (s *server) updateDevice(ctx context.Context, in *patchDeviceInput) (*deviceOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	name, err := in.normalized()
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	c, err := in.Body.change()
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	d, err := s.o.Devices.Change(ctx, actor, name, c)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return &deviceOutput{Body: view.DeviceOf(d, s.o.Devices.Now())}, nil
}

func (s *server) deleteDevice(ctx context.Context, in *DeviceName) (*struct{}, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	name, err := in.normalized()
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	if err := s.o.Devices.Remove(ctx, actor, name); err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return nil, nil
}

func (s *server) deviceHistory(ctx context.Context, in *historyInput) (*historyOutput, error) {
	name, err := in.normalized()
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	as, err := s.o.Devices.History(ctx, name, in.Limit)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return &historyOutput{Body: view.Attempts(as)}, nil
}

// fetched returns the normalized name and the Troubleshoot certificates
// of an existing device.
func (s *server) fetched(ctx context.Context, n DeviceName) (string, []device.FetchedCertificate, error) {
	name, err := n.normalized()
	if err != nil {
		return "", nil, err
	}
	d, err := s.o.Devices.Get(ctx, name)
	if err != nil {
		return "", nil, err
	}
	fs, err := s.o.Devices.Fetched(ctx, d.Name)
	return d.Name, fs, err
}

func (s *server) deviceCertificates(ctx context.Context, in *DeviceName) (*fetchedOutput, error) {
	_, fs, err := s.fetched(ctx, *in)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return &fetchedOutput{Body: view.FetchedList(fs)}, nil
}

func (s *server) deviceCertificateFile(ctx context.Context, in *fetchedFileInput) (*fileOutput, error) {
	name, fs, err := s.fetched(ctx, in.DeviceName)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	if in.Index >= len(fs) {
		return nil, s.fail(ctx, fault.NotFoundf("device %s has %d Troubleshoot certificates; there is none at index %d", name, len(fs), in.Index), "path")
	}
	f := fs[in.Index]
	base := fmt.Sprintf("%s-%s-%d", name, strings.ToLower(f.Type), in.Index)
	if in.Format == "der" {
		return &fileOutput{ContentType: mediaDER, ContentDisposition: attachment(base + ".der"), Body: f.DER}, nil
	}
	return &fileOutput{ContentType: mediaPEM, ContentDisposition: attachment(base + ".pem"),
		Body: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.DER})}, nil
}
