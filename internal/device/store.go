package device

import (
	"context"
	"time"
)

// Store is the persistence contract for CAPF data. Every backend (SQLite,
// PostgreSQL) implements it and passes the shared suite in store/storetest.
//
// General guarantees:
//   - Every method is safe for concurrent use and honours ctx cancellation.
//   - Errors carry a fault kind: NotFound for a missing device, Conflict for a
//     duplicate, Invalid for a query the store cannot run; anything else is
//     Internal and wraps the driver error.
//   - Times are stored in UTC with at least microsecond precision and come
//     back in UTC; a zero time.Time round-trips as zero.
//   - A method that returns nil has made its change durable: it survives a
//     crash of the process the moment after.
//   - Device names are stored as given; callers normalize them first.
//   - A closure the caller passes (UpdateDevice's change, ImportDevices'
//     and ScheduleCampaign's apply) runs inside the write transaction and
//     may run more than once for one call: PostgreSQL aborts a
//     SERIALIZABLE transaction that collided with another (a serialization
//     failure) and the store runs it again from the start, calling the
//     closure again with the device as the new transaction reads it. A
//     closure must therefore be safe to run again: whatever it does
//     besides returning its result (noting an error to report, drawing a
//     random authentication string) must be something a later run
//     replaces, never adds to (no counters, no I/O, no channel sends).
//     Only the last run's result is written. A run that returns an error
//     ends the call with it; it is not retried. SQLite runs each closure
//     once.
type Store interface {
	// CreateDevice inserts d and appends ev to the audit stream in the same
	// transaction. Conflict if a device of that name exists. CreatedAt and
	// UpdatedAt are stored as given; the session-owned counters start at 0.
	CreateDevice(ctx context.Context, d Device, ev AuditEvent) error
	// GetDevice returns the device called name, or NotFound.
	GetDevice(ctx context.Context, name string) (Device, error)
	// UpdateDevice is an administrator's read-modify-write of one device,
	// in one write transaction: it reads the device as it is now, calls
	// change with a copy, and writes back only the administrator-owned
	// fields (Description, SecurityProfile, AuthMode, AuthString,
	// Operation, Key, Deadline), Status and UpdatedAt as change left them.
	// It never writes the LSC or the session-owned counters, so a session
	// that finishes between an administrator's read and write loses
	// nothing. A new AuthString resets AuthFailures. When something
	// changed it appends an AuditEvent (action AuditDeviceUpdate, the Diff
	// of old and new, by actor at new.UpdatedAt) in the same transaction
	// and reports changed; when nothing changed it writes nothing. An error
	// from change aborts with that error. NotFound if the device is absent.
	UpdateDevice(ctx context.Context, name string, actor Actor, change func(*Device) error) (d Device, changed bool, err error)
	// DeleteDevice removes the device, its history and fetched certificates
	// and appends ev; its issuances are kept (an issuance is never lost).
	// NotFound if absent.
	DeleteDevice(ctx context.Context, name string, ev AuditEvent) error
	// ListDevices returns the page of devices matching q and the total
	// number that match.
	ListDevices(ctx context.Context, q Query) (Page, error)
	// ImportDevices creates or updates the devices called names in one
	// transaction: for each, in order, it calls apply with the stored
	// device (nil when there is none) and writes what apply returns, with
	// the same field ownership as UpdateDevice for an existing device. A
	// row whose administrator-owned fields and status are unchanged is
	// counted Unchanged and not written. Every create and update appends
	// its audit event by actor. A created device is written whole, its LSC
	// included; a created device with an LSC also gets that certificate
	// recorded as an issuance (attempt 0, issued at its NotBefore) unless
	// its serial was recorded before. An error from apply rolls everything
	// back.
	ImportDevices(ctx context.Context, names []string, actor Actor, apply func(i int, old *Device) (Device, error)) (ImportCounts, error)

	// ScheduleCampaign records the campaign c and applies one change to
	// every device q matches (all of them: q's Offset and Limit are
	// ignored), in one transaction. Inside it, it reads the names of the
	// matching devices in name order, then for each calls apply with the
	// stored device and writes what apply returns with the same field
	// ownership as UpdateDevice (Rev moves on as there), appending an
	// AuditDeviceUpdate event by actor (Detail "campaign ID") when
	// something changed. It stores c (CreatedAt, Actor, Operation, Search
	// as given) with its new ID and Devices, the campaign's devices with
	// the Rev each was left at, and an AuditCampaignCreate event by actor
	// targeting "campaign ID". c.Skipped is stored as given. It returns c
	// with ID and Devices set. An
	// error from apply rolls everything back and is returned as it is.
	// When q matches no device it writes nothing and returns c with
	// Devices 0.
	ScheduleCampaign(ctx context.Context, c Campaign, q Query, actor Actor, apply func(old Device) (Device, error)) (Campaign, error)
	// CancelCampaign cancels campaign id, in one write transaction, as
	// actor at time at. For each device of the campaign, in name order, it
	// reads the device as it is now and:
	//   - counts it Finished if it no longer exists, or if its Rev is still
	//     the one the campaign left it at and its Operation is OpNone (a
	//     session completed it);
	//   - counts it Changed, and leaves it alone, if its Rev moved on since
	//     (someone else's change is never undone);
	//   - counts it Running, and leaves it alone, if it has an open
	//     attempt or its status is StatusInProgress;
	//   - otherwise disarms it: Operation OpNone, Status StatusNone if it
	//     was StatusPending (a failure status, the last attempt's fact, is
	//     kept), UpdatedAt at; Rev moves on as UpdateDevice moves it, so a
	//     session that read the device before loses its claim (StartAttempt
	//     at the old Rev is a Conflict), and an AuditDeviceUpdate event by
	//     actor with Detail "campaign ID cancelled" is appended; it is
	//     counted Cancelled.
	// It records CancelledAt and CancelledBy on the campaign and appends an
	// AuditCampaignCancel event by actor targeting "campaign ID" whose
	// Detail gives the counts, in the same transaction. A claim that
	// commits first makes the device Running; a cancel that commits first
	// makes the claim a Conflict: never both. NotFound if there is no such
	// campaign; Conflict, changing nothing, if it was cancelled already.
	CancelCampaign(ctx context.Context, id int64, actor Actor, at time.Time) (CampaignCancel, error)
	// ListCampaigns returns the campaigns, newest first, at most limit
	// (all when limit <= 0).
	ListCampaigns(ctx context.Context, limit int) ([]Campaign, error)
	// CampaignProgress returns campaign id and where each of its devices
	// stands now, from one consistent snapshot; NotFound if there is no
	// such campaign. A device of the campaign is, in this order:
	//   - Other if it no longer exists;
	//   - Done if one of its attempts finished at or after the campaign's
	//     CreatedAt, at the Rev the campaign left the device at, with
	//     result SuccessStatus(Operation) (a "completion");
	//   - Other if its Rev has moved on since (an administrator or a later
	//     campaign changed what it is to do);
	//   - InProgress if its status is StatusInProgress, Pending if it is
	//     StatusPending;
	//   - Failed if its status is a failure (FailedStatus of any
	//     operation), listed in Failures by status: largest group first,
	//     then by reason; names in name order;
	//   - Other otherwise.
	// PerMinute lists the clock minutes (UTC, truncated) in which
	// completions finished, at or after since and CreatedAt, with their
	// counts, oldest first; minutes without any are left out. Remaining and
	// RemainingKnown are left zero for the caller to estimate.
	CampaignProgress(ctx context.Context, id int64, since time.Time) (CampaignProgress, error)
	// CampaignStrings returns, from one consistent snapshot, the devices of
	// campaign id that still exist at the Rev the campaign left them at
	// and have an authentication string, with it, in name order; and how
	// many of its devices no longer exist or moved on to another Rev.
	// NotFound if there is no such campaign.
	CampaignStrings(ctx context.Context, id int64) ([]CampaignString, int, error)
	// Dashboard returns the fleet overview q asks for, from one consistent
	// snapshot: the device count; the count of each Operation Status,
	// largest first, then by status; the counts of LSCNone, LSCValid,
	// LSCExpired and LSCRevoked at q.Now, in that order, zeros included;
	// ExpiringSoon, the LSCs valid at q.Now (so not revoked) that expire
	// before q.ExpiringBefore, and the
	// first q.Limit of them, soonest first (then by name); the devices
	// whose status is StatusInProgress, longest-held first (by UpdatedAt,
	// then name), at most q.InProgressLimit; and the latest q.Limit
	// attempts whose result is a failure, newest first (by FinishedAt).
	Dashboard(ctx context.Context, q DashboardQuery) (Dashboard, error)

	// StartAttempt claims the device for a phone session that has
	// authenticated: in one transaction it checks that the device has no
	// open attempt (Conflict otherwise: at most one open attempt per
	// device, enforced by the database) and that its Rev is still a.Rev
	// (Conflict otherwise: an administrator changed what the session read),
	// inserts a as open and held by a.Node, resets AuthFailures,
	// increments AttemptsTotal, and when an operation is pending sets
	// StatusInProgress. It returns the attempt id. NotFound if the device
	// does not exist. When a.MaxOpen > 0 and that many attempts are open
	// already (any device, any node), it changes nothing and returns a
	// Throttled error; the count and the claim are atomic across every
	// node, so the fleet never holds more than MaxOpen open attempts that
	// claims with MaxOpen made.
	StartAttempt(ctx context.Context, a Attempt) (Claim, error)
	// CountOpenAttempts returns how many attempts are open now, on every
	// node: the operations in progress across the fleet.
	CountOpenAttempts(ctx context.Context) (int, error)
	// RecordIssuance durably records a certificate that is about to be sent
	// to a phone. Conflict if the serial was recorded before.
	RecordIssuance(ctx context.Context, is Issuance) error
	// FinishAttempt applies o in one transaction: the attempt row gets its
	// finish time, auth mode, result and reason; the device gets, as o
	// says, a new or no LSC. If no administrator changed the device's
	// operation, mode, string or key since the claim, the device also gets
	// Result as its status and, when o.Completed, its operation and
	// authentication string cleared; otherwise the administrator's newer
	// configuration stands and only the history records the result.
	// NotFound if the attempt is unknown; Conflict if it is already closed
	// or held by another node than o.Node.
	FinishAttempt(ctx context.Context, o Outcome) error
	// SaveFetchedCertificate keeps a certificate retrieved by Troubleshoot,
	// one record per distinct certificate of a device: a certificate (same
	// DER) the device already has a record of replaces that record, in
	// one transaction, taking fc's type and time. NotFound if the device
	// does not exist.
	SaveFetchedCertificate(ctx context.Context, fc FetchedCertificate) error
	// FailStaleAttempts closes every open attempt that q selects with
	// result FailedStatus(op, reason), and sets that status on devices
	// still marked StatusInProgress. It returns how many attempts it
	// closed. Used at start-up (this node's attempts) and by the sweeper
	// (any node's attempts past the Deadline their claim recorded, or,
	// without one, older than any session can last; the attempts of nodes
	// whose registration expired, StaleQuery.DeadAt). StartAttempt stores
	// a claim's Deadline for this.
	FailStaleAttempts(ctx context.Context, q StaleQuery, reason string) (int, error)

	// CountAuthGuess reserves the evaluation of one authentication-string
	// guess for the device: it increments AuthFailures and sets
	// LastAuthFailure to at, but only if AuthFailures still equals seen
	// (so two sessions, on any node, never evaluate on the same count), the
	// device still has a string, and (when max > 0) AuthFailures is below
	// max (so a session that read the device before its string was used up
	// cannot evaluate one guess too many). It reports whether it did. A
	// successful StartAttempt resets the counter.
	CountAuthGuess(ctx context.Context, name string, seen, max int, at time.Time) (bool, error)
	// RecordAuthFailure appends f.Attempt, closed, to the device's history,
	// increments AttemptsTotal and, unless a session holds the device, sets
	// the attempt's Result as the device's status (the operation stays
	// armed for the phone's retry). When f.MaxFailures > 0, the device's
	// AuthFailures has reached it and its mode is AuthString, the string is
	// used up: AuthString becomes empty, the status (unless a session
	// holds the device) FailedStatus(op, ReasonTooManyAuthFailures), and an
	// AuditAuthStringLocked event by the system is appended; it reports
	// whether that happened now. NotFound if the device does not exist.
	RecordAuthFailure(ctx context.Context, f AuthFailure) (locked bool, err error)

	// RecordContacts records the phones' latest contacts that ended before
	// a session started (a batch: one transaction). Each sets the
	// LastContact of the device c.Device names unless the device has a
	// contact on record that is newer than c.At; it changes nothing else
	// (not the status, UpdatedAt or Rev). A contact for a device that does
	// not exist (deleted since) is skipped. StartAttempt, FinishAttempt and
	// RecordAuthFailure record the contact of their session themselves, in
	// their own transaction: StartAttempt as ContactInProgress at
	// a.StartedAt from a.Remote, FinishAttempt and RecordAuthFailure as
	// ResultContact(Result, Reason) at the finish time from the attempt's
	// remote address.
	RecordContacts(ctx context.Context, cs []Contact) error

	// ListAttempts returns a device's attempts, newest first, at most limit
	// (all kept when limit <= 0). The store keeps only the most recent
	// attempts of each device (see the backend's history limit); the
	// device's AttemptsTotal counts them all.
	ListAttempts(ctx context.Context, device string, limit int) ([]Attempt, error)
	// ListIssuances returns the certificates issued to a device, newest
	// first; for device "" it returns all issuances.
	ListIssuances(ctx context.Context, device string) ([]Issuance, error)
	// ListFetchedCertificates returns the certificates Troubleshoot
	// retrieved from a device, newest first.
	ListFetchedCertificates(ctx context.Context, device string) ([]FetchedCertificate, error)

	// RecordReset keeps r as the latest reset of device r.Device
	// (replacing the one on record) and appends ev, in one transaction.
	// It changes nothing else on the device (not its status, UpdatedAt or
	// Rev); deleting the device deletes its reset. NotFound if the device
	// does not exist.
	RecordReset(ctx context.Context, r Reset, ev AuditEvent) error
	// LastReset returns the latest reset of device name, with Device set;
	// a zero Reset (IsZero) when none is on record or there is no such
	// device.
	LastReset(ctx context.Context, name string) (Reset, error)

	// AppendAudit appends an audit event that goes with no device write.
	AppendAudit(ctx context.Context, ev AuditEvent) error
	// ListAudit returns audit events, newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)

	// Close releases the store's resources.
	Close() error
}

