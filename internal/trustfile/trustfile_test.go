package trustfile

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/trust"
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

func newKeystore(t *testing.T, now time.Time, validity time.Duration) *trust.Keystore {
	t.Helper()
	ks, err := trust.GenerateKeystore(trust.KeystoreOptions{Dir: "test", Now: func() time.Time { return now }, Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func newCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func build(t *testing.T, signer trust.Identity, entries []trust.Entry) []byte {
	t.Helper()
	s, err := signer.Signing()
	if err != nil {
		t.Fatal(err)
	}
	b, err := trust.Build(trust.BuildOptions{FileName: ServedName, Signer: s, Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parse(t *testing.T, b []byte) *trust.File {
	t.Helper()
	f, err := trust.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEntriesListEveryCAPF(t *testing.T) {
	ks := newKeystore(t, time.Now(), 0)
	a, b := newCert(t, "CAPF-a"), newCert(t, "CAPF-b")
	got := Entries(ks, []*x509.Certificate{a, b})
	want := []struct {
		role trust.Role
		cert *x509.Certificate
	}{{trust.RoleSAST, ks.Primary.Cert}, {trust.RoleSAST, ks.Backup.Cert}, {trust.RoleTFTP, ks.Primary.Cert}, {trust.RoleCAPF, a}, {trust.RoleCAPF, b}}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Role != w.role || got[i].Cert != w.cert {
			t.Errorf("entry %d: %v %s, want %v %s", i, got[i].Role, got[i].Cert.Subject, w.role, w.cert.Subject)
		}
	}
}

func TestCheckSuccessor(t *testing.T) {
	ks, other := newKeystore(t, time.Now(), 0), newKeystore(t, time.Now(), 0)
	capf := newCert(t, "CAPF")
	old := build(t, ks.Primary, Entries(ks, []*x509.Certificate{capf}))
	tests := []struct {
		name     string
		old      []byte
		signer   *x509.Certificate
		accepted bool
		notTrust bool
		sast     int
	}{
		{"primary", old, ks.Primary.Cert, true, false, 0},
		{"backup", old, ks.Backup.Cert, true, false, 0},
		{"another CAPF's SAST", old, other.Primary.Cert, false, false, 2},
		{"TFTP-only certificate is not a SAST", build(t, ks.Primary, []trust.Entry{{Role: trust.RoleTFTP, Cert: other.Primary.Cert}, {Role: trust.RoleSAST, Cert: ks.Primary.Cert}}), other.Primary.Cert, false, false, 1},
		{"not a trust file", []byte("garbage"), ks.Primary.Cert, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := CheckSuccessor(tt.old, tt.signer)
			if s.Accepted != tt.accepted || (s.NotTrustFile != nil) != tt.notTrust || len(s.SAST) != tt.sast {
				t.Fatalf("got %+v; want accepted %v, not a trust file %v, %d SAST names", s, tt.accepted, tt.notTrust, tt.sast)
			}
		})
	}
}

func TestCheckCAPF(t *testing.T) {
	ks := newKeystore(t, time.Now(), 0)
	capf, other := newCert(t, "CAPF-now"), newCert(t, "CAPF-old")
	tests := []struct {
		name    string
		entries []trust.Entry
		listed  bool
		problem string
	}{
		{"listed", Entries(ks, []*x509.Certificate{other, capf}), true, ""},
		{"wrong role", append(Entries(ks, []*x509.Certificate{other}), trust.Entry{Role: trust.RoleCCM, Cert: capf}), false, "listed only with role ccm, not CAPF"},
		{"missing", Entries(ks, []*x509.Certificate{other}), false, "is not in the file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := CheckCAPF(parse(t, build(t, ks.Primary, tt.entries)), capf)
			if l.Listed != tt.listed || !strings.Contains(l.Problem(), tt.problem) || (tt.problem == "") != (l.Problem() == "") {
				t.Fatalf("listing %+v, problem %q; want listed %v, problem containing %q", l, l.Problem(), tt.listed, tt.problem)
			}
			if !strings.Contains(l.Subject, "CAPF-now") {
				t.Errorf("subject %q", l.Subject)
			}
		})
	}
}

func TestSignersValidity(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name            string
		validity, later time.Duration
		expired, soon   bool
	}{
		{"valid", DefaultValidityForTest, 0, false, false},
		{"within a year", 300 * 24 * time.Hour, 0, false, true},
		{"expired", 24 * time.Hour, 48 * time.Hour, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := newKeystore(t, now, tt.validity)
			got := Signers(ks, now.Add(tt.later))
			if len(got) != 2 || got[0].Name != trust.Primary || got[1].Name != trust.Backup {
				t.Fatalf("signers %+v", got)
			}
			for _, s := range got {
				if s.Expired != tt.expired || s.ExpiresSoon != tt.soon || !s.Online || len(s.SHA256) != 64 {
					t.Errorf("%s: %+v; want expired %v, soon %v, online", s.Name, s, tt.expired, tt.soon)
				}
			}
		})
	}
}

// DefaultValidityForTest is a SAST lifetime well beyond ExpiryWarning.
const DefaultValidityForTest = 5 * 365 * 24 * time.Hour

// TestServiceSync: the served file is written when missing, left alone
// when its records are unchanged (unless forced), rewritten for a new
// CAPF certificate; each rewrite is audited with the file's SHA-256 for
// its actor before the file changes, and none happens unaudited.
func TestServiceSync(t *testing.T) {
	ks := newKeystore(t, time.Now(), 0)
	capf := newCert(t, "CAPF")
	audit := &auditLog{}
	now := time.Now()
	svc := &Service{Path: filepath.Join(t.TempDir(), ServedName), Keystore: func() (*trust.Keystore, error) { return ks, nil },
		CAPF: []*x509.Certificate{capf}, Audit: audit, Now: func() time.Time { return now }}
	ctx := t.Context()
	serve := device.Actor{Kind: device.ActorSystem, Name: "serve"}

	cur, err := svc.Current(ctx)
	if err != nil || cur.Raw != nil || len(cur.Problems()) != 1 || !strings.Contains(cur.Problems()[0], "missing") {
		t.Fatalf("before the first sync: %+v, %v", cur, err)
	}
	rw, err := svc.Sync(ctx, serve, false)
	if err != nil || !rw.Written || rw.Records != 4 {
		t.Fatalf("first sync: %+v, %v", rw, err)
	}
	b, _ := os.ReadFile(svc.Path)
	sum := sha256.Sum256(b)
	if len(audit.evs) != 1 || audit.evs[0].Action != AuditServe || audit.evs[0].Actor != serve ||
		!strings.Contains(audit.evs[0].Detail, "sha256 "+hex.EncodeToString(sum[:])) {
		t.Fatalf("audit: %+v", audit.evs)
	}
	cur, err = svc.Current(ctx)
	if err != nil || cur.View == nil || !cur.View.Verified || len(cur.CAPF) != 1 || !cur.CAPF[0].Listed || len(cur.Problems()) != 0 {
		t.Fatalf("after the sync: %+v, %v, problems %v", cur, err, cur.Problems())
	}

	now = now.Add(time.Hour)
	if rw, err := svc.Sync(ctx, serve, false); err != nil || rw.Written || len(audit.evs) != 1 {
		t.Fatalf("unchanged records: %+v, %v, %d events", rw, err, len(audit.evs))
	}
	admin := device.Actor{Kind: device.ActorWeb, Name: "admin"}
	if rw, err := svc.Sync(ctx, admin, true); err != nil || !rw.Written || len(audit.evs) != 2 || audit.evs[1].Actor != admin {
		t.Fatalf("forced: %+v, %v, %+v", rw, err, audit.evs)
	}

	// A new CAPF certificate whose rewrite cannot be audited: the old
	// file stays, and the page says the current one is not listed.
	before, _ := os.ReadFile(svc.Path)
	svc.CAPF = []*x509.Certificate{newCert(t, "CAPF-new")}
	audit.err = errors.New("database is read-only")
	if rw, err := svc.Sync(ctx, serve, false); err == nil || rw.Written || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("unaudited rewrite: %+v, %v", rw, err)
	}
	if after, _ := os.ReadFile(svc.Path); string(after) != string(before) {
		t.Fatal("the file changed although its rewrite could not be audited")
	}
	cur, _ = svc.Current(ctx)
	if p := cur.Problems(); len(p) != 1 || !strings.Contains(p[0], "CAPF-new") || !strings.Contains(p[0], "not in the file") {
		t.Fatalf("problems with a stale file: %v", p)
	}

	os.WriteFile(svc.Path, []byte("garbage"), 0o644)
	cur, _ = svc.Current(ctx)
	if cur.View != nil || !strings.Contains(strings.Join(cur.Problems(), ""), "not a trust file") {
		t.Fatalf("garbage: %+v", cur)
	}

	none := &Service{Keystore: svc.Keystore}
	if _, err := none.Current(ctx); !errors.Is(err, ErrNoServedFile) {
		t.Errorf("no trust_file_dir: %v", err)
	}
	if _, err := none.Sync(ctx, admin, true); !errors.Is(err, ErrNoServedFile) {
		t.Errorf("no trust_file_dir: sync %v", err)
	}
}
