// Package archtest keeps the layering of docs/architecture.md true: each
// internal package may import only the internal packages listed for it. It
// has no code outside its test.
package archtest
