// Package device is the CAPF domain: a phone's CAPF settings ([Device]), the
// certificate operation it has pending, the status vocabulary administrators
// know from CallManager, the history of attempts, the issued certificates,
// the [Store] contract every backend implements, and [Service], which holds
// every administrative use case (add, change, find, import, remove) so that
// the CLI, the REST API and the web UI behave the same.
package device
