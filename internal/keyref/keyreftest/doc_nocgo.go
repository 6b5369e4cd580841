//go:build !cgo

// Package keyreftest gives tests a SoftHSM2 token; PKCS #11 needs cgo, so
// without it the package is empty and the tests that use it are not built.
package keyreftest
