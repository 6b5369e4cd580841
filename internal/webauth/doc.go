// Package webauth authenticates HTTP requests to the administration
// listener: a browser session cookie (with its anti-forgery token on every
// state-changing request) or an API bearer token. It puts the Principal in
// the request's context; handlers decide what an anonymous request gets
// (the API a 401 problem, the UI a redirect to the login page). It also
// sets the security headers every response carries.
package webauth
