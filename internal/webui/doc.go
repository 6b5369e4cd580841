// Package webui is the server-rendered administration UI: the windows of
// the seed (Find and List Phones, Phone Configuration with the CAPF section
// of table 6-2, Service Parameters, Service Activation, the CAPF
// certificate and report) plus login, bulk campaigns, CSV import, the audit
// stream and a dashboard.
//
// Pages are html/template; the one style sheet and the one script are
// embedded and served from /static/, so the UI needs no CDN and no build
// step and runs under a CSP without inline script or style. Every write
// goes through the same application layer as the CLI and the REST API
// (device.Service and its siblings); a handler only translates a form into
// a call and an error into a message next to the field it names.
//
// The handler expects webauth.Middleware in front of it: it reads the
// principal from the request context, redirects anonymous page requests to
// /login and refuses writes from a read-only principal with a 403 page.
package webui
