// Package system holds the service-wide administration use cases that are
// not about one device: the service parameters (System > Service
// Parameters: every parameter with its value, default, help and
// validation) and the service activation (Serviceability > Service
// Activation: whether the CAPF phone listener accepts phones). The CLI, the
// REST API and the web UI all go through its Service, and every change is
// audited.
package system
