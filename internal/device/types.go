package device

import (
	"fmt"
	"strings"
	"time"
)

// SecurityProfile is the device security mode of the phone.
type SecurityProfile string

// The security profiles.
const (
	NonSecure     SecurityProfile = "non-secure"
	Authenticated SecurityProfile = "authenticated"
	Encrypted     SecurityProfile = "encrypted"
)

// AuthMode is how a phone must authenticate to CAPF.
type AuthMode string

// The authentication modes of the seed's table 6-2.
const (
	AuthString AuthMode = "string" // By Authentication String
	AuthNull   AuthMode = "null"   // By Null String
	AuthLSC    AuthMode = "lsc"    // By Existing Certificate (Precedence LSC)
	AuthMIC    AuthMode = "mic"    // By Existing Certificate (Precedence MIC)
)

// Operation is the certificate operation scheduled for a phone.
type Operation string

// The certificate operations.
const (
	OpNone         Operation = "none"         // No Pending Operation
	OpInstall      Operation = "install"      // Install/Upgrade
	OpDelete       Operation = "delete"       // Delete
	OpTroubleshoot Operation = "troubleshoot" // Troubleshoot
)

// KeySpec is the key type and size a phone is asked to generate.
type KeySpec string

// The key specifications a phone can be asked for.
const (
	RSA512  KeySpec = "rsa512"
	RSA1024 KeySpec = "rsa1024"
	RSA2048 KeySpec = "rsa2048"
	RSA3072 KeySpec = "rsa3072"
	RSA4096 KeySpec = "rsa4096"
	EC256   KeySpec = "ec256"
	EC384   KeySpec = "ec384"
	EC521   KeySpec = "ec521"
)

// Label returns the name CallManager shows for the profile.
func (p SecurityProfile) Label() string {
	switch p {
	case NonSecure:
		return "Non Secure"
	case Authenticated:
		return "Authenticated"
	case Encrypted:
		return "Encrypted"
	}
	return string(p)
}

// Label returns the name CallManager shows for the mode.
func (m AuthMode) Label() string {
	switch m {
	case AuthString:
		return "By Authentication String"
	case AuthNull:
		return "By Null String"
	case AuthLSC:
		return "By Existing Certificate (Precedence LSC)"
	case AuthMIC:
		return "By Existing Certificate (Precedence MIC)"
	}
	return string(m)
}

// Label returns the name CallManager shows for the operation.
func (o Operation) Label() string {
	switch o {
	case OpNone:
		return "No Pending Operation"
	case OpInstall:
		return "Install/Upgrade"
	case OpDelete:
		return "Delete"
	case OpTroubleshoot:
		return "Troubleshoot"
	}
	return string(o)
}

// verb is the word CallManager puts in front of Success/Failed.
func (o Operation) verb() string {
	switch o {
	case OpInstall:
		return "Upgrade"
	case OpDelete:
		return "Delete"
	case OpTroubleshoot:
		return "Troubleshoot"
	}
	return "Operation"
}

// Label names the key as the UI shows it and the report writes it:
// "RSA 2048", "EC P-256".
func (k KeySpec) Label() string {
	switch {
	case k.IsRSA():
		return fmt.Sprintf("RSA %d", k.Bits())
	case strings.HasPrefix(string(k), "ec"):
		return fmt.Sprintf("EC P-%d", k.Bits())
	}
	return string(k)
}

// IsRSA reports whether the spec asks for an RSA key.
func (k KeySpec) IsRSA() bool { return strings.HasPrefix(string(k), "rsa") }

// Bits returns the RSA modulus size or the EC curve size of the spec.
func (k KeySpec) Bits() int {
	var n int
	_, _ = fmt.Sscanf(strings.TrimLeft(string(k), "rsaec"), "%d", &n)
	return n
}

// Operation Status values, in CallManager's words.
const (
	StatusNone       = "None"
	StatusPending    = "Operation Pending"
	StatusInProgress = "Operation In Progress"
)

