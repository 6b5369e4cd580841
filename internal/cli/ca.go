package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

func init() { subcommands = append(subcommands, newCACmd) }

func newCACmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "View, export and roll over the CAPF certificates"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the CAPF certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.loadAuthority()
			if err != nil {
				return err
			}
			d, err := ca.Describe(a.Certificate())
			if err != nil {
				return err
			}
			w := g.stdout
			if ref, ok := a.Signer().(tokenOnly); ok {
				fmt.Fprintf(w, "File:          none: the key is in a PKCS #11 token, %s\n", ref.ref)
			} else if id, _ := caset.KeyID(a.Certificate()); g.keysInDB() {
				fmt.Fprintf(w, "File:          none: the cluster's, in the database\n")
			} else if dir := filepath.Join(g.dir().CA(), id); fileExists(filepath.Join(dir, ca.CertFile)) {
				fmt.Fprintf(w, "File:          %s\n", filepath.Join(dir, ca.CertFile))
			} else {
				fmt.Fprintf(w, "File:          %s\n", g.dir().CACert())
			}
			fmt.Fprintf(w, "Subject:       %s\n", d.Subject)
			fmt.Fprintf(w, "Issuer:        %s\n", d.Issuer)
			fmt.Fprintf(w, "Serial:        %s\n", d.Serial)
			fmt.Fprintf(w, "Valid from:    %s\n", d.NotBefore.Format(time.RFC3339))
			fmt.Fprintf(w, "Valid until:   %s\n", d.NotAfter.Format(time.RFC3339))
			fmt.Fprintf(w, "Key:           %s\n", d.Key)
			fmt.Fprintf(w, "SHA-1:         %s\n", d.SHA1)
			fmt.Fprintf(w, "SHA-256:       %s\n", d.SHA256)
			fmt.Fprintf(w, "Hash name:     %s\n", d.HashName)
			// Another CAPF's issuing CA carried over by migrate-from:
			// phones with its LSCs authenticate, new LSCs come from the
			// CAPF key.
			for _, c := range a.LSCIssuers() {
				fmt.Fprintf(w, "LSC issuer:    %s (trusted for LSC authentication; SHA-256 %X)\n", c.Subject, sha256.Sum256(c.Raw))
			}
			_, err = w.Write(a.CertificatePEM())
			return err
		},
	}
	var der, all bool
	var out, dir string
	export := &cobra.Command{
		Use:   "export",
		Short: "Print the CAPF certificate (PEM, or DER with --der), or write it under its OpenSSL hash name with --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkExportFlags(dir, out, der); err != nil {
				return err
			}
			if all {
				return g.exportAllCAs(cmd.Context(), dir, out, der)
			}
			a, err := g.loadAuthority()
			if err != nil {
				return err
			}
			data := a.CertificatePEM()
			if der {
				data = a.Certificate().Raw
			}
			if dir != "" {
				name, err := ca.HashFileName(a.Certificate())
				if err != nil {
					return err
				}
				out = filepath.Join(dir, name)
			}
			format := "PEM"
			if der {
				format = "DER"
			}
			if out == "" {
				if _, err := g.stdout.Write(data); err != nil {
					return err
				}
				g.auditCAExport(cmd.Context(), a.Certificate(), format+" to standard output")
				return nil
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("export: write %s: %w", out, err)
			}
			fmt.Fprintln(g.stderr, "wrote", out)
			g.auditCAExport(cmd.Context(), a.Certificate(), format+" to "+out)
			return nil
		},
	}
	export.Flags().BoolVar(&all, "all", false, "every CAPF certificate that is not retired (what trust files list), PEM, oldest first")
	export.Flags().BoolVar(&der, "der", false, "DER instead of PEM")
	export.Flags().StringVarP(&out, "output", "o", "", "write to this file")
	export.Flags().StringVar(&dir, "dir", "", "write into this existing directory as HASH.0, PEM, for OpenSSL's -CApath (as distributed to cluster servers); not with -o or --der")
	cmd.AddCommand(show, export)
	cmd.AddCommand(caSetCommands(g)...)
	cmd.AddCommand(caImportCommands(g)...)
	cmd.AddCommand(caIssuerCommands(g))
	return cmd
}

