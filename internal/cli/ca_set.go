package cli

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// caSetCommands are the rollover commands of `capf ca` (ADR 0017):
// regenerate, activate, status and retire.
func caSetCommands(g *globals) []*cobra.Command {
	var alg, tokenKey string
	regenerate := &cobra.Command{
		Use:   "regenerate",
		Short: "Create a new CAPF key and certificate, staged: listed in trust files at once, presented to phones once activated",
		Long: `Create a new CAPF key and certificate, staged: listed in trust files at once, presented to phones once activated.

With --key pkcs11:token=LABEL;object=NAME (and --pkcs11-module, --pin-file)
no key is made: the key pair already in the token signs its own CAPF
certificate there, and the CA set stores only the reference.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tokenKey != "" {
				if alg != "" {
					return usagef("--key-algorithm makes a new key; --key %s uses the token's", tokenKey)
				}
				return g.caRegenerateToken(cmd.Context(), tokenKey)
			}
			if g.p11.Module != "" || g.p11.PINFile != "" {
				return usagef("--pkcs11-module and --pin-file go with --key pkcs11:token=LABEL;object=NAME")
			}
			return g.caRegenerate(cmd.Context(), alg)
		},
	}
	regenerate.Flags().StringVar(&alg, "key-algorithm", "", "rsa2048, rsa3072, rsa4096, ec256 or ec384 (default: the capf_key parameter)")
	regenerate.Flags().StringVar(&tokenKey, "key", "", "a key pair already in a PKCS #11 token, pkcs11:token=LABEL;object=NAME: it self-signs the new CAPF certificate there and never leaves it")
	regenerate.Flags().StringVar(&g.p11.Module, "pkcs11-module", "", "the HSM vendor's PKCS #11 module (shared library) for --key")
	regenerate.Flags().StringVar(&g.p11.PINFile, "pin-file", "", "file holding the token's user PIN (mode 0600) for --key")
	activate := &cobra.Command{
		Use:   "activate [ID]",
		Short: "Make the staged CAPF certificate (or the one ID names) the active one; the active one becomes retiring",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			st, err := g.openStore(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer st.Close()
			svc, err := g.caSetService(cmd.Context(), st)
			if err != nil {
				return err
			}
			act, prev, err := svc.Activate(cmd.Context(), ref, g.actor())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "activated %s: every node presents it and signs new LSCs with it within seconds\n", act.ID)
			if prev.ID != "" {
				fmt.Fprintf(g.stdout, "%s is retiring: still listed in trust files and trusted for LSC authentication (capf ca retire %s once its phones have new LSCs)\n", prev.ID, prev.ID)
			}
			return nil
		},
	}
	var force bool
	retire := &cobra.Command{
		Use:   "retire SERIAL|ID",
		Short: "Retire a CAPF certificate: it leaves trust files and LSC authentication",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer st.Close()
			svc, err := g.caSetService(cmd.Context(), st)
			if err != nil {
				return err
			}
			r, n, err := svc.Retire(cmd.Context(), args[0], force, g.actor())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "retired %s (%d phones held a valid LSC from it): no longer listed in trust files nor trusted\n", r.ID, n)
			return nil
		},
	}
	retire.Flags().BoolVar(&force, "force", false, "retire even while phones hold a valid LSC from it (they no longer authenticate with it)")
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show every CAPF certificate of the CA set: state, validity, phones holding its LSCs, listed in the trust file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.caStatus(cmd.Context(), asJSON)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "JSON instead of a table")
	return []*cobra.Command{regenerate, activate, retire, status}
}

// caSetService is the CA set's service over st; while no node adopted the
// CAPF certificate of before the set, it stands for the set.
func (g *globals) caSetService(ctx context.Context, st caset.Store) (*caset.Service, error) {
	if !g.caSetShared() {
		return nil, errCASetNotShared
	}
	recs, err := g.caSetRecords(ctx, st)
	if err != nil {
		return nil, err
	}
	svc := caset.NewService(st, nil)
	if len(recs) == 1 {
		svc.Assume(recs[0])
	}
	return svc, nil
}

// caRegenerate creates a staged CA: its key is written (a file under
// DATA/ca/ID, or sealed in the keys table on a cluster with a KEK) and
// then stored as staged with its audit event in one transaction.
func (g *globals) caRegenerate(ctx context.Context, algFlag string) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if !g.caSetShared() {
		return errCASetNotShared
	}
	if algFlag != "" {
		if _, err := ca.ParseKeyAlgorithm(algFlag); err != nil {
			return err
		}
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := g.adoptLegacy(ctx, st); err != nil {
		return err
	}
	adm := g.caAdmin(st, caset.NewService(st, nil), cfg)
	rec, alg, err := adm.Regenerate(ctx, algFlag, g.actor())
	if err != nil {
		if fault.FieldOf(err) == "key_algorithm" {
			return usagef("%s", fault.Message(err))
		}
		return err
	}
	cert, err := rec.Certificate()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(cert.Raw)
	fmt.Fprintf(g.stdout, "staged %s (%s, %s)\n  SHA-256: %X\n", rec.ID, cert.Subject, alg, sum)
	fmt.Fprintf(g.stdout, "trust files list it with the CAPF role from now on (serve rewrites its own within 10 s; rebuild others with capf trust build);\n")
	fmt.Fprintf(g.stdout, "once the phones have them, capf ca activate %s makes it the certificate phones see\n", rec.ID)
	return nil
}

// caAdmin is the CA set's administration over svc (its store st), as
// the CLI, the API and the web UI share it: keys where this node keeps
// them, the default algorithm of cfg, and the trust file serve keeps.
func (g *globals) caAdmin(st store.Store, svc *caset.Service, cfg config.Config) *caset.Admin {
	v := caVault{g: g, st: st, cfg: cfg}
	a := &caset.Admin{
		Service:          svc,
		Keys:             v,
		Vault:            v,
		DefaultAlgorithm: func() ca.KeyAlgorithm { return ca.KeyAlgorithm(cfg.CAKey) },
		RSAOnly:          func() bool { return cfg.TLSProfile == "legacy" },
		Listed:           func() ([][]byte, string, error) { return g.servedTrustCAPFs(cfg) },
	}
	if g.p11.Module != "" {
		a.Tokens = g.openTokenKey
		a.SelfSign = func(key crypto.Signer) (*x509.Certificate, error) { return ca.SelfSign(key, g.caOptions(cfg)) }
	}
	return a
}

// openTokenKey opens the key pair ref names in the token of this node's
// module and PIN file: a pkcs11: reference only, so that the API and the
// web UI cannot make the server read a key file of the host.
func (g *globals) openTokenKey(ctx context.Context, ref string) (caset.TokenKey, error) {
	r, err := keyref.Parse(ref)
	if err != nil {
		return caset.TokenKey{}, err
	}
	if !r.IsPKCS11() {
		return caset.TokenKey{}, fault.InvalidField("key", "the key %q: want a key pair in the node's PKCS #11 token, pkcs11:token=LABEL;object=NAME", ref)
	}
	k, err := keyref.Load(ctx, r, g.p11)
	if err != nil {
		return caset.TokenKey{}, err
	}
	return caset.TokenKey{Ref: k.Ref().String(), Signer: k.Signer(), Close: k.Close}, nil
}

func (g *globals) caStatus(ctx context.Context, asJSON bool) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	st, err := g.openStore(ctx, readOnly)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := g.caSetService(ctx, st)
	if err != nil {
		return err
	}
	ov, err := g.caAdmin(st, svc, cfg).Status(ctx)
	if err != nil {
		return err
	}
	rows := ov.CAs
	pending, err := g.pendingStatus(ctx, st)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(caStatusJSON(ov, pending))
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSUBJECT\tSERIAL\tVALID FROM\tVALID UNTIL\tPHONES\tTRUST FILE\tSHA-256")
	for _, r := range rows {
		in := "-"
		if r.InTrustFile != nil {
			in = map[bool]string{true: "listed", false: "not listed"}[*r.InTrustFile]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.State, r.Subject, r.Serial,
			r.NotBefore.Format(time.RFC3339), r.NotAfter.Format(time.RFC3339), r.Phones, in, r.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if is := ov.Issuing; is != nil {
		fmt.Fprintf(g.stdout, "issuing CA: %s (%s), serial %s, valid %s to %s, below the CAPF certificate %s, %d phones, %s\n  SHA-256: %s\n",
			is.ID, is.Subject, is.Serial, is.NotBefore.Format(time.RFC3339), is.NotAfter.Format(time.RFC3339), is.ParentID, is.Phones, issuingState(is), is.SHA256)
	} else {
		fmt.Fprintln(g.stdout, "issuing CA: none (the active CAPF certificate signs LSCs; capf ca issuer makes one)")
	}
	for _, f := range ov.FormerIssuing {
		fmt.Fprintf(g.stdout, "former issuing CA: %s (%s), removed %s, valid until %s, below the CAPF certificate %s, %d phones: still trusted for its LSCs until capf ca issuer forget %s\n",
			f.ID, f.Subject, f.RemovedAt.Format(time.RFC3339), f.NotAfter.Format(time.RFC3339), f.ParentID, f.Phones, f.ID)
	}
	if pending != nil {
		fmt.Fprintf(g.stdout, "pending key: %s for %s, %s: waiting for capf ca install-signed\n", pending.ID, pending.Subject, pending.Where)
	}
	if ov.TrustFile == "" {
		fmt.Fprintln(g.stdout, "trust file: none (no trust_file_dir: serve keeps none)")
	} else {
		fmt.Fprintln(g.stdout, "trust file:", ov.TrustFile)
	}
	return nil
}

// servedTrustCAPFs returns the certificates the trust file serve keeps
// lists with the CAPF role, and its path; nil (not empty) when there is
// no trust_file_dir, and none when the file is missing or unreadable.
func (g *globals) servedTrustCAPFs(cfg config.Config) ([][]byte, string, error) {
	dir := config.Resolve(g.dataDir, cfg.TrustFileDir)
	if dir == "" {
		return nil, "", nil
	}
	path := filepath.Join(dir, trustfile.ServedName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return [][]byte{}, path + " (missing)", nil
	} else if err != nil {
		return nil, "", fmt.Errorf("read the trust file: %w", err)
	}
	f, err := trust.Parse(b)
	if err != nil {
		return [][]byte{}, path + " (does not parse)", nil
	}
	out := [][]byte{}
	for _, r := range f.Records {
		if r.Role == trust.RoleCAPF {
			out = append(out, r.Certificate)
		}
	}
	return out, path, nil
}

// caStatusRow is one row of `capf ca status --json`: a CAPF certificate
// of the set (role "capf"), the issuing CA (role "issuing", state
// "signing" or "not signing", parent_id the CAPF certificate above it), a
// former issuing CA (role "former-issuing", state "former", changed_at
// when it was removed), or the offline CA's pending key (role "pending").
type caStatusRow struct {
	caset.Row
	Role     string `json:"role"`
	ParentID string `json:"parent_id,omitempty"`
}

// caStatusJSON lists the set's CAPF certificates, oldest first, then the
// issuing CA, the former issuing CAs, then the offline CA's pending key (role "pending", state
// "pending", id its key id, subject the one its request asks for).
func caStatusJSON(ov caset.Overview, pending *caset.Pending) []caStatusRow {
	out := make([]caStatusRow, 0, len(ov.CAs)+1)
	for _, r := range ov.CAs {
		out = append(out, caStatusRow{Row: r, Role: "capf"})
	}
	if is := ov.Issuing; is != nil {
		out = append(out, caStatusRow{Role: "issuing", ParentID: is.ParentID, Row: caset.Row{ID: is.ID, State: caset.State(issuingState(is)),
			Subject: is.Subject, Serial: is.Serial, SHA256: is.SHA256, NotBefore: is.NotBefore, NotAfter: is.NotAfter, Phones: is.Phones, ChangedAt: is.CreatedAt}})
		if ov.TrustFile != "" { // trust files list CAPF certificates only
			out[len(out)-1].InTrustFile = new(bool)
		}
	}
	for _, f := range ov.FormerIssuing {
		out = append(out, caStatusRow{Role: "former-issuing", ParentID: f.ParentID, Row: caset.Row{ID: f.ID, State: "former",
			Subject: f.Subject, Serial: f.Serial, SHA256: f.SHA256, NotBefore: f.NotBefore, NotAfter: f.NotAfter, Phones: f.Phones, ChangedAt: f.RemovedAt}})
		if ov.TrustFile != "" {
			out[len(out)-1].InTrustFile = new(bool)
		}
	}
	if pending != nil {
		out = append(out, caStatusRow{Role: "pending", Row: caset.Row{ID: pending.ID, State: "pending", Subject: pending.Subject}})
	}
	return out
}

// issuingState says whether the issuing CA signs new LSCs.
func issuingState(is *caset.IssuingRow) string {
	if is.Signing {
		return "signing"
	}
	return "not signing"
}
