package revocation_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/ocsp"
)

// BenchmarkOCSP measures one OCSP answer (parse, look up, sign with an EC
// P-256 CA) through the handler, without the network.
func BenchmarkOCSP(b *testing.B) {
	f := newFleet(b)
	serial, _ := f.enrol("SEP00000000000A")
	r, _ := f.svc.Get(b.Context(), serial)
	cert, _ := parseCert(r.DER)
	req, err := ocsp.CreateRequest(cert, f.ca.Certificate(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/ocsp", bytes.NewReader(req)))
		if w.Code != http.StatusOK || w.Body.Len() < 100 {
			b.Fatalf("answer %d, %d bytes", w.Code, w.Body.Len())
		}
	}
}
