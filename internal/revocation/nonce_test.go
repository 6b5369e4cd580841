package revocation_test

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/ocsp"
)

var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// withExtensions returns the OCSP request der with exts as its request
// extensions (RFC 6960 4.1.1 requestExtensions); x/crypto/ocsp cannot
// make such a request.
func withExtensions(t *testing.T, der []byte, exts []pkix.Extension) []byte {
	t.Helper()
	var req struct {
		TBSRequest struct {
			RequestList asn1.RawValue
			Extensions  []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
	}
	if rest, err := asn1.Unmarshal(der, &req); err != nil || len(rest) != 0 {
		t.Fatalf("parse request: %v, %d bytes left", err, len(rest))
	}
	req.TBSRequest.Extensions = exts
	out, err := asn1.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nonceExt is a nonce extension whose extnValue is an OCTET STRING of
// n octets, as openssl and RFC 8954 send it.
func nonceExt(t *testing.T, n int) pkix.Extension {
	t.Helper()
	v, err := asn1.Marshal(bytes.Repeat([]byte{0xA5}, n))
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidNonce, Value: v}
}

// TestOCSPNonce: a request's nonce of 1 to 32 octets comes back unchanged
// in a response that verifies under the CA; a request without one gets
// none; a nonce of 0 or over 32 octets (RFC 8954 2.1), one that is not an
// OCTET STRING, or two nonces are malformedRequest.
func TestOCSPNonce(t *testing.T) {
	f := newFleet(t)
	serial, _ := f.enrol("SEP00000000000A")
	f.publish()
	r, _ := f.svc.Get(t.Context(), serial)
	cert, err := parseCert(r.DER)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := ocsp.CreateRequest(cert, f.ca.Certificate(), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 4}, Value: []byte{0x30, 0x00}}
	for _, c := range []struct {
		name      string
		exts      []pkix.Extension
		echo      *pkix.Extension // nil: no nonce in the response
		malformed bool
	}{
		{name: "ok/none", exts: nil},
		{name: "ok/other-extension-only", exts: []pkix.Extension{other}},
		{name: "ok/16-octets", exts: []pkix.Extension{nonceExt(t, 16)}, echo: &[]pkix.Extension{nonceExt(t, 16)}[0]},
		{name: "ok/1-octet", exts: []pkix.Extension{nonceExt(t, 1)}, echo: &[]pkix.Extension{nonceExt(t, 1)}[0]},
		{name: "ok/32-octets-beside-another", exts: []pkix.Extension{other, nonceExt(t, 32)}, echo: &[]pkix.Extension{nonceExt(t, 32)}[0]},
		{name: "fail/33-octets", exts: []pkix.Extension{nonceExt(t, 33)}, malformed: true},
		{name: "fail/empty", exts: []pkix.Extension{nonceExt(t, 0)}, malformed: true},
		{name: "fail/not-octet-string", exts: []pkix.Extension{{Id: oidNonce, Value: []byte{0x02, 0x01, 0x05}}}, malformed: true},
		{name: "fail/raw-bytes", exts: []pkix.Extension{{Id: oidNonce, Value: bytes.Repeat([]byte{0x42}, 16)}}, malformed: true},
		{name: "fail/two-nonces", exts: []pkix.Extension{nonceExt(t, 16), nonceExt(t, 16)}, malformed: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			der := plain
			if c.exts != nil {
				der = withExtensions(t, plain, c.exts)
			}
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/ocsp", bytes.NewReader(der)))
			body := w.Body.Bytes()
			if c.malformed {
				if !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
					t.Fatalf("response = %x, want malformedRequest", body)
				}
				return
			}
			got, err := ocsp.ParseResponseForCert(body, cert, f.ca.Certificate())
			if err != nil {
				t.Fatalf("response does not verify: %v", err)
			}
			if got.Status != ocsp.Good {
				t.Errorf("status %d, want good", got.Status)
			}
			if got.Certificate == nil || !got.Certificate.Equal(f.ca.Certificate()) {
				t.Errorf("the response's certs do not carry its signer (OpenSSL's verifier looks for it there)")
			}
			for _, e := range got.Extensions {
				if e.Id.Equal(oidNonce) {
					t.Errorf("nonce in singleExtensions: %x; RFC 6960 4.4.1 puts it in responseExtensions", e.Value)
				}
			}
			var nonces []pkix.Extension
			for _, e := range responseExtensions(t, body) {
				if e.Id.Equal(oidNonce) {
					nonces = append(nonces, e)
				}
			}
			switch {
			case c.echo == nil && len(nonces) != 0:
				t.Errorf("response nonces %+v, want none", nonces)
			case c.echo != nil && (len(nonces) != 1 || !bytes.Equal(nonces[0].Value, c.echo.Value) || nonces[0].Critical):
				t.Errorf("response nonces %+v, want exactly %x, not critical", nonces, c.echo.Value)
			}
		})
	}
}

// responseExtensions returns the responseExtensions of the OCSP response
// der (RFC 6960 4.2.1), which x/crypto/ocsp does not expose.
func responseExtensions(t *testing.T, der []byte) []pkix.Extension {
	t.Helper()
	var outer struct {
		Status   asn1.Enumerated
		Response struct {
			Type  asn1.ObjectIdentifier
			Bytes []byte
		} `asn1:"explicit,tag:0"`
	}
	var basic struct {
		TBS struct {
			Version     int `asn1:"optional,default:0,explicit,tag:0"`
			ResponderID asn1.RawValue
			ProducedAt  asn1.RawValue
			Responses   asn1.RawValue
			Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
		}
		SigAlg pkix.AlgorithmIdentifier
		Sig    asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(outer.Response.Bytes, &basic); err != nil {
		t.Fatal(err)
	}
	return basic.TBS.Extensions
}
