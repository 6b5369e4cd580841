package device

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Contact is a phone's latest contact with the CAPF service, whatever became
// of it: a session that ran, or a connection refused before one started
// (outside the maintenance windows, at the concurrency limit, with the
// device busy, the address out of guesses, the service deactivated). It is
// the answer to "why has this phone not enrolled?". The session owns it:
// administrators never write it, and writing it never changes the device's
// configuration, status or revision.
type Contact struct {
	Device  string    // the device the phone named (for Store.RecordContacts)
	At      time.Time // when; zero: the phone never made contact
	Remote  string    // the phone's address (host:port)
	Outcome string    // one of the Contact* outcomes
	Reason  string    // why, in words, for the administrator (bounded)
}

// The outcomes of a contact.
const (
	ContactInProgress = "in-progress" // a session started and has not ended
	ContactSuccess    = "success"     // the operation succeeded
	ContactFailed     = "failed"      // the session or its authentication failed
	ContactRetryLater = "retry-later" // told RETRY_LATER before a session started
	ContactNoAction   = "no-action"   // nothing was pending
	ContactRefused    = "refused"     // ended before a session started, not to come back soon
)

// MaxContactReason bounds the reason kept with a contact.
const MaxContactReason = 512

// IsZero reports whether no contact is on record.
func (c Contact) IsZero() bool { return c.At.IsZero() }

// ResultContact returns the outcome and reason of the contact that ended
// with the Operation Status result and the detail reason, as the history
// records them.
func ResultContact(result, reason string) (outcome, text string) {
	outcome = ContactFailed
	if strings.HasSuffix(result, " Success") {
		outcome = ContactSuccess
	}
	text = result
	if reason != "" {
		text += ": " + reason
	}
	return outcome, BoundReason(text)
}

// BoundReason cuts s to at most MaxContactReason bytes, at a character
// boundary.
func BoundReason(s string) string {
	if len(s) <= MaxContactReason {
		return s
	}
	n := MaxContactReason
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// UnknownNames tallies the phones that asked for a device that is not
// configured: "phones that asked but are not configured".
type UnknownNames struct {
	Count     int64         // every such request since Since
	Malformed int64         // of which the name was not a device name at all
	Since     time.Time     // the first one counted; zero: none
	Latest    []UnknownName // a few of the latest names, newest first (bounded, rate-limited)
}

// UnknownName is one name a phone asked for that is not configured. Name
// passed NormalizeName (or is "(malformed name)"); it is still a
// stranger's text, to be escaped wherever it is shown.
type UnknownName struct {
	Name   string
	At     time.Time
	Remote string
}
