// Package account holds the administrators of the CAPF service: accounts
// with passwords (argon2id), API tokens (stored hashed), browser sessions
// with idle and absolute expiry, and the throttling of failed logins. The
// web UI, the REST API and `capf admin` all go through its Service.
package account
