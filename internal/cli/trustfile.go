package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/trust"
)

// servedTrustFile is the name of the file kept in trust_file_dir.
const servedTrustFile = "ITLFile.tlv"

// startTrustFile keeps trust_file_dir/ITLFile.tlv current while the server
// runs, if trust_file_dir is set: written (if missing or different) before
// the server accepts phones, then checked every minute until ctx ends. The
// returned function stops the checks.
func startTrustFile(ctx context.Context, g *globals, cfg config.Config, capf *x509.Certificate, log *slog.Logger) (stop func(), err error) {
	dir := config.Resolve(g.dataDir, cfg.TrustFileDir)
	if dir == "" {
		return func() {}, nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fault.Invalidf("trust_file_dir %s: not a directory (create it, and let the TFTP/HTTP server serve it)", dir)
	}
	path := filepath.Join(dir, servedTrustFile)
	written, err := syncTrustFile(g, path, capf, time.Now())
	if err != nil {
		return nil, fmt.Errorf("trust_file_dir: %w", err)
	}
	log.Info("trust file", "path", path, "rewritten", written)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if written, err := syncTrustFile(g, path, capf, now); err != nil {
					log.Warn("trust file not updated", "path", path, "err", err)
				} else if written {
					log.Info("trust file rewritten: its certificates changed", "path", path)
				}
			}
		}
	}()
	return cancel, nil
}

// syncTrustFile writes path when the file there is missing, unreadable, or
// lists other records (role and certificate) than this CAPF's list would
// now; a file that differs only in its timestamp is left alone. It reports
// whether it wrote.
func syncTrustFile(g *globals, path string, capf *x509.Certificate, now time.Time) (bool, error) {
	ks, err := g.openKeystore()
	if err != nil {
		return false, err
	}
	entries := trustEntries(ks, capf)
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
	if err := atomicfile.Write(path, b, 0o644, false); err != nil {
		return false, err
	}
	return true, nil
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
