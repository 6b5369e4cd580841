// Package view holds the JSON representation of the CAPF records: the one
// vocabulary that `capf … --json`, the REST API and the remote CLI share.
// A view is plain data built from a domain record; it never carries a rule.
package view

import (
	"time"

	"github.com/capf-server/capf/internal/device"
)

// Device is the JSON form of a device.
type Device struct {
	Name            string     `json:"name"`
	Description     string     `json:"description"`
	SecurityProfile string     `json:"security_profile"`
	AuthMode        string     `json:"auth_mode"`
	AuthString      string     `json:"auth_string"`
	Operation       string     `json:"operation"`
	Key             string     `json:"key"`
	Deadline        *time.Time `json:"deadline,omitempty"`
	Status          string     `json:"status"`
	LSCStatus       string     `json:"lsc_status"`
	LSCSerial       string     `json:"lsc_serial,omitempty"`
	LSCIssuer       string     `json:"lsc_issuer,omitempty"`
	LSCValidUntil   *time.Time `json:"lsc_valid_until,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	// LastContact is the phone's latest contact, whatever became of it;
	// absent when none is on record.
	LastContact *Contact `json:"last_contact,omitempty"`
	// Warning says why the armed operation will fail to authenticate as
	// configured (device.Device.AuthWarning); absent when nothing does.
	Warning string `json:"warning,omitempty"`
}

// Contact is the JSON form of a phone's latest contact.
type Contact struct {
	At      time.Time `json:"at"`
	Remote  string    `json:"remote"`
	Outcome string    `json:"outcome"` // in-progress, success, failed, retry-later, no-action, refused
	Reason  string    `json:"reason"`
}

// DeviceOf is the view of d; its LSC status is evaluated at now, the
// service's clock.
func DeviceOf(d device.Device, now time.Time) Device {
	v := Device{
		Name: d.Name, Description: d.Description, SecurityProfile: string(d.SecurityProfile),
		AuthMode: string(d.AuthMode), AuthString: d.AuthString, Operation: string(d.Operation),
		Key: string(d.Key), Status: d.Status, LSCStatus: d.LSCState(now),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, Warning: d.AuthWarning(now),
	}
	if !d.Deadline.IsZero() {
		t := d.Deadline
		v.Deadline = &t
	}
	if d.LSC != nil {
		t := d.LSC.NotAfter
		v.LSCSerial, v.LSCIssuer, v.LSCValidUntil = d.LSC.Serial, d.LSC.Issuer, &t
	}
	if c := d.LastContact; !c.IsZero() {
		v.LastContact = &Contact{At: c.At, Remote: c.Remote, Outcome: c.Outcome, Reason: c.Reason}
	}
	return v
}

// Devices is the view of ds at now.
func Devices(ds []device.Device, now time.Time) []Device {
	out := make([]Device, 0, len(ds))
	for _, d := range ds {
		out = append(out, DeviceOf(d, now))
	}
	return out
}

// DeviceList is a page of a device listing.
type DeviceList struct {
	Total   int      `json:"total"`
	Devices []Device `json:"devices"`
}

// DeviceDetail is a device with its recent history and the certificates
// Troubleshoot fetched from it, as `capf device show --json` prints it.
type DeviceDetail struct {
	Device
	History []Attempt `json:"history"`
	Fetched []Fetched `json:"troubleshoot_certificates"`
	// LastReset is the phone's latest reset; absent when none is on record.
	LastReset *Reset `json:"last_reset,omitempty"`
}

// DetailOf is the view of a device's detail: d with its LSC status
// evaluated at now, its history (newest first), the certificates
// Troubleshoot fetched and its latest reset (zero: none).
func DetailOf(d device.Device, now time.Time, history []device.Attempt, fetched []device.FetchedCertificate, reset device.Reset) DeviceDetail {
	return DeviceDetail{Device: DeviceOf(d, now), History: Attempts(history), Fetched: FetchedList(fetched), LastReset: ResetOf(reset)}
}

// Attempt is the JSON form of one attempt in a device's history.
type Attempt struct {
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Remote     string     `json:"remote"`
	Operation  string     `json:"operation"`
	AuthMode   string     `json:"auth_mode"`
	SUDI       string     `json:"sudi,omitempty"` // the outcome of the phone's SUDI_DATA
	Result     string     `json:"result"`
	Reason     string     `json:"reason"`
}

// Attempts is the view of as.
func Attempts(as []device.Attempt) []Attempt {
	out := make([]Attempt, 0, len(as))
	for _, a := range as {
		v := Attempt{StartedAt: a.StartedAt, Remote: a.Remote, Operation: string(a.Operation), AuthMode: a.AuthMode, SUDI: a.SUDI, Result: a.Result, Reason: a.Reason}
		if !a.FinishedAt.IsZero() {
			t := a.FinishedAt
			v.FinishedAt = &t
		}
		out = append(out, v)
	}
	return out
}

// Fetched is the JSON form of a certificate Troubleshoot fetched.
type Fetched struct {
	Type      string    `json:"type"`
	FetchedAt time.Time `json:"fetched_at"`
	DER       []byte    `json:"der"`
}

// FetchedList is the view of fs.
func FetchedList(fs []device.FetchedCertificate) []Fetched {
	out := make([]Fetched, 0, len(fs))
	for _, f := range fs {
		out = append(out, Fetched{Type: f.Type, FetchedAt: f.FetchedAt, DER: f.DER})
	}
	return out
}

// AuditEvent is an audit event as `capf audit --json` prints it.
type AuditEvent struct {
	ID      int64                `json:"id"`
	At      time.Time            `json:"at"`
	Action  string               `json:"action"`
	Target  string               `json:"target"`
	Changes []device.FieldChange `json:"changes"`
	Detail  string               `json:"detail,omitempty"`
	Actor   string               `json:"actor"`
	From    string               `json:"from,omitempty"`
}

// Audit is the view of evs.
func Audit(evs []device.AuditEvent) []AuditEvent {
	out := make([]AuditEvent, 0, len(evs))
	for _, ev := range evs {
		changes := ev.Changes
		if changes == nil {
			changes = []device.FieldChange{}
		}
		out = append(out, AuditEvent{ID: ev.ID, At: ev.At, Action: ev.Action, Target: ev.Target, Changes: changes, Detail: ev.Detail, Actor: ev.Actor.String(), From: ev.Actor.Remote})
	}
	return out
}
