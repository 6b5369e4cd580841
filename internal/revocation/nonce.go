package revocation

import (
	"crypto"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
)

// MaxOCSPNonce is the longest nonce the responder echoes: RFC 8954 2.1
// bounds a nonce to 1..32 octets and has a responder refuse one outside
// that range with malformedRequest.
const MaxOCSPNonce = 32

// oidOCSPNonce is id-pkix-ocsp-nonce (RFC 6960 4.4.1).
var oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// ocspRequestExts is an OCSPRequest (RFC 6960 4.1.1) read only as far as
// its request extensions; golang.org/x/crypto/ocsp does not expose them.
type ocspRequestExts struct {
	TBSRequest struct {
		Version       int           `asn1:"explicit,tag:0,default:0,optional"`
		RequestorName asn1.RawValue `asn1:"explicit,tag:1,optional"`
		RequestList   asn1.RawValue
		Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
	}
	OptionalSignature asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

// requestNonce returns the nonce extension of the DER OCSP request der,
// ready to be echoed unchanged in the response (RFC 8954 2.1: the same
// extnValue), or ok false when the request carries none. A nonce that is
// not an OCTET STRING of 1 to [MaxOCSPNonce] octets, or a second one, is
// an error: the caller answers malformedRequest.
func requestNonce(der []byte) (ext pkix.Extension, ok bool, err error) {
	var req ocspRequestExts
	if _, err := asn1.Unmarshal(der, &req); err != nil {
		return pkix.Extension{}, false, fmt.Errorf("OCSP request extensions: %w", err)
	}
	for _, e := range req.TBSRequest.Extensions {
		if !e.Id.Equal(oidOCSPNonce) {
			continue
		}
		if ok {
			return pkix.Extension{}, false, errors.New("OCSP request: more than one nonce")
		}
		var nonce []byte
		rest, err := asn1.Unmarshal(e.Value, &nonce)
		switch {
		case err != nil || len(rest) != 0:
			return pkix.Extension{}, false, errors.New("OCSP request: nonce is not an OCTET STRING")
		case len(nonce) == 0 || len(nonce) > MaxOCSPNonce:
			return pkix.Extension{}, false, fmt.Errorf("OCSP request: nonce of %d octets, want 1 to %d", len(nonce), MaxOCSPNonce)
		}
		ext, ok = pkix.Extension{Id: oidOCSPNonce, Value: e.Value}, true
	}
	return ext, ok, nil
}

// ocspResponse is an OCSPResponse (RFC 6960 4.2.1).
type ocspResponse struct {
	Status   asn1.Enumerated
	Response struct {
		Type  asn1.ObjectIdentifier
		Bytes []byte
	} `asn1:"explicit,tag:0,optional"`
}

// basicOCSPResponse is a BasicOCSPResponse (RFC 6960 4.2.1) with its
// tbsResponseData kept raw.
type basicOCSPResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

// sigHashes are the hashes of the signature algorithms
// golang.org/x/crypto/ocsp signs with (RSA and ECDSA keys).
var sigHashes = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, crypto.SHA256}, // sha256WithRSAEncryption
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, crypto.SHA384},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, crypto.SHA512},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, crypto.SHA256}, // ecdsa-with-SHA256
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, crypto.SHA384},
	{asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}, crypto.SHA512},
}

// withResponseExtension returns the signed OCSP response resp with ext
// added to its responseExtensions, signed again by signer with the same
// algorithm. golang.org/x/crypto/ocsp writes only singleExtensions, but
// RFC 6960 4.4.1 puts the nonce in responseExtensions, where clients
// (openssl, FreeRADIUS) look for it. resp must have none yet.
func withResponseExtension(resp []byte, ext pkix.Extension, signer crypto.Signer) ([]byte, error) {
	var outer ocspResponse
	if rest, err := asn1.Unmarshal(resp, &outer); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("parse OCSP response: %v", err)
	}
	var basic basicOCSPResponse
	if rest, err := asn1.Unmarshal(outer.Response.Bytes, &basic); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("parse BasicOCSPResponse: %v", err)
	}
	var h crypto.Hash
	for _, s := range sigHashes {
		if s.oid.Equal(basic.SignatureAlgorithm.Algorithm) {
			h = s.hash
		}
	}
	if h == 0 {
		return nil, fmt.Errorf("OCSP response signed with %v: not one this responder re-signs", basic.SignatureAlgorithm.Algorithm)
	}
	// ResponseData ::= SEQUENCE { version [0], responderID, producedAt,
	// responses, responseExtensions [1] EXPLICIT Extensions OPTIONAL }:
	// the extensions go last.
	tbs := basic.TBSResponseData
	if tbs.Class != asn1.ClassUniversal || tbs.Tag != asn1.TagSequence {
		return nil, errors.New("OCSP ResponseData is not a SEQUENCE")
	}
	last := tbs.Bytes
	var lastElem asn1.RawValue
	for len(last) > 0 {
		var err error
		if last, err = asn1.Unmarshal(last, &lastElem); err != nil {
			return nil, fmt.Errorf("parse OCSP ResponseData: %w", err)
		}
	}
	if lastElem.Class != asn1.ClassUniversal || lastElem.Tag != asn1.TagSequence {
		return nil, errors.New("OCSP ResponseData already ends with extensions")
	}
	exts, err := asn1.Marshal([]pkix.Extension{ext})
	if err != nil {
		return nil, fmt.Errorf("marshal response extensions: %w", err)
	}
	extsElem, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: exts})
	if err != nil {
		return nil, fmt.Errorf("marshal response extensions: %w", err)
	}
	newTBS, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true,
		Bytes: append(append([]byte(nil), tbs.Bytes...), extsElem...)})
	if err != nil {
		return nil, fmt.Errorf("marshal ResponseData: %w", err)
	}
	digest := h.New()
	digest.Write(newTBS)
	sig, err := signer.Sign(rand.Reader, digest.Sum(nil), h)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP response: %w", err)
	}
	basic.TBSResponseData = asn1.RawValue{FullBytes: newTBS}
	basic.Signature = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	if outer.Response.Bytes, err = asn1.Marshal(basic); err != nil {
		return nil, fmt.Errorf("marshal BasicOCSPResponse: %w", err)
	}
	out, err := asn1.Marshal(outer)
	if err != nil {
		return nil, fmt.Errorf("marshal OCSP response: %w", err)
	}
	return out, nil
}
