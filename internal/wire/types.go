package wire

//go:generate go tool stringer -type=Command,Tag,Reason,AuthType,KeyType,Curve,CertType,HashID -linecomment -output=types_string.go

// ProtocolID is the first byte of every CAPF message.
const ProtocolID = 0x55

// HeaderLen is the size of the fixed message header in bytes.
const HeaderLen = 8

// MaxPayloadLen is the largest payload the 16-bit length field can describe.
const MaxPayloadLen = 0xFFFF

// Command is the message type carried in byte 1 of the header.
type Command uint8

// The CAPF commands. Those marked unobserved in the protocol notes are named
// so that logs print them, but no session sends them.
const (
	CmdAuthRequest               Command = 1  // AUTH_REQUEST
	CmdAuthResponse              Command = 2  // AUTH_RESPONSE
	CmdKeyGenerateRequest        Command = 3  // KEY_GENERATE_REQUEST
	CmdKeyGenerateResponse       Command = 4  // KEY_GENERATE_RESPONSE
	CmdEncryptRequest            Command = 5  // ENCRYPT_REQUEST
	CmdEncryptResponse           Command = 6  // ENCRYPT_RESPONSE
	CmdDecryptRequest            Command = 7  // DECRYPT_REQUEST
	CmdDecryptResponse           Command = 8  // DECRYPT_RESPONSE
	CmdStoreCertificateRequest   Command = 9  // STORE_CERTIFICATE_REQUEST
	CmdStoreCertificateResponse  Command = 10 // STORE_CERTIFICATE_RESPONSE
	CmdFetchCertificateRequest   Command = 11 // FETCH_CERTIFICATE_REQUEST
	CmdFetchCertificateResponse  Command = 12 // FETCH_CERTIFICATE_RESPONSE
	CmdDeleteCertificateRequest  Command = 13 // DELETE_CERTIFICATE_REQUEST
	CmdDeleteCertificateResponse Command = 14 // DELETE_CERTIFICATE_RESPONSE
	CmdEndSession                Command = 15 // END_SESSION
	CmdRetryLater                Command = 16 // RETRY_LATER
	CmdRequestInProgress         Command = 17 // REQUEST_IN_PROGRESS
	CmdStatusRequest             Command = 18 // STATUS_REQUEST
	CmdStatusResponse            Command = 19 // STATUS_RESPONSE
	CmdAbortRequest              Command = 20 // ABORT_REQUEST
	CmdAbortResponse             Command = 21 // ABORT_RESPONSE
	CmdSignCertificateRequest    Command = 22 // SIGN_CERTIFICATE_REQUEST
	CmdSignCertificateResponse   Command = 23 // SIGN_CERTIFICATE_RESPONSE
)

// Tag identifies an element inside a message payload.
type Tag uint8

// The CAPF element tags.
const (
	TagReason          Tag = 1  // REASON
	TagReasonInfo      Tag = 2  // REASON_INFO
	TagCertificateType Tag = 3  // CERTIFICATE_TYPE
	TagCertificate     Tag = 4  // CERTIFICATE
	TagCertificateID   Tag = 5  // CERTIFICATE_ID
	TagSignedData      Tag = 6  // SIGNED_DATA
	TagVersion         Tag = 7  // VERSION
	TagAuthType        Tag = 8  // AUTH_TYPE
	TagPublicKey       Tag = 9  // PUBLIC_KEY
	TagKeySize         Tag = 10 // KEY_SIZE
	TagPassword        Tag = 11 // PASSWORD
	TagRetryDelay      Tag = 12 // RETRY_DELAY
	TagDeviceName      Tag = 13 // DEVICE_NAME
	TagSUDIData        Tag = 16 // SUDI_DATA
	TagKeyType         Tag = 17 // KEY_TYPE
	TagCurve           Tag = 18 // CURVE
	TagDigestType      Tag = 19 // DIGEST_TYPE
	TagSHA2SignedData  Tag = 20 // SHA2_SIGNED_DATA
)

// Reason is the one-byte result code carried by the REASON element.
type Reason uint8

// The reason codes seen on the wire. Other values exist in Cisco's
// implementation; they print as Reason(N).
const (
	ReasonNoAction      Reason = 0 // no-action
	ReasonSuccess       Reason = 1 // success
	ReasonRefused       Reason = 7 // refused
	ReasonUnknownDevice Reason = 9 // unknown-device
)

// AuthType is the value of the AUTH_TYPE element.
type AuthType uint8

// The authentication types a phone may announce.
const (
	AuthNone       AuthType = 0 // none
	AuthPassword   AuthType = 1 // password
	AuthNoPassword AuthType = 2 // no-password
	AuthLSC        AuthType = 3 // LSC
	AuthMIC        AuthType = 4 // MIC
)

// KeyType is the value of the KEY_TYPE element.
type KeyType uint8

// The key types a CAPF may ask a phone to generate.
const (
	KeyRSA KeyType = 0 // RSA
	KeyEC  KeyType = 1 // EC
)

// Curve is the value of the CURVE element.
type Curve uint8

// The elliptic curves a CAPF may ask a phone to use.
const (
	CurveP256 Curve = 0 // P-256
	CurveP384 Curve = 1 // P-384
	CurveP521 Curve = 2 // P-521
)

// CertType is the value of the CERTIFICATE_TYPE element and of the type byte
// inside a wrapped certificate.
type CertType uint8

// The certificate types.
const (
	CertLSC CertType = 1 // LSC
	CertMIC CertType = 2 // MIC
)

// HashID names the digest used for a signature in SHA2_SIGNED_DATA and in
// SUDI_DATA blocks.
type HashID uint8

// The hash identifiers.
const (
	HashSHA1   HashID = 1 // SHA-1
	HashSHA256 HashID = 2 // SHA-256
	HashSHA512 HashID = 3 // SHA-512
)