// exportAllCAs writes every CAPF certificate that is not retired: PEM to
// standard output or out, or each under its hash name into dir.
func (g *globals) exportAllCAs(ctx context.Context, dir, out string, der bool) error {
	if der {
		return usagef("--all and --der exclude each other: several certificates are exported as PEM")
	}
	certs, err := g.trustedCAPFs(ctx)
	if err != nil {
		return err
	}
	var all []byte
	for _, c := range certs {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if dir == "" {
			all = append(all, b...)
			continue
		}
		name, err := ca.HashFileName(c)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("export: write %s: %w", p, err)
		}
		fmt.Fprintln(g.stderr, "wrote", p)
		g.auditCAExport(ctx, c, "PEM to "+p)
	}
	switch {
	case dir != "":
		return nil
	case out == "":
		if _, err := g.stdout.Write(all); err != nil {
			return err
		}
	default:
		if err := os.WriteFile(out, all, 0o644); err != nil {
			return fmt.Errorf("export: write %s: %w", out, err)
		}
		fmt.Fprintln(g.stderr, "wrote", out)
	}
	for _, c := range certs {
		g.auditCAExport(ctx, c, "PEM (--all) to "+map[bool]string{true: "standard output", false: out}[out == ""])
	}
	return nil
}

// checkExportFlags refuses flag combinations that would write something
// other than asked for, and a --dir that is not a directory.
func checkExportFlags(dir, out string, der bool) error {
	if dir == "" {
		return nil
	}
	if out != "" {
		return usagef("-o and --dir exclude each other: --dir names the file itself (HASH.0)")
	}
	if der {
		return usagef("--der and --dir exclude each other: OpenSSL's -CApath reads HASH.0 files as PEM only")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fault.NotFoundf("--dir %s: no such directory (create it first)", dir)
	case err != nil:
		return fmt.Errorf("--dir: %w", err)
	case !fi.IsDir():
		return usagef("--dir %s: not a directory", dir)
	}
	return nil
}

// loadAuthority loads the active CAPF certificate of the CA set (the one
// of before the set while no serve adopted it yet) without creating one.
func (g *globals) loadAuthority() (*ca.Authority, error) {
	ctx := context.Background()
	legacy, err := g.loadLegacyAuthority()
	if err != nil {
		return nil, err
	}
	if !g.caSetShared() {
		return legacy, nil
	}
	st, err := g.openStore(ctx, readOnly)
	if fault.KindOf(err) == fault.NotFound && !store.IsPostgres(g.db) {
		return legacy, nil // a data directory without a database has no CA set
	}
	if err != nil {
		return nil, err
	}
	defer st.Close()
	recs, err := st.ListCAs(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.State != caset.Active || r.KeyRef == g.legacyKeyRef() {
			continue
		}
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, err
		}
		var ms map[string]keys.Material
		if g.cluster != nil {
			ms = g.cluster.materials
		}
		if isTokenKeyRef(r.KeyRef) && g.p11.Module == "" {
			// Commands that only read the certificate need no token.
			return g.tokenCertAuthority(r, legacy)
		}
		a, err := g.caAuthority(ctx, r, cfg, ms)
		if err != nil {
			return nil, err
		}
		a.TrustLSCIssuers(legacy.LSCIssuers()...)
		return a, nil
	}
	return legacy, nil
}

// loadLegacyAuthority loads the CAPF certificate of before the CA set
// (DATA/ca/capf.pem, or the cluster's capf key) without creating one.
func (g *globals) loadLegacyAuthority() (*ca.Authority, error) {
	if g.keysInDB() {
		ck, err := g.clusterKeysOf(context.Background())
		if err != nil {
			return nil, err
		}
		return ck.authority, nil
	}
	if err := g.refuseOwnKeysOnCluster(context.Background()); err != nil {
		return nil, err
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	return ca.Load(g.caOptions(cfg))
}

// auditCAExport records an export of the CAPF certificate (ca.export). The
// certificate is public and ca export works on read-only copies of a data
// directory (a backup, a directory distributed to other servers), so a
// failure to record it is a warning on stderr, not a failed export.
func (g *globals) auditCAExport(ctx context.Context, cert *x509.Certificate, how string) {
	sum := sha256.Sum256(cert.Raw)
	detail := fmt.Sprintf("exported with the CLI as %s, sha256 %s", how, hex.EncodeToString(sum[:]))
	if err := g.recordAudit(ctx, device.AuditCAExport, device.CAExportTarget, detail); err != nil {
		fmt.Fprintf(g.stderr, "warning: the export is not in the audit stream: %v\n", err)
	}
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
