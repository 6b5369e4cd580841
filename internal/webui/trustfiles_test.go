package webui_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// trustEnv is a UI whose Security > Trust File shows a real trust-file
// service over a file in a temporary trust_file_dir, audited in the
// env's store.
func trustEnv(t *testing.T, validity time.Duration) (*env, *trustfile.Service) {
	t.Helper()
	ks, err := trust.GenerateKeystore(trust.KeystoreOptions{Dir: "test", Validity: validity, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	svc := &trustfile.Service{Path: filepath.Join(t.TempDir(), trustfile.ServedName),
		Keystore: func() (*trust.Keystore, error) { return ks, nil }, Now: func() time.Time { return testNow }}
	e := newEnv(t, func(o *webui.Options) { o.TrustFiles = svc })
	svc.CAPF, svc.Audit = []*x509.Certificate{e.cert}, e.store
	return e, svc
}

func trustAudit(t *testing.T, e *env) []device.AuditEvent {
	t.Helper()
	evs, err := e.devices.Audit(context.Background(), device.AuditQuery{Target: trustfile.ServedName})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestTrustFilePage: the page shows the served file's records, signer
// and that it lists the current CAPF certificate, or a warning when it
// is missing or lists another; the SAST signers with their validity; a
// viewer sees and downloads it but may not rebuild it; an administrator's
// rebuild is audited under their name before the file changes.
func TestTrustFilePage(t *testing.T) {
	e, svc := trustEnv(t, 0)
	w := e.get("/security/trust-file", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="trust-problems"`, "the file is missing", `id="signer-primary"`, `id="signer-backup"`)
	wantNoBody(t, w, `id="trust-rebuild"`, `id="trust-download"`)

	if _, err := svc.Sync(context.Background(), device.Actor{Kind: device.ActorSystem, Name: "serve"}, false); err != nil {
		t.Fatal(err)
	}
	served, _ := os.ReadFile(svc.Path)
	w = e.get("/security/trust-file", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="trust-records"`, `<td class="role">SAST</td>`, `<td class="role">TFTP</td>`, `<td class="role">CAPF</td>`,
		"CN=CAPF-test", `<span class="st-ok">verifies</span>`, `<span class="st-ok">listed with the CAPF role</span>`, `id="trust-download"`)
	wantNoBody(t, w, `id="trust-problems"`, `id="trust-rebuild"`, "expires-soon")

	w = e.get("/security/trust-file/ITLFile.tlv", "viewer")
	wantStatus(t, w, http.StatusOK)
	if !bytes.Equal(w.Body.Bytes(), served) || w.Header().Get("Content-Disposition") != `attachment; filename="ITLFile.tlv"` {
		t.Fatalf("download: %d bytes, %q; want the served file", w.Body.Len(), w.Header().Get("Content-Disposition"))
	}

	// A viewer may not rebuild: refused, nothing audited, file unchanged.
	before := len(trustAudit(t, e))
	w = e.post("/security/trust-file", "viewer", url.Values{})
	wantStatus(t, w, http.StatusForbidden)
	if now, _ := os.ReadFile(svc.Path); !bytes.Equal(now, served) || len(trustAudit(t, e)) != before {
		t.Fatal("a viewer's rebuild changed the file or the audit")
	}
	// Without the anti-forgery token: refused too.
	w = e.post("/security/trust-file", "admin", url.Values{webauth.CSRFField: {"wrong"}})
	wantStatus(t, w, http.StatusForbidden)

	w = e.get("/security/trust-file", "admin")
	wantBody(t, w, `id="trust-rebuild"`)
	w = e.post("/security/trust-file", "admin", url.Values{})
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="trust-rewritten"`, "Rebuilt and signed by the primary SAST: 4 records")
	evs := trustAudit(t, e)
	if len(evs) != before+1 || evs[0].Action != trustfile.AuditServe || evs[0].Actor.String() != "web:alice" {
		t.Fatalf("audit after the rebuild: %+v", evs)
	}

	// The service moved to another CAPF certificate the file does not
	// list yet: a clear warning.
	svc.CAPF = []*x509.Certificate{selfSigned(t)}
	w = e.get("/security/trust-file", "viewer")
	wantBody(t, w, `id="trust-problems"`, "is not in the file", `<span class="st-fail">not listed with the CAPF role</span>`)
}

func TestTrustFileSignersExpiring(t *testing.T) {
	e, svc := trustEnv(t, 200*24*time.Hour)
	svc.Path = "" // serve keeps no file: the signers are still shown
	w := e.get("/security/trust-file", "admin")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, `id="trust-none"`, `expires-soon`, "(within a year)")
	wantNoBody(t, w, `id="trust-rebuild"`)
	wantStatus(t, e.get("/security/trust-file/ITLFile.tlv", "viewer"), http.StatusNotFound)
	wantStatus(t, e.post("/security/trust-file", "admin", url.Values{}), http.StatusNotFound)

	svc.Keystore = func() (*trust.Keystore, error) { return nil, fault.NotFoundf("no SAST identities in test") }
	w = e.get("/security/trust-file", "viewer")
	wantStatus(t, w, http.StatusOK)
	wantBody(t, w, "There are no SAST signers yet")

	plain := newEnv(t)
	wantStatus(t, plain.get("/security/trust-file", "viewer"), http.StatusServiceUnavailable)
}
