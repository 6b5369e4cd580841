package cli

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// auditLog records audit events, or refuses them with err.
type auditLog struct {
	mu  sync.Mutex
	evs []device.AuditEvent
	err error
}

func (a *auditLog) AppendAudit(_ context.Context, ev device.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.evs = append(a.evs, ev)
	return nil
}

// syncTrustFile runs one sync of serve's trust-file service for the file
// at path at the time now.
func syncTrustFile(ctx context.Context, g *globals, path string, capf *x509.Certificate, st servedTrust, now time.Time) (bool, error) {
	svc := &trustfile.Service{Path: path, Keystore: g.openKeystore, CAPF: []*x509.Certificate{capf},
		Adds: st.adds, Audit: st.audit, Now: func() time.Time { return now }}
	rw, err := svc.Sync(ctx, serveActor, false)
	return rw.Written, err
}

// TestTrustFileAdd: the trust_file_add certificates are read when serve
// plans its start, every bad entry named in one error, and the ITL that
// serve keeps lists them after its own; each rewrite is audited with the
// file's SHA-256 before the file changes, and none happens unaudited.
func TestTrustFileAdd(t *testing.T) {
	data, capf := newTrustData(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeCert(t, data, "asterisk.pem", "asterisk.example", key)
	os.WriteFile(filepath.Join(data, "not-a-cert.pem"), []byte("hello"), 0o644)
	os.Mkdir(filepath.Join(data, "tftp"), 0o755)

	writeParams := func(t *testing.T, json string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(data, "capf.json"), []byte(json), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bad := []struct {
		name, params string
		want         []string
	}{
		{"fail/entries", `{"trust_file_dir": "tftp", "trust_file_add": ["sip=asterisk.pem", "ccm=missing.pem", "ccm=not-a-cert.pem", "sast=asterisk.pem", "asterisk.pem"]}`,
			[]string{`trust_file_add entry "asterisk.pem": want ROLE=CERT.pem`}},
		{"fail/roles-and-files", `{"trust_file_dir": "tftp", "trust_file_add": ["sip=asterisk.pem", "ccm=missing.pem", "ccm=not-a-cert.pem", "sast=asterisk.pem"]}`,
			[]string{`trust_file_add entry "sip=asterisk.pem"`, `trust_file_add entry "ccm=missing.pem"`, `trust_file_add entry "ccm=not-a-cert.pem"`, `trust_file_add entry "sast=asterisk.pem"`}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			writeParams(t, tt.params)
			out, errOut, code := run(t, data, "config", "validate")
			if code != ExitUsage {
				t.Fatalf("config validate: exit %d, want %d: %s%s", code, ExitUsage, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}

	writeParams(t, `{"trust_file_dir": "tftp", "trust_file_add": ["ccm=asterisk.pem", "app-server=`+filepath.Join(data, "asterisk.pem")+`"]}`)
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	plan, err := planServe(t.Context(), g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.trustAdds) != 2 || plan.trustAdds[0].Role != trust.RoleCCM || plan.trustAdds[1].Role != trust.RoleAppServer {
		t.Fatalf("plan's trust_file_add entries: %+v", plan.trustAdds)
	}
	audit := &auditLog{}
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	if _, _, err := startTrustFile(t.Context(), g, plan.cfg, []*x509.Certificate{capf}, servedTrust{adds: plan.trustAdds, audit: audit}, log); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(data, "tftp", trustfile.ServedName)
	b := mustRead(t, path)
	f, err := trust.Parse(b)
	if err != nil || f.Verify() != nil {
		t.Fatalf("served file: %v", err)
	}
	if len(f.Records) != 6 || f.Records[3].Role != trust.RoleCAPF || f.Records[4].Role != trust.RoleCCM ||
		!bytes.Equal(f.Records[4].Certificate, plan.trustAdds[0].Cert.Raw) || f.Records[5].Role != trust.RoleAppServer {
		t.Fatalf("served file records: %d, want this CAPF's 4 then ccm and app-server", len(f.Records))
	}
	sum := sha256.Sum256(b)
	if len(audit.evs) != 1 || audit.evs[0].Action != trustfile.AuditServe || audit.evs[0].Target != trustfile.ServedName ||
		audit.evs[0].Actor.String() != "system:serve" || !strings.Contains(audit.evs[0].Detail, "sha256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("audit of the rewrite: %+v, want one %s event with sha256 %x", audit.evs, trustfile.AuditServe, sum)
	}

	// Unchanged records: no rewrite, no event. A new CAPF certificate
	// whose rewrite cannot be audited: the old file stays.
	later := time.Now().Add(time.Hour)
	st := servedTrust{adds: plan.trustAdds, audit: audit}
	if written, err := syncTrustFile(t.Context(), g, path, capf, st, later); err != nil || written || len(audit.evs) != 1 {
		t.Fatalf("unchanged: written %v, %v, %d events", written, err, len(audit.evs))
	}
	_, newCAPF := newTrustData(t)
	audit.err = errors.New("database is read-only")
	if written, err := syncTrustFile(t.Context(), g, path, newCAPF, st, later); err == nil || written || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("unaudited rewrite: written %v, err %v; want refused", written, err)
	}
	if !bytes.Equal(mustRead(t, path), b) {
		t.Fatal("the file changed although its rewrite could not be audited")
	}
	audit.err = nil
	if written, err := syncTrustFile(t.Context(), g, path, newCAPF, st, later); err != nil || !written || len(audit.evs) != 2 {
		t.Fatalf("rewrite: written %v, %v, %d events", written, err, len(audit.evs))
	}
	sum = sha256.Sum256(mustRead(t, path))
	if !strings.Contains(audit.evs[1].Detail, hex.EncodeToString(sum[:])) {
		t.Errorf("second rewrite's event %q lacks the file's sha256 %x", audit.evs[1].Detail, sum)
	}
}

// TestTrustFileServiceWithoutDir: without trust_file_dir, serve keeps no
// file, and showing the signers (the web UI's page) does not create them.
func TestTrustFileServiceWithoutDir(t *testing.T) {
	data, capf := newTrustData(t)
	g := &globals{dataDir: data, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	svc, job, err := startTrustFile(t.Context(), g, config.Defaults(), []*x509.Certificate{capf}, servedTrust{}, log)
	if err != nil || job != nil || svc == nil || svc.Path != "" {
		t.Fatalf("startTrustFile: %+v, job %v, %v", svc, job != nil, err)
	}
	if _, err := svc.Signers(t.Context()); fault.KindOf(err) != fault.NotFound {
		t.Fatalf("signers before any exist: %v, want NotFound", err)
	}
	if _, err := os.Stat(g.dir().Trust()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("showing the signers created %s: %v", g.dir().Trust(), err)
	}
}