// Failure reasons shown after "<Operation> Failed: ".
const (
	ReasonInvalidAuthString  = "Invalid Authentication String"
	ReasonInvalidLSC         = "Invalid LSC"
	ReasonInvalidMIC         = "Invalid MIC"
	ReasonInvalidCredentials = "Invalid Credentials"
	ReasonCommFailure        = "Phone Communication Failure"
	ReasonKeyGenFailed       = "Key Generation Failed"
	ReasonKeyGenTimeout      = "Key Generation Timeout"
	ReasonLate               = "User Initiated Request Late/Timedout"
	ReasonInvalidPublicKey   = "Invalid Public Key"
	ReasonStoreRefused       = "Phone Refused Certificate"
	ReasonNoCertificate      = "No Certificate On Phone"
	ReasonInternal           = "Internal Error"
	ReasonServerRestart      = "Interrupted By Server Restart"
	// ReasonTooManyAuthFailures: the authentication string was used up by
	// too many wrong guesses; the administrator must set a new one.
	ReasonTooManyAuthFailures = "Too Many Authentication Failures"
	ReasonAbortedOnPhone      = "Aborted On Phone"
	ReasonInvalidCertificate  = "Invalid Certificate"
	ReasonPhoneRefusedDelete  = "Phone Refused Delete"
)

// SuccessStatus returns the status after op completed, e.g. "Upgrade Success".
func SuccessStatus(op Operation) string { return op.verb() + " Success" }

// FailedStatus returns the status after op failed, e.g.
// "Upgrade Failed: Invalid Authentication String".
func FailedStatus(op Operation, reason string) string {
	if reason == "" {
		return op.verb() + " Failed"
	}
	return op.verb() + " Failed: " + reason
}

// Certificate is a certificate CAPF knows a phone holds.
type Certificate struct {
	Serial    string // upper-case hex, no separators
	Issuer    string // issuer distinguished name
	NotBefore time.Time
	NotAfter  time.Time
	DER       []byte
	// RevokedAt is when the LSC was revoked, as its issuance record says
	// (by hand, or superseded or deleted); zero while it is not. The
	// stores fill it when they read a device and ignore it when they
	// write one: the revocation records are its only source.
	RevokedAt time.Time
}

// Device is one phone's CAPF record.
type Device struct {
	Name            string
	Description     string
	SecurityProfile SecurityProfile
	AuthMode        AuthMode
	AuthString      string // 4–10 digits, or empty; used up by a successful operation
	Operation       Operation
	Key             KeySpec
	Deadline        time.Time // Operation Completes By; zero means none
	Status          string    // Operation Status, read-only for administrators
	LSC             *Certificate
	CreatedAt       time.Time
	UpdatedAt       time.Time

	// Session-owned counters, read-only for administrators.

	// AuthFailures counts consecutive authentication-string guesses that
	// were evaluated and failed (each is counted before it is evaluated);
	// a successful authentication or a new string resets it.
	AuthFailures int
	// LastAuthFailure is when the latest of those guesses was evaluated.
	LastAuthFailure time.Time
	// AttemptsTotal counts every attempt ever recorded for the device; the
	// history keeps only the most recent ones.
	AttemptsTotal int64
	// Rev counts the administrators' changes to what a session acts on
	// (operation, mode, string, key). A claim names the revision its
	// session read, so a session never acts on a configuration that changed
	// under it.
	Rev int64
	// LastContact is the phone's latest contact, of any outcome (zero: none
	// on record); Device is left empty here.
	LastContact Contact
}

// LSC states, as listed and filtered.
const (
	LSCNone    = "none"
	LSCValid   = "valid"
	LSCExpired = "expired"
	// LSCRevoked is a current LSC on the revocation records (whatever its
	// expiry): it no longer proves the phone, so it is neither valid nor
	// expiring, and no renewal is armed by it.
	LSCRevoked = "revoked"
)

// AuthWarning says, at time now, why the operation armed on d will fail
// to authenticate as configured, or "" when nothing stands in its way
// that the record shows. Authentication by existing certificate with LSC
// precedence makes a phone that holds an LSC present it (it falls back to
// its MIC only without one), and a revoked or expired LSC is refused.
func (d *Device) AuthWarning(now time.Time) string {
	if d.Operation == OpNone || d.Operation == "" || d.AuthMode != AuthLSC {
		return ""
	}
	switch d.LSCState(now) {
	case LSCRevoked:
		return "its LSC is revoked: with " + AuthLSC.Label() + " the phone presents it and is refused; authenticate by string, null string or " + AuthMIC.Label() + " instead"
	case LSCExpired:
		return "its LSC has expired: with " + AuthLSC.Label() + " the phone presents it and is refused; authenticate by string, null string or " + AuthMIC.Label() + " instead"
	}
	return ""
}

