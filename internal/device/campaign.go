package device

import "time"

// Campaign is one bulk operation: an operation scheduled, in one
// administrative action, for every phone a Find Phone search matched. Its
// progress is what an administrator watches during a re-keying window.
type Campaign struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Actor     string    `json:"actor"`     // who scheduled it, as the audit names them
	Operation Operation `json:"operation"` // the operation scheduled
	Search    string    `json:"search"`    // the search that chose the phones, as text
	Devices   int       `json:"devices"`   // how many phones it covers
	// Skipped is how many phones the search matched that the campaign
	// left out: Delete and Troubleshoot act only on phones with an LSC on
	// record.
	Skipped int `json:"skipped"`
	// CancelledAt is when an administrator cancelled the campaign (zero
	// while it is not), CancelledBy who, as the audit names them.
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	CancelledBy string    `json:"cancelled_by,omitempty"`
}

// Cancelled reports whether the campaign was cancelled.
func (c Campaign) Cancelled() bool { return !c.CancelledAt.IsZero() }

// CampaignCancel is what cancelling a campaign did to its phones.
type CampaignCancel struct {
	Campaign Campaign `json:"campaign"` // the campaign, now cancelled
	// Cancelled phones were still waiting for the campaign's operation
	// (pending, or failed and waiting to retry) and are back to No Pending
	// Operation.
	Cancelled int `json:"cancelled"`
	// Running phones hold a session now; they were left alone.
	Running int `json:"running"`
	// Changed phones were changed since by someone else (an
	// administrator, a later campaign); they were left alone.
	Changed int `json:"changed"`
	// Finished phones completed the operation or were removed: nothing
	// to cancel.
	Finished int `json:"finished"`
}

// Skipped is how many phones cancelling left alone although their
// operation had not finished: Running + Changed.
func (c CampaignCancel) Skipped() int { return c.Running + c.Changed }

// CampaignProgress is where a campaign stands now.
type CampaignProgress struct {
	Campaign
	Done       int `json:"done"`        // phones whose operation succeeded since the campaign started
	Pending    int `json:"pending"`     // still Operation Pending
	InProgress int `json:"in_progress"` // a session holds them now
	Failed     int `json:"failed"`      // their latest result is a failure
	Other      int `json:"other"`       // removed, or re-armed by an administrator since
	// PerMinute counts completions per minute since the campaign started,
	// oldest first, one entry per minute up to now (at most the last 24 h).
	PerMinute []MinuteCount `json:"per_minute"`
	// Remaining estimates the time left at the rate of the last 15 minutes;
	// RemainingKnown is false when there is no rate yet.
	Remaining      time.Duration  `json:"remaining_ns"`
	RemainingKnown bool           `json:"remaining_known"`
	Failures       []FailureGroup `json:"failures"` // grouped by reason, largest first
}

// MinuteCount is the number of completions in the minute that starts at
// Minute.
type MinuteCount struct {
	Minute time.Time `json:"minute"`
	Count  int       `json:"count"`
}

// FailureGroup is the phones of a campaign that failed for one reason.
type FailureGroup struct {
	Reason  string   `json:"reason"` // the Operation Status they failed with
	Devices []string `json:"devices"`
}

// Count is a number of devices with one value of a field.
type Count struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Dashboard is the overview of the fleet.
type Dashboard struct {
	Devices      int     `json:"devices"`
	ByStatus     []Count `json:"by_status"`     // by Operation Status, largest first
	ByLSC        []Count `json:"by_lsc_status"` // none, valid, expired, revoked
	ExpiringSoon int     `json:"expiring_soon"` // valid (not revoked) LSCs that expire within 30 days
	// ExpiringWeek are the valid (not revoked) LSCs that expire within
	// [ExpiringUrgent] (7 days): a renewal that has not completed.
	ExpiringWeek int `json:"expiring_within_7d"`
	// RenewalsWaiting are the phones armed for Install/Upgrade
	// authenticated by their existing LSC (a renewal, by lsc_renew_before
	// or by hand) that have not completed it, but not those whose LSC was
	// revoked since: it cannot renew itself.
	RenewalsWaiting int       `json:"renewals_waiting"`
	Expiring        []Device  `json:"-"` // the first of those, soonest first
	InProgress      []Device  `json:"-"` // operations a session holds now
	RecentFailures  []Attempt `json:"-"` // the latest failed attempts, newest first
	// Unknown are the phones that asked for a device that is not
	// configured (this node's, since it started).
	Unknown UnknownNames `json:"-"`
}
