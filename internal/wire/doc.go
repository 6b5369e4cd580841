// Package wire is the codec for the CAPF protocol that Cisco IP phones and
// softphones speak to a Certificate Authority Proxy Function on TCP 3804.
//
// A message is an 8-byte header (protocol id 0x55, command, session id,
// payload length) followed by a payload of tag·length·value elements. The
// package turns bytes into [Message] values and back, with typed constants for
// every command, element tag and enumerated value, and helpers for the few
// structured element values (the wrapped certificate, SUDI data, SHA-2 signed
// data). It uses only the standard library, does no logging and owns no
// connection: callers read a frame with [ReadFrame] and decode it with
// [Decode], or build a [Message] and write the result of [Message.Append] in
// a single write call.
//
// The decoder is strict about framing (protocol id, lengths, truncation,
// duplicate elements) and liberal about content: unknown commands and tags are
// kept, not rejected, so that firmware which adds elements still talks to us.
package wire
