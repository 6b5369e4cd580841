package revocation

import (
	"bytes"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/capf-server/capf/internal/fault"
)

const (
	// DefaultOCSPValidity is how long an OCSP response is valid.
	DefaultOCSPValidity = time.Hour
	// MaxOCSPRequest bounds an OCSP request, POST body or decoded GET
	// path: one certificate's request (with a nonce) is about 100 bytes.
	MaxOCSPRequest = 1024
)

// serveOCSP answers one OCSP request (RFC 6960 appendix A.1: POST with
// the DER body, or GET with it base64-encoded in the path).
func (s *Server) serveOCSP(w http.ResponseWriter, r *http.Request) {
	var der []byte
	switch r.Method {
	case http.MethodPost:
		if r.URL.Path != PathOCSP {
			http.NotFound(w, r)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxOCSPRequest+1))
		if err != nil {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		if len(body) > MaxOCSPRequest {
			http.Error(w, "OCSP request too large", http.StatusRequestEntityTooLarge)
			return
		}
		der = body
	case http.MethodGet:
		// The path was unescaped once by net/http; base64 may hold '/'
		// and '+', which clients may escape: use the raw path.
		raw := strings.TrimPrefix(r.URL.EscapedPath(), PathOCSP+"/")
		if raw == r.URL.EscapedPath() || len(raw) > 3*base64.StdEncoding.EncodedLen(MaxOCSPRequest) {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		text, err := url.PathUnescape(raw)
		if err == nil {
			der, err = base64.StdEncoding.DecodeString(text)
		}
		if err != nil || len(der) > MaxOCSPRequest {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writeOCSP(w, s.answer(r, der))
}

// writeOCSP sends an OCSP response.
func writeOCSP(w http.ResponseWriter, resp []byte) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
}

// answer returns the signed response to the DER request der, or an error
// response (malformed, unauthorized, internal). A request's nonce is echoed
// in the response; a nonce outside 1..[MaxOCSPNonce] octets is malformed.
func (s *Server) answer(r *http.Request, der []byte) []byte {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse
	}
	nonce, hasNonce, err := requestNonce(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse
	}
	iss, ok := s.issuerOf(req)
	if !ok {
		// Not a CA this responder answers for (RFC 6960 2.3).
		return ocsp.UnauthorizedErrorResponse
	}
	now := s.o.Now().UTC().Truncate(time.Second)
	tmpl := ocsp.Response{
		Status:       ocsp.Unknown,
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now,
		NextUpdate:   now.Add(s.o.OCSPValidity),
		IssuerHash:   req.HashAlgorithm,
		// The signer's certificate goes in the response's certs: OpenSSL's
		// OCSP_basic_verify looks for the signer there (and in the
		// certificates its caller passes), not in the trusted store, so
		// FreeRADIUS refuses a response without it ("signer certificate
		// not found") even when it trusts the CA.
		Certificate: iss.Cert,
	}
	if req.SerialNumber.Sign() > 0 {
		rec, err := s.o.Store.GetCertificate(r.Context(), fmt.Sprintf("%X", req.SerialNumber.Bytes()))
		switch {
		case fault.KindOf(err) == fault.NotFound:
		case err != nil:
			s.o.Logger.Warn("OCSP: look up certificate", "err", err)
			return ocsp.InternalErrorErrorResponse
		case rec.IssuerKeyID != "" && rec.IssuerKeyID != iss.KeyID():
			// Another CA's serial: unknown to this issuer.
		case rec.Revoked():
			tmpl.Status = ocsp.Revoked
			tmpl.RevokedAt = rec.RevokedAt.UTC().Truncate(time.Second)
			tmpl.RevocationReason = int(rec.Reason)
		default:
			tmpl.Status = ocsp.Good
		}
	}
	resp, err := ocsp.CreateResponse(iss.Cert, iss.Cert, tmpl, iss.Signer)
	if err != nil {
		s.o.Logger.Warn("OCSP: sign response", "err", err)
		return ocsp.InternalErrorErrorResponse
	}
	if hasNonce {
		// Echoed unchanged in responseExtensions (RFC 8954 2.1), so the
		// client knows the answer is fresh, not a recorded one.
		if resp, err = withResponseExtension(resp, nonce, iss.Signer); err != nil {
			s.o.Logger.Warn("OCSP: echo nonce", "err", err)
			return ocsp.InternalErrorErrorResponse
		}
	}
	return resp
}

// issuerOf returns the CA whose name and key hashes the request names.
func (s *Server) issuerOf(req *ocsp.Request) (Issuer, bool) {
	if !req.HashAlgorithm.Available() {
		return Issuer{}, false
	}
	for _, iss := range s.issuers() {
		name, key, err := issuerHashes(iss, req.HashAlgorithm)
		if err == nil && bytes.Equal(name, req.IssuerNameHash) && bytes.Equal(key, req.IssuerKeyHash) {
			return iss, true
		}
	}
	return Issuer{}, false
}

// issuerHashes returns the hashes of iss's subject name and of its public
// key's bits (RFC 6960 4.1.1), by h.
func issuerHashes(iss Issuer, h crypto.Hash) (name, key []byte, err error) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(iss.Cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, nil, err
	}
	hn := h.New()
	hn.Write(iss.Cert.RawSubject)
	hk := h.New()
	hk.Write(spki.PublicKey.RightAlign())
	return hn.Sum(nil), hk.Sum(nil), nil
}
