// Package lsc is the life of the locally significant certificates the CAPF
// issued after they left it: the inventory of every LSC ever issued
// ([Record], with its device, issuer, validity and [Status]), their
// revocation (by hand, or automatic when a newer LSC supersedes one or an
// LSC is deleted from its phone), and the CRLs the fleet publishes for each
// issuing CA. Everything is keyed by the issuer's key id and the serial, so
// that several CAs can each have their own CRL and OCSP answers.
//
// [Store] is the persistence contract both backends implement (tested in
// store/storetest); [Service] holds the administrator's use cases (list,
// show, revoke) that the CLI and the REST API call.
package lsc
