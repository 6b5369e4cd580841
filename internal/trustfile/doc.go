// Package trustfile is the trust-file domain service: the rules of this
// CAPF's CTL/ITL files that every edge (the trust commands, serve, the web
// UI) shares. It says what every file lists (both SAST certificates, the
// primary again as TFTP, each CAPF certificate with the CAPF role), when a
// new file is a successor phones accept (signed by one of the old file's
// SAST certificates), whether a file lists the current CAPF certificate
// with the CAPF role, what the SAST signers' validity means, and keeps the
// file serve writes to trust_file_dir current, auditing each rewrite
// before it happens. The file format itself is package trust's.
package trustfile
