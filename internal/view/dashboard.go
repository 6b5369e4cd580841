package view

import (
	"time"

	"github.com/capf-server/capf/internal/device"
)

// Dashboard is the JSON form of the fleet overview: the counts, and the
// devices and attempts behind the lists the domain type keeps out of its
// own JSON.
type Dashboard struct {
	Devices      int            `json:"devices"`
	ByStatus     []device.Count `json:"by_status"`
	ByLSC        []device.Count `json:"by_lsc_status"`
	ExpiringSoon int            `json:"expiring_soon"`
	ExpiringWeek int            `json:"expiring_within_7d"` // valid LSCs expiring within 7 days: renewal is late
	// RenewalsWaiting are the phones armed for Install/Upgrade by their
	// existing LSC (renewals) that have not completed it.
	RenewalsWaiting int             `json:"renewals_waiting"`
	Expiring        []Device        `json:"expiring"`        // LSCs expiring within 30 days, soonest first
	InProgress      []Device        `json:"in_progress"`     // operations a session holds now
	RecentFailures  []DeviceAttempt `json:"recent_failures"` // newest first
	// Unconfigured are the phones that asked for a device that is not
	// configured (this node's count since it started).
	Unconfigured Unconfigured `json:"unconfigured"`
	// Notices say what stops phones from enrolling right now, as the web
	// UI's banners do: the service deactivated, no maintenance window
	// open.
	Notices []Notice `json:"notices"`
}

// Notice is the JSON form of something about the whole service that stops
// phones from enrolling right now.
type Notice struct {
	Kind    string `json:"kind" enum:"deactivated,window-closed"`
	Message string `json:"message"`
	// NextOpen is, for window-closed, when the next window opens.
	NextOpen *time.Time `json:"next_open,omitempty"`
}

// Unconfigured is the JSON form of the phones that asked for a device that
// is not configured.
type Unconfigured struct {
	Count     int64              `json:"count"`
	Malformed int64              `json:"malformed"`       // of which the name was not a device name
	Since     *time.Time         `json:"since,omitempty"` // the first one counted
	Latest    []UnconfiguredName `json:"latest"`          // a few of the latest, newest first
}

// UnconfiguredName is one name a phone asked for that is not configured.
type UnconfiguredName struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Remote string    `json:"remote"`
}

// DeviceAttempt is an attempt with the name of its device, for lists that
// mix devices.
type DeviceAttempt struct {
	Device string `json:"device"`
	Attempt
}

// DashboardOf is the view of d; LSC states are evaluated at now.
func DashboardOf(d device.Dashboard, now time.Time) Dashboard {
	v := Dashboard{
		Devices: d.Devices, ByStatus: d.ByStatus, ByLSC: d.ByLSC, ExpiringSoon: d.ExpiringSoon,
		ExpiringWeek: d.ExpiringWeek, RenewalsWaiting: d.RenewalsWaiting,
		Expiring: Devices(d.Expiring, now), InProgress: Devices(d.InProgress, now),
		RecentFailures: make([]DeviceAttempt, 0, len(d.RecentFailures)),
		Notices:        []Notice{},
	}
	if v.ByStatus == nil {
		v.ByStatus = []device.Count{}
	}
	if v.ByLSC == nil {
		v.ByLSC = []device.Count{}
	}
	v.Unconfigured = Unconfigured{Count: d.Unknown.Count, Malformed: d.Unknown.Malformed, Latest: make([]UnconfiguredName, 0, len(d.Unknown.Latest))}
	if !d.Unknown.Since.IsZero() {
		t := d.Unknown.Since
		v.Unconfigured.Since = &t
	}
	for _, n := range d.Unknown.Latest {
		v.Unconfigured.Latest = append(v.Unconfigured.Latest, UnconfiguredName{Name: n.Name, At: n.At, Remote: n.Remote})
	}
	for i, a := range Attempts(d.RecentFailures) {
		v.RecentFailures = append(v.RecentFailures, DeviceAttempt{Device: d.RecentFailures[i].Device, Attempt: a})
	}
	return v
}

// ImportCounts is the JSON form of an import's result.
type ImportCounts struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
}

// ImportCountsOf is the view of c.
func ImportCountsOf(c device.ImportCounts) ImportCounts {
	return ImportCounts{Created: c.Created, Updated: c.Updated, Unchanged: c.Unchanged}
}