// LSCState returns LSCNone, LSCRevoked, LSCExpired or LSCValid at time
// now, the first that applies.
func (d *Device) LSCState(now time.Time) string {
	switch {
	case d.LSC == nil:
		return LSCNone
	case !d.LSC.RevokedAt.IsZero():
		return LSCRevoked
	case now.After(d.LSC.NotAfter):
		return LSCExpired
	}
	return LSCValid
}

// Attempt is one phone session as kept in the history.
type Attempt struct {
	ID         int64
	Device     string
	Operation  Operation // the operation pending when the session started
	AuthMode   string    // how the phone authenticated: string, null, lsc, mic, or "" before it did
	Remote     string    // the phone's address
	StartedAt  time.Time
	FinishedAt time.Time // zero while in progress
	Result     string    // the Operation Status it ended with
	Reason     string    // detail for the log and the administrator
	Node       string    // the node whose session holds (or held) the attempt
	Rev        int64     // for a claim: the device's Rev the session read
	// Deadline, for a claim, is the latest its session may still be
	// running ([AttemptDeadline] of the limits the session read): the
	// stale-attempt sweeper fails the attempt only after it, whatever the
	// limits in force by then. Zero: not recorded (an attempt stored
	// before it was, or one closed as it is stored).
	Deadline time.Time
	// SUDI is what became of the SUDI_DATA the phone sent, e.g. "verified"
	// or "not verified: unknown issuer"; "" when it sent none (or the
	// session ended before it was examined).
	SUDI string
	// MaxOpen, for a claim, is the most attempts that may be open at once
	// across every node sharing the database (max_concurrent_operations);
	// 0: no limit. It is not stored.
	MaxOpen int
}

// Claim is what StartAttempt returns: the attempt that now holds the
// device, whose configuration is the one at the revision the claim named.
type Claim struct {
	AttemptID int64
}

// AuthFailure records a failed authentication: a closed attempt in the
// history and, for a wrong authentication string, the consequence of the
// failure counter the guess already incremented.
type AuthFailure struct {
	Attempt Attempt // closed: FinishedAt, Result and Reason set
	// MaxFailures is the limit of consecutive string failures; when the
	// device's counter has reached it, the string is used up. 0: no limit.
	MaxFailures int
}

// StaleQuery selects open attempts for FailStaleAttempts.
type StaleQuery struct {
	Node          string    // only this node's attempts; "" for every node
	StartedBefore time.Time // only attempts that started before; zero: any
	// OverdueAt selects, among the attempts that record a Deadline, only
	// those whose deadline is before it; StartedBefore then applies only
	// to the attempts without one. Zero: StartedBefore applies to all.
	OverdueAt time.Time
	// DeadAt selects only the attempts of nodes that are dead at DeadAt:
	// registered in the node registry (cluster.Store) with a registration
	// that expired at or before DeadAt. The store evaluates it in the
	// same transaction that fails the attempts, so a node that registers
	// anew meanwhile keeps the attempts it starts after. Zero: any node.
	DeadAt time.Time
}

// Issuance records a certificate that left the CA.
type Issuance struct {
	Serial    string // upper-case hex
	Device    string
	AttemptID int64
	Issuer    string
	// IssuerKeyID is the hex of the issuing CA's subject key identifier
	// (the LSC's authority key identifier): with Serial, the key of an
	// LSC across several CAs. Empty for issuances recorded before it was.
	IssuerKeyID string
	IssuedAt    time.Time
	NotBefore   time.Time
	NotAfter    time.Time
	DER         []byte
}

// FetchedCertificate is a certificate a phone returned for Troubleshoot (or
// presented while authenticating during a Troubleshoot session).
type FetchedCertificate struct {
	Device    string
	Type      string // "LSC" or "MIC"
	FetchedAt time.Time
	DER       []byte
}

// Outcome closes an attempt. The store applies it in one transaction.
type Outcome struct {
	AttemptID  int64
	Node       string // the node holding the attempt; must match
	Device     string
	FinishedAt time.Time
	Result     string // new Operation Status of the device and result of the attempt
	Reason     string
	AuthMode   string // how the phone authenticated, if it got that far
	SUDI       string // the outcome of the phone's SUDI_DATA, if it sent one (see Attempt.SUDI)
	// Completed marks the pending operation done: the device's Operation
	// becomes none and its AuthString is cleared (single use).
	Completed bool
	// SetLSC replaces the device's LSC (Install/Upgrade succeeded).
	SetLSC *Certificate
	// ClearLSC removes the device's LSC (Delete succeeded).
	ClearLSC bool
}
