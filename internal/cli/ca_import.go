package cli

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/store"
)

// pendingCADir is the directory under DATA/ca of the pending key of an
// offline CA (capf ca csr): its key, with a self-signed placeholder
// certificate that nothing uses, stored as every CA key is. It is not in
// the CA set, so nothing trusts, presents or signs with it.
const pendingCADir = "pending"

// caImportCommands are the commands of `capf ca` for CAPF certificates
// made elsewhere (ADR 0017): import, csr and install-signed.
func caImportCommands(g *globals) []*cobra.Command {
	imp := &cobra.Command{
		Use:   "import CERT.pem KEY.pem|pkcs11:token=LABEL;object=NAME [CHAIN.pem]",
		Short: "Stage a CAPF certificate and key made elsewhere (with its chain up to a root): listed in trust files at once, presented once activated",
		Long: `Stage a CAPF certificate and key made elsewhere (with its chain up to a root): listed in trust files at once, presented once activated.

The key is a PEM file (stored as every CA key is), or a key in a PKCS #11
token named pkcs11:token=LABEL;object=NAME with --pkcs11-module and
--pin-file: then only that reference is stored, the key never leaves the
token, and serve needs the same --pkcs11-module and --pin-file.`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.caImport(cmd.Context(), args)
		},
	}
	imp.Flags().StringVar(&g.p11.Module, "pkcs11-module", "", "the HSM vendor's PKCS #11 module (shared library) for a pkcs11: key reference")
	imp.Flags().StringVar(&g.p11.PINFile, "pin-file", "", "file holding the token's user PIN (mode 0600) for a pkcs11: key reference")
	var subject, alg string
	var discard bool
	csr := &cobra.Command{
		Use:   "csr",
		Short: "Make a pending CAPF key and print its certificate signing request (PEM) for an outside CA; capf ca install-signed takes the answer",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if discard {
				if subject != "" || alg != "" {
					return usagef("--discard makes no request: leave --subject and --key-algorithm out")
				}
				return g.caCSRDiscard(cmd.Context())
			}
			return g.caCSR(cmd.Context(), subject, alg)
		},
	}
	csr.Flags().BoolVar(&discard, "discard", false, "discard the pending key instead (its request is never to be answered), so that another csr can start over")
	csr.Flags().StringVar(&subject, "subject", "", `the subject requested, e.g. "CN=CAPF-cluster1,O=Example,OU=VOICE" (default: a generated CN, O=CAPF, OU=VOICE)`)
	csr.Flags().StringVar(&alg, "key-algorithm", "", "rsa2048, rsa3072, rsa4096, ec256 or ec384 (default: the capf_key parameter)")
	install := &cobra.Command{
		Use:   "install-signed CERT.pem [CHAIN.pem]",
		Short: "Stage the outside CA's certificate for the pending key (capf ca csr), with its chain up to a root",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.caInstallSigned(cmd.Context(), args)
		},
	}
	return []*cobra.Command{imp, csr, install}
}

// maxCAFile bounds each certificate, chain or key file read: a chain up
// to a root is a few KiB.
const maxCAFile = 1 << 20

// readPEMFile reads path, at most maxCAFile bytes.
func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fault.Invalidf("read %s: %v", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fault.Invalidf("read %s: %v", path, err)
	}
	if len(b) > maxCAFile {
		return nil, fault.Invalidf("%s is over %d KiB: not a certificate, chain or key file", path, maxCAFile>>10)
	}
	return b, nil
}

// readCertFiles returns the first certificate of the first file (the
// CAPF certificate) and every other certificate of the files.
func readCertFiles(paths ...string) (*x509.Certificate, []*x509.Certificate, error) {
	var all []*x509.Certificate
	for _, p := range paths {
		b, err := readPEMFile(p)
		if err != nil {
			return nil, nil, err
		}
		cs, err := ca.ParseCertificatesPEM(b)
		if err != nil {
			return nil, nil, fault.Invalidf("%s: %v", p, err)
		}
		all = append(all, cs...)
	}
	return all[0], all[1:], nil
}

// caMadeElsewhereStore opens the store for a CA made elsewhere, after the
// checks every such command shares: the set is this node's, and the key
// suits the TLS profile.
func (g *globals) caMadeElsewhereStore(ctx context.Context, pub crypto.PublicKey) (store.Store, config.Config, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, cfg, err
	}
	if !g.caSetShared() {
		return nil, cfg, errCASetNotShared
	}
	if _, isRSA := pub.(*rsa.PublicKey); cfg.TLSProfile == "legacy" && !isRSA {
		return nil, cfg, usagef("tls_profile legacy needs an RSA CAPF key: an EC key would not serve old phones")
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return nil, cfg, err
	}
	if err := g.adoptLegacy(ctx, st); err != nil {
		st.Close()
		return nil, cfg, err
	}
	return st, cfg, nil
}

