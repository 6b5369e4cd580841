// Package notify asks a phone to restart after its CAPF settings were
// saved (CallManager's "Save, then Reset"): for a phone registered to a SIP
// PBX that is a SIP NOTIFY with "Event: check-sync", which makes a Cisco
// phone re-read its configuration and contact the CAPF.
//
// Two implementations stand behind the one small [Notifier] interface:
// [AMI] speaks the Asterisk Manager Interface (Login, PJSIPNotify, Logoff)
// and [Command] runs an administrator's program with the endpoint name as
// a separate argument (no shell). [Paced] bounds how fast either is used.
// Every error this package returns carries a short reason fit to show an
// administrator and to store: printable ASCII, bounded, never a secret and
// never a peer's raw output.
package notify
