// Package api is the REST API of the administrator's workplace, /api/v1:
// JSON resources over the same application layer the CLI uses
// (device.Service and its siblings), with errors as RFC 9457 problem
// details and an OpenAPI 3.1 document that huma generates from the very Go
// types the handlers take and return, so the document cannot drift from
// the code.
//
// Authentication happens before this package: a middleware (webauth) puts
// the request's account.Principal into its context. Every operation here
// demands one (401 otherwise), every write demands the admin role (403
// otherwise), and accounts and tokens demand the admin role even to read.
// No business rule lives in a handler: a handler translates JSON into a
// domain call and the domain's error into a problem, once, in [server.fail].
package api
