// Package session is the per-connection CAPF state machine, without I/O on
// the network: the server feeds it decoded messages and writes the replies
// it returns. It authenticates the phone, runs the one pending certificate
// operation (Install/Upgrade, Delete, Troubleshoot), records the attempt and
// every issued certificate, and ends the session with the reason code the
// protocol notes prescribe.
//
// States: AwaitAuth → (AwaitKey → AwaitStore | AwaitFetch | AwaitDelete) →
// Done. Every message that does not fit the state ends the session with
// REASON 7 and, once a device is known, a failed status.
package session
