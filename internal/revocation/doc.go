// Package revocation publishes the revocation status of the LSCs a CAPF
// issued, per issuing CA: [Publisher] builds each CA's CRL (RFC 5280,
// signed by the CA that issued the LSCs) from the revocations in the
// database and stores it there, on one node of the fleet at a time (the
// caller runs it under a lease); [Server], on every node, keeps the
// latest CRL of each CA from the database, writes it to a directory (DER
// and PEM) and serves it over plain HTTP (CRL fetchers use HTTP) with an
// OCSP responder (RFC 6960) beside it.
//
// A CA is known by its key id: the hex of its certificate's subject key
// identifier, which is the authority key identifier of every LSC it signs.
package revocation
