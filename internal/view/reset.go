package view

import (
	"time"

	"github.com/capf-server/capf/internal/device"
)

// Reset is the JSON form of a phone's latest reset (Save, then Reset).
type Reset struct {
	Device string    `json:"device"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"` // why it failed, short and sanitized
}

// ResetOf returns the view of r, or nil when no reset is on record.
func ResetOf(r device.Reset) *Reset {
	if r.IsZero() {
		return nil
	}
	return &Reset{Device: r.Device, At: r.At, Actor: r.Actor, OK: r.OK, Reason: r.Reason}
}

// BulkReset is the JSON form of a reset of a search result.
type BulkReset struct {
	Matched int      `json:"matched"`
	Failed  int      `json:"failed"`
	Resets  []Reset  `json:"resets"`
	Skipped []string `json:"skipped"`
	Stopped string   `json:"stopped,omitempty"`
}

// BulkResetOf returns the view of b.
func BulkResetOf(b device.BulkReset) BulkReset {
	v := BulkReset{Matched: b.Matched, Failed: b.Failed(), Resets: []Reset{}, Skipped: b.Skipped, Stopped: b.Stopped}
	if v.Skipped == nil {
		v.Skipped = []string{}
	}
	for _, r := range b.Resets {
		v.Resets = append(v.Resets, *ResetOf(r))
	}
	return v
}
