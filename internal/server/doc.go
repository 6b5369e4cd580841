// Package server runs the CAPF protocol over TLS: it accepts connections,
// closes at once those over the per-address cap, at the total cap evicts
// the oldest connection still in its TLS handshake (or, with none, closes
// the new one before any TLS work), shortens the handshake deadline when
// the connections near the cap, backs off when accept fails, bounds the TLS handshake and
// every message with deadlines, drives one session state machine per
// connection, writes each reply in a single write call, logs one bounded,
// sanitised line per session, recovers from panics in a session without
// affecting others, and drains sessions on shutdown. TLSConfig chooses the
// cipher suites of the legacy profile per ClientHello.
package server
