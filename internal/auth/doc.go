// Package auth decides whether a phone proved who it is in its
// AUTH_RESPONSE, under the authentication mode configured for the device.
//
// The modes are those of CallManager: by authentication string (digits the
// user typed, compared in constant time), by null string (anything is
// accepted), and by existing certificate with precedence LSC or MIC. In the
// certificate modes the phone presents its LSC or its manufacturer-installed
// certificate (MIC) and signs its device name and that certificate with the
// certificate's key (see capf-protocol.md, "Authentication"). An LSC must
// chain to the CAPF certificate and name the device in its subject CN; a MIC
// must chain to the configured manufacturer CA bundle and name the device in
// its CN or a subject alternative name. A phone may also send its SUDI
// certificate and signatures over the session id. Their signatures are
// checked in every mode when present (a bad one refuses the phone); the SUDI
// chain is verified against the manufacturer bundle and the CAPF's issuer,
// and under the default [SUDIPolicy] an untrusted chain is only recorded:
// the credential the device is configured for decides.
//
// A [Verifier] holds the trust pools and the clock; [Verifier.Authenticate]
// returns a [Result] naming the method that actually authenticated the
// phone, or an [*Error] carrying the CallManager failure reason (for the
// operation status) and a specific detail (for the log). Every *Error
// matches fault.ErrUnauthorized.
//
// The package reuses the payload builders of internal/wire, so that what is
// verified here is byte for byte what the protocol says the phone signs.
package auth
