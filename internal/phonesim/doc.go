// Package phonesim is the phone side of CAPF: a simulated Cisco IP phone (or
// softphone) that connects to a Certificate Authority Proxy Function over
// TLS, authenticates and answers the server's requests to generate a key,
// store, fetch or delete its locally significant certificate (LSC).
//
// It is written from the protocol notes alone and shares no code with the
// server beyond the wire codec, so that a misreading of the protocol cannot
// hide in code both sides use. It imports only the standard library and
// internal/wire.
//
// [Run] plays one phone until the server ends the session with END_SESSION,
// retrying on communication failures as a phone does (3 more times at 30 s).
// Like a phone's capfList, Options.Servers holds up to five servers: when
// one cannot be reached or drops the connection, the phone tries the next
// ([ParseServerList] reads such a list).
// The phone's "flash" is a state directory holding its LSC, its MIC and a
// key pair being enrolled, as PEM files, so that a later run sees an LSC
// installed by an earlier one. Faults (failed key generation, a dropped
// connection on store, a refused store, a power cut after authentication)
// and timing (slow key generation with REQUEST_IN_PROGRESS messages) can be
// injected to exercise a server.
//
// Decisions where the protocol notes leave room:
//
//   - The server may send RETRY_LATER or END_SESSION instead of AUTH_REQUEST
//     as its first message (a busy server); both are accepted.
//   - An END_SESSION without a one-byte REASON is a protocol error.
//   - AUTH_RESPONSE carries exactly what hardware phones send: REASON 1,
//     VERSION, DEVICE_NAME, then PASSWORD for the string and null modes, or
//     CERTIFICATE, SIGNED_DATA and SHA2_SIGNED_DATA for the certificate
//     modes (no PASSWORD then). Never AUTH_TYPE, unless
//     [Options.SendAuthType] asks for it.
//   - SUDI_DATA is sent whenever a SUDI credential is configured, whatever
//     the authentication mode.
//   - RETRY_DELAY is read as big-endian seconds of 1, 2 or 4 bytes; when it
//     is absent or unreadable the phone waits its RetryInterval.
//   - Protocol violations by the server (garbage, a wrong session id, a
//     message split across reads in single-read mode) and an untrusted
//     server certificate end the run at once: they are not retried.
//   - The capfList is walked in order, the next server tried at once when
//     one fails (connect refused or timed out, handshake or session cut
//     off); only a whole list failing in a row costs a retry and its wait,
//     and the next retry starts at the top. After RETRY_LATER the phone
//     asks the same server again: it is alive, and in a cluster every
//     node answers for the same per-device claim. A protocol violation or
//     an untrusted certificate from any server still ends the run.
package phonesim
