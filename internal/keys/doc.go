// Package keys keeps a cluster's key material in its database: the CAPF
// key and certificate, the SAST trust-file signers and the admin CA, so
// that every `capf serve` node on one PostgreSQL database presents the
// same CAPF certificate and signs with the same keys.
//
// A [Record] holds a key's certificate chain in the clear and its private
// key sealed under the cluster's key-encryption key (package kek), with
// the KEK's id beside it. [Store] is the contract a backend implements
// (both do; store/storetest checks it); [Service] seals and opens keys
// over it: [Service.Init] stores a new cluster's keys once and refuses a
// database that holds keys already, [Service.Load] opens them (a wrong
// KEK is an error before anything is used, never a new CA), and [Rotate]
// re-seals every key under a new KEK in one transaction.
//
// What the keys are for is the callers' business: the Service deals in
// certificates and crypto.Signers, and cli turns them into the CAPF
// authority, the SAST keystore and the admin CA.
package keys
