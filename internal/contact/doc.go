// Package contact keeps what phones' contacts that end before a session
// starts teach the administrator, without letting a phone that hammers the
// service turn each refusal into a database write: a [Recorder] keeps the
// newest contact per device in memory and writes them in one batch per
// interval, and [Strangers] counts the device names that are not configured
// and remembers a few of the latest, bounded and rate-limited, since a
// stranger chooses them.
package contact
