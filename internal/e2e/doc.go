// Package e2e holds the end-to-end tests: the real CAPF server on 127.0.0.1
// with a temporary data directory, administered through the capf command
// line and driven by the phone simulator, over real TLS. It has no code of
// its own outside its tests.
package e2e
