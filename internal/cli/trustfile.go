package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/trust"
)

// servedTrustFile is the name of the file kept in trust_file_dir.
const servedTrustFile = "ITLFile.tlv"

// auditTrustServe is the audit action of each rewrite of the file that
// serve keeps in trust_file_dir.
const auditTrustServe = "trust.serve-rewrite"

// auditAppender records an audit event that goes with no device change
// (the store's AppendAudit).
type auditAppender interface {
	AppendAudit(ctx context.Context, ev device.AuditEvent) error
}

// servedTrust is what the file kept in trust_file_dir lists beyond this
// CAPF's own entries, and where its rewrites are audited.
type servedTrust struct {
	adds  []trust.Entry // trust_file_add, read at start
	audit auditAppender
}

// trustFileAdds reads the trust_file_add entries ("ROLE=CERT.pem", paths
// relative to the data directory): every problem names its entry. The
// SAST role is refused: a file lists this CAPF's two SAST certificates and
// phones take no more.
func trustFileAdds(dataDir string, adds []string) ([]trust.Entry, []string) {
	var (
		out      []trust.Entry
		problems []string
	)
	for _, a := range adds {
		roleName, path, ok := strings.Cut(a, "=")
		if !ok || path == "" {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: want ROLE=CERT.pem, e.g. ccm=asterisk.pem", a))
			continue
		}
		role, err := trust.ParseRole(strings.TrimSpace(roleName))
		if err != nil {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: %v", a, err))
			continue
		}
		if role == trust.RoleSAST {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: the file lists this CAPF's own two SAST certificates, and phones take no more", a))
			continue
		}
		c, err := trust.ReadCertificate(config.Resolve(dataDir, path))
		if err != nil {
			problems = append(problems, fmt.Sprintf("trust_file_add entry %q: %v", a, err))
			continue
		}
		out = append(out, trust.Entry{Role: role, Cert: c})
	}
	return out, problems
}

// startTrustFile writes trust_file_dir/ITLFile.tlv, if trust_file_dir is
// set, when it is missing or different, before the server accepts phones,
// and returns the check that keeps it current: serve runs it every minute
// under the trust-file lease, so one node of a cluster at a time rewrites
// a shared directory (ADR 0010). Each rewrite is audited
// (trust.serve-rewrite, with the file's SHA-256) before the file is
// replaced; at start, a rewrite that cannot be audited stops serve. The
// returned job is nil when there is no trust_file_dir.
func startTrustFile(ctx context.Context, g *globals, cfg config.Config, capf capfCerts, st servedTrust, log *slog.Logger) (job func(context.Context) error, err error) {
	dir := config.Resolve(g.dataDir, cfg.TrustFileDir)
	if dir == "" {
		if len(cfg.TrustFileAdd) > 0 {
			log.Warn("trust_file_add ignored: trust_file_dir is empty, so serve keeps no trust file", "entries", len(cfg.TrustFileAdd))
		}
		return nil, nil
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fault.Invalidf("trust_file_dir %s: not a directory (create it, and let the TFTP/HTTP server serve it)", dir)
	}
	path := filepath.Join(dir, servedTrustFile)
	written, err := syncTrustFile(ctx, g, path, capf, st, time.Now())
	if err != nil {
		return nil, fmt.Errorf("trust_file_dir: %w", err)
	}
	log.Info("trust file", "path", path, "rewritten", written, "records", 3+len(capf())+len(st.adds))
	return func(ctx context.Context) error {
		written, err := syncTrustFile(ctx, g, path, capf, st, time.Now())
		if err != nil {
			return fmt.Errorf("trust file %s not updated: %w", path, err)
		}
		if written {
			log.Info("trust file rewritten: its certificates changed", "path", path)
		}
		return nil
	}, nil
}

// syncTrustFile writes path when the file there is missing, unreadable, or
// lists other records (role and certificate) than this CAPF's list and
// st.adds would now; a file that differs only in its timestamp is left
// alone. Before it writes, it records the rewrite in st.audit (when set)
// and writes nothing if that fails. It reports whether it wrote.
func syncTrustFile(ctx context.Context, g *globals, path string, capf capfCerts, st servedTrust, now time.Time) (bool, error) {
	ks, err := g.openKeystore()
	if err != nil {
		return false, err
	}
	entries := append(trustEntries(ks, capf()...), st.adds...)
	if old, err := os.ReadFile(path); err == nil {
		if f, err := trust.Parse(old); err == nil && f.Verify() == nil && sameRecords(f.Records, entries) {
			return false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	signer, err := ks.Primary.Signing()
	if err != nil {
		return false, err
	}
	b, err := trust.Build(trust.BuildOptions{FileName: servedTrustFile, Signer: signer, Entries: entries, Now: now})
	if err != nil {
		return false, err
	}
	if st.audit != nil {
		sum := sha256.Sum256(b)
		ev := device.AuditEvent{At: now.UTC(), Actor: device.Actor{Kind: device.ActorSystem, Name: "serve"},
			Action: auditTrustServe, Target: servedTrustFile,
			Detail: fmt.Sprintf("rewrote %s: %d records, %d bytes, sha256 %s", path, len(entries), len(b), hex.EncodeToString(sum[:]))}
		if err := st.audit.AppendAudit(ctx, ev); err != nil {
			return false, fmt.Errorf("audit the rewrite of %s: %w", path, err)
		}
	}
	if err := atomicfile.Write(path, b, 0o644, false); err != nil {
		return false, err
	}
	return true, nil
}

// capfCerts gives the CAPF certificates a trust file lists with the CAPF
// role now: every CA of the set that is not retired.
type capfCerts func() []*x509.Certificate

// fixedCAPF lists certs, always.
func fixedCAPF(certs ...*x509.Certificate) capfCerts {
	return func() []*x509.Certificate { return certs }
}

// sameRecords reports whether recs list exactly entries, in order.
func sameRecords(recs []trust.Record, entries []trust.Entry) bool {
	if len(recs) != len(entries) {
		return false
	}
	for i, r := range recs {
		if r.Role != entries[i].Role || !bytes.Equal(r.Certificate, entries[i].Cert.Raw) {
			return false
		}
	}
	return true
}
