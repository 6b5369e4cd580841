// Package datadir names the files of a CAPF data directory: the one place
// that knows the layout (capf.db, capf.json, ca/, trace/, phones/,
// serve.lock), and that tells an initialised data directory from a
// mistyped path.
package datadir
