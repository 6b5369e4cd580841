package api

import (
	"context"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// TestTrustFile: GET /trust-file shows the ITL serve keeps, to any
// principal: its records, that the signature verifies and that it lists
// the current CAPF certificate with the CAPF role; a file that lists
// another CAPF says so (listed false, and the problem), a missing file
// says it is missing; a server that keeps none is 404, one without the
// service 503.
func TestTrustFile(t *testing.T) {
	e := newEnv(t)
	ks, err := trust.GenerateKeystore(trust.KeystoreOptions{Dir: "test", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	svc := &trustfile.Service{Path: filepath.Join(t.TempDir(), trustfile.ServedName), CAPF: []*x509.Certificate{e.cert},
		Keystore: func() (*trust.Keystore, error) { return ks, nil }, Now: func() time.Time { return testNow }}
	serve := func(tf TrustFiles) {
		e.srv.o.TrustFiles = tf
		e.srv = newServer(e.srv.o)
		e.h = withTestPrincipal(e.srv.mux)
	}
	serve(svc)

	missing := decode[ServedTrustFile](t, e.do(asViewer, http.MethodGet, Prefix+"/trust-file", nil), http.StatusOK)
	if missing.File != nil || len(missing.Problems) != 1 || !strings.Contains(missing.Problems[0], "missing") {
		t.Errorf("a missing file: %+v", missing)
	}

	if _, err := svc.Sync(context.Background(), device.Actor{Kind: device.ActorSystem, Name: "serve"}, false); err != nil {
		t.Fatal(err)
	}
	got := decode[ServedTrustFile](t, e.do(asViewer, http.MethodGet, Prefix+"/trust-file", nil), http.StatusOK)
	if got.Path != svc.Path || got.File == nil || !got.File.Verified || len(got.Problems) != 0 {
		t.Fatalf("served file: %+v", got)
	}
	if len(got.CAPF) != 1 || !got.CAPF[0].Listed || len(got.CAPF[0].Roles) != 1 || !strings.EqualFold(got.CAPF[0].Roles[0], "capf") {
		t.Errorf("CAPF listing %+v, want listed with the CAPF role", got.CAPF)
	}
	capfRecords := 0
	for _, r := range got.File.Records {
		if strings.EqualFold(r.Role, "capf") {
			capfRecords++
		}
	}
	if capfRecords != 1 {
		t.Errorf("records %+v: want one CAPF record", got.File.Records)
	}

	// The service's CAPF certificate changes and the file is not rebuilt:
	// the file no longer lists the current one.
	other, _, err := ca.LoadOrCreate(ca.Options{Dir: filepath.Join(t.TempDir(), "ca"), KeyAlgorithm: ca.ECP256, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	stale := *svc
	stale.CAPF = []*x509.Certificate{other.Certificate()}
	serve(&stale)
	got = decode[ServedTrustFile](t, e.do(asViewer, http.MethodGet, Prefix+"/trust-file", nil), http.StatusOK)
	if len(got.CAPF) != 1 || got.CAPF[0].Listed || len(got.CAPF[0].Roles) != 0 || len(got.Problems) == 0 || !strings.Contains(strings.Join(got.Problems, "\n"), "not in the file") {
		t.Errorf("a file without the current CAPF: %+v", got)
	}
	if _, err := os.Stat(svc.Path); err != nil {
		t.Fatal(err)
	}

	serve(&trustfile.Service{})
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/trust-file", nil), http.StatusNotFound)
	serve(nil)
	problem(t, e.do(asViewer, http.MethodGet, Prefix+"/trust-file", nil), http.StatusServiceUnavailable)
}
