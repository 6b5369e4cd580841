// Package server runs the CAPF protocol over TLS: it accepts connections,
// bounds the TLS handshake and every message with deadlines, drives one
// session state machine per connection, writes each reply in a single write
// call, recovers from panics in a session without affecting others, and
// drains sessions on shutdown.
package server
