// Package capflist is the domain rule of a phone's capfList: the CAPF
// servers a phone tries, in order, when it needs a certificate operation
// (a phone holds at most five and moves to the next when one does not
// answer). It checks host[:port] entries as the fleet parameter
// capf_servers and `capf phone-config --server` take them, and resolves
// them to the servers a configuration snippet names: the entries in
// order, each without a port taking the port this node listens on for
// phones; no entries, this node alone. It imports only fault, so config
// (which checks the parameter), device (which writes the snippet) and the
// edges can all use it.
package capflist
