// Package overview composes, once for every edge, the read-side pictures an
// administrator looks at: a phone's detail (the device, its history,
// Troubleshoot certificates, latest reset, issued LSCs and configuration
// snippet), the rows of the CAPF report, and the fleet dashboard with the
// notices that say what stops phones from enrolling right now.
//
// The CLI, the REST API and the web UI call a [Composer] and only render
// what it returns (text, JSON, HTML, CSV). A Composer reads through narrow
// interfaces it declares itself; the devices a caller may see come from the
// [Audience] the edge passes to each call (device.Reader of the request's
// principal), so that redacting authentication strings for a viewer is a
// property of what the edge passes in, not of code each edge repeats.
//
// The package holds no rule of its own: the device service decides what a
// device, a history or a dashboard is; overview only puts the pieces
// together, evaluated at one clock reading.
package overview