func (g *globals) caImport(ctx context.Context, args []string) error {
	if ref, err := keyref.Parse(args[1]); err != nil {
		return fmt.Errorf("the CA key: %w", err)
	} else if ref.IsPKCS11() {
		return g.caImportToken(ctx, ref, append(args[:1:1], args[2:]...))
	}
	if g.p11.Module != "" || g.p11.PINFile != "" {
		return usagef("--pkcs11-module and --pin-file go with a pkcs11: key reference, and %s is a file", args[1])
	}
	leaf, more, err := readCertFiles(append(args[:1:1], args[2:]...)...)
	if err != nil {
		return err
	}
	keyPEM, err := readPEMFile(args[1])
	if err != nil {
		return err
	}
	key, err := keyref.ParsePEM(keyPEM)
	if err != nil {
		return fault.Invalidf("%s: %v", args[1], err)
	}
	// Checked before the store is opened: a refusal changes nothing.
	if _, err := caset.CheckImport(leaf, more, key.Public(), "the key "+args[1], time.Now()); err != nil {
		return err
	}
	adm, st, err := g.caSetAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rec, chain, err := adm.Import(ctx, leaf, more, key, "the key "+args[1], g.actor())
	if err != nil {
		return err
	}
	g.printStaged(rec, chain)
	return nil
}

// caSetAdmin opens the store for a change of the CA set, after the check
// every such command shares (the set is this node's), and returns the
// administration over it: while the set is empty it stands for the CAPF
// certificate of before the set, which it adopts as serve does once an
// action that adds to the set passed its checks.
func (g *globals) caSetAdmin(ctx context.Context) (*caset.Admin, store.Store, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	if !g.caSetShared() {
		return nil, nil, errCASetNotShared
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return nil, nil, err
	}
	svc, err := g.caSetService(ctx, st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	adm := g.caAdmin(st, svc, cfg)
	adm.BeforeChange = func(ctx context.Context) error { return g.adoptLegacy(ctx, st) }
	return adm, st, nil
}

func (g *globals) printStaged(rec caset.Record, chain []*x509.Certificate) {
	sum := sha256.Sum256(chain[0].Raw)
	fmt.Fprintf(g.stdout, "staged %s (%s, issued by %s; chain of %d)\n  SHA-256: %X\n", rec.ID, chain[0].Subject, chain[0].Issuer, len(chain), sum)
	fmt.Fprintf(g.stdout, "trust files list it with the CAPF role from now on (serve rewrites its own within 10 s; rebuild others with capf trust build);\n")
	fmt.Fprintf(g.stdout, "once the phones have them, capf ca activate %s makes it the certificate phones see (TLS sends its chain)\n", rec.ID)
}

// pendingDir is the directory of the pending key of an offline CA.
func (g *globals) pendingDir() string { return filepath.Join(g.dir().CA(), pendingCADir) }

func (g *globals) caCSR(ctx context.Context, subject, algFlag string) error {
	if _, err := caset.ParseSubject(subject); err != nil {
		return usagef("--subject: %s", fault.Message(err))
	}
	adm, st, err := g.caSetAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	der, p, err := adm.CSR(ctx, subject, algFlag, g.actor())
	if err != nil {
		if fault.FieldOf(err) == "key_algorithm" {
			return usagef("--key-algorithm: %s", fault.Message(err))
		}
		return err
	}
	fmt.Fprintf(g.stderr, "pending key %s (%s) %s; have the outside CA sign this request as a CA (basic constraints CA:TRUE, keyCertSign), then: capf ca install-signed CERT.pem [CHAIN.pem]\n", p.ID, p.Algorithm, p.Where)
	_, err = g.stdout.Write(caset.CSRPEM(der))
	return err
}

func (g *globals) caInstallSigned(ctx context.Context, args []string) error {
	adm, st, err := g.caSetAdmin(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if p, err := adm.Pending(ctx); err != nil {
		return err
	} else if p == nil {
		return errNoPendingKey
	}
	leaf, more, err := readCertFiles(args...)
	if err != nil {
		return err
	}
	rec, chain, err := adm.InstallSigned(ctx, leaf, more, g.actor())
	if err != nil {
		return err
	}
	g.printStaged(rec, chain)
	return nil
}
