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
type Store interface {
	// CreateDevice inserts d. Conflict if a device of that name exists.
	// CreatedAt and UpdatedAt are stored as given.
	CreateDevice(ctx context.Context, d Device) error
	// GetDevice returns the device called name, or NotFound.
	GetDevice(ctx context.Context, name string) (Device, error)
	// UpdateDevice replaces every field of the stored device d.Name (except
	// CreatedAt) with d's. NotFound if it does not exist.
	UpdateDevice(ctx context.Context, d Device) error
	// DeleteDevice removes the device, its history and fetched certificates;
	// its issuances are kept (an issuance is never lost). NotFound if absent.
	DeleteDevice(ctx context.Context, name string) error
	// ListDevices returns the page of devices matching q and the total
	// number that match.
	ListDevices(ctx context.Context, q Query) (Page, error)
	// ImportDevices inserts or replaces every device in ds in one
	// transaction: either all are written or none is. For a device that
	// exists, CreatedAt and LSC are kept and every other field replaced.
	ImportDevices(ctx context.Context, ds []Device) (ImportCounts, error)

	// StartAttempt records the start of a phone session and returns its id.
	// If the device has an operation pending, its status becomes
	// StatusInProgress in the same transaction. NotFound if the device does
	// not exist.
	StartAttempt(ctx context.Context, a Attempt) (int64, error)
	// RecordIssuance durably records a certificate that is about to be sent
	// to a phone. Conflict if the serial was recorded before.
	RecordIssuance(ctx context.Context, is Issuance) error
	// FinishAttempt applies o in one transaction: the attempt row gets its
	// finish time, auth mode, result and reason; the device gets Result as
	// its status and, as o says, a new or no LSC, and its operation and
	// authentication string cleared. NotFound if the attempt is unknown.
	FinishAttempt(ctx context.Context, o Outcome) error
	// SaveFetchedCertificate keeps a certificate retrieved by Troubleshoot.
	SaveFetchedCertificate(ctx context.Context, fc FetchedCertificate) error
	// FailStaleAttempts closes every attempt still open that started before
	// cutoff with result FailedStatus(op, reason), and sets that status on
	// devices still marked StatusInProgress. It returns how many attempts it
	// closed. Used at start-up after a crash.
	FailStaleAttempts(ctx context.Context, cutoff time.Time, reason string) (int, error)

	// ListAttempts returns a device's attempts, newest first, at most limit
	// (all when limit <= 0).
	ListAttempts(ctx context.Context, device string, limit int) ([]Attempt, error)
	// ListIssuances returns the certificates issued to a device, newest
	// first; for device "" it returns all issuances.
	ListIssuances(ctx context.Context, device string) ([]Issuance, error)
	// ListFetchedCertificates returns the certificates Troubleshoot
	// retrieved from a device, newest first.
	ListFetchedCertificates(ctx context.Context, device string) ([]FetchedCertificate, error)

	// Close releases the store's resources.
	Close() error
}

// ImportCounts says how many devices an import created and updated.
type ImportCounts struct {
	Created int
	Updated int
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
	// FieldLSCStatus matches LSCNone, LSCValid or LSCExpired, evaluated at
	// Query.Now; only MatchEquals applies.
	FieldLSCStatus Field = "lsc-status"
	// FieldLSCExpires filters with MatchBefore/MatchAfter against an RFC 3339
	// time, and sorts by expiry. Devices without an LSC never match.
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