// ImportCounts says how many devices an import created and updated.
type ImportCounts struct {
	Created   int
	Updated   int
	Unchanged int
}

// DashboardQuery says what [Store.Dashboard] evaluates and how much it
// lists.
type DashboardQuery struct {
	Now             time.Time // for the LSC states
	ExpiringBefore  time.Time // an LSC valid at Now that expires before this is expiring soon
	Limit           int       // of the expiring LSCs and the failed attempts listed; <= 0: none
	InProgressLimit int       // of the devices in progress listed; <= 0: none
}

// Field names a device attribute that a query can filter or sort on.
type Field string

// The fields of Find Phone.
const (
	FieldName            Field = "name"
	FieldDescription     Field = "description"
	FieldSecurityProfile Field = "security-profile"
	FieldAuthMode        Field = "auth-mode"
	FieldAuthString      Field = "auth-string"
	FieldOperation       Field = "operation"
	FieldStatus          Field = "status"
	// FieldLSCStatus matches LSCNone, LSCValid, LSCExpired or LSCRevoked
	// (as Device.LSCState says: a revoked LSC is neither valid nor
	// expired), evaluated at Query.Now; only MatchEquals applies.
	FieldLSCStatus Field = "lsc-status"
	// FieldLSCExpires filters with MatchBefore/MatchAfter against an RFC 3339
	// time, and sorts by expiry. Devices without an LSC never match those;
	// MatchEmpty matches them (no LSC on record) and MatchNotEmpty the
	// devices with an LSC on record, valid or expired.
	FieldLSCExpires Field = "lsc-expires"
)

// Match is how a filter compares a field with its value.
type Match string

// The comparisons of Find Phone.
const (
	MatchBeginsWith Match = "begins-with"
	MatchContains   Match = "contains"
	MatchEndsWith   Match = "ends-with"
	MatchEquals     Match = "equals"
	MatchEmpty      Match = "is-empty"
	MatchNotEmpty   Match = "is-not-empty"
	MatchBefore     Match = "before" // FieldLSCExpires only
	MatchAfter      Match = "after"  // FieldLSCExpires only
)

// Filter is one search condition. Text matches ignore case.
type Filter struct {
	Field Field
	Match Match
	Value string
}

// Query selects devices: all filters must hold (a search within results adds
// a filter), sorted by Sort (FieldName when empty) then name, paged by
// Offset and Limit (no limit when Limit <= 0).
type Query struct {
	Filters []Filter
	Sort    Field
	Desc    bool
	Offset  int
	Limit   int
	Now     time.Time // for FieldLSCStatus; the store uses time.Now when zero
}

// Page is one page of a device listing.
type Page struct {
	Devices []Device
	Total   int // devices matching the filters, ignoring Offset and Limit
}
