// Package cli is the composition root of the capf command: it parses flags,
// builds the concrete store, authority and servers, and maps errors to exit
// codes. Each subcommand lives in its own file.
package cli
