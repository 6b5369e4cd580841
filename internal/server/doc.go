// Package server runs the CAPF protocol over TLS: it accepts connections,
// closes at once those over the per-address or total connection cap (before
// any TLS work), backs off when accept fails, bounds the TLS handshake and
// every message with deadlines, drives one session state machine per
// connection, writes each reply in a single write call, logs one bounded,
// sanitised line per session, recovers from panics in a session without
// affecting others, and drains sessions on shutdown. TLSConfig chooses the
// cipher suites of the legacy profile per ClientHello.
package server
