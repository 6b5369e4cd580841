package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

func init() { subcommands = append(subcommands, newTrustCmd) }

// trustDir holds the SAST identities inside the data directory.
const trustDir = datadir.TrustDir

func newTrustCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "trust", Short: "Build, sign, show and check the CTL/ITL trust files phones download"}
	cmd.AddCommand(newTrustBuildCmd(g), newTrustShowCmd(g), newTrustCheckCmd(g), newTrustSignCmd(g),
		newTrustSignersCmd(g), newTrustExportBackupCmd(g), newTrustSASTCertCmd(g))
	return cmd
}

// openKeystore opens the SAST identities, creating both on first use.
func (g *globals) openKeystore() (*trust.Keystore, error) {
	if g.keysInDB() {
		return g.clusterKeystore()
	}
	if err := g.refuseOwnKeysOnCluster(context.Background()); err != nil {
		return nil, err
	}
	// A PostgreSQL node's data directory holds no capf.db: its capf.json
	// says it is one.
	if _, err := os.Stat(g.dir().Config()); err != nil || !store.IsPostgres(g.db) {
		if err := g.dir().Initialised(); err != nil {
			return nil, err
		}
	}
	ks, created, err := trust.OpenKeystore(trust.KeystoreOptions{Dir: g.dir().Trust()})
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(g.stderr, "created the SAST signing identities (primary and backup) in %s\n", ks.Dir)
		fmt.Fprintf(g.stderr, "  every trust file lists both; export the backup and keep it offline: capf trust export-backup -o FILE --remove\n")
	}
	return ks, nil
}

// signerFlags choose the identity that signs a file.
type signerFlags struct {
	signer, signerKey, digest, signerVersion string
	// module and pinFile open a --signer-key in a PKCS #11 token.
	module, pinFile string
	// key is the token key opened for --signer-key pkcs11:…, closed by
	// close.
	key *keyref.Key
}

// register adds the signing flags to cmd; --signer-version only where
// the file has a SIGNER_VERSION (trust files, not .sgn files).
func (f *signerFlags) register(cmd *cobra.Command, signerVersion bool) {
	cmd.Flags().StringVar(&f.signer, "signer", "primary", "SAST identity that signs: primary or backup")
	cmd.Flags().StringVar(&f.signerKey, "signer-key", "", "sign with this PEM file (key + certificate, as written by export-backup), or with the key of a SAST certificate of the keystore kept in a PKCS #11 token (pkcs11:token=LABEL;object=NAME), instead")
	cmd.Flags().StringVar(&f.module, "pkcs11-module", "", "the HSM vendor's PKCS #11 module (shared library) for a --signer-key pkcs11: reference")
	cmd.Flags().StringVar(&f.pinFile, "pin-file", "", "file holding the token's user PIN (mode 0600) for a --signer-key pkcs11: reference")
	cmd.Flags().StringVar(&f.digest, "digest", "sha1", "signature digest: sha1 (every phone) or sha512")
	f.signerVersion = "1.0"
	if signerVersion {
		cmd.Flags().StringVar(&f.signerVersion, "signer-version", "1.0", "SIGNER_VERSION: 1.0, or 1.1 to let phones use EC certificates")
	}
}

// open opens the keystore and resolves the flags' signing identity, digest
// and signer version against it. The caller calls close once it signed.
func (f *signerFlags) open(ctx context.Context, g *globals) (*trust.Keystore, trust.Signing, trust.HashAlgorithm, trust.SignerVersion, error) {
	ks, err := g.openKeystore()
	if err != nil {
		return nil, trust.Signing{}, 0, trust.SignerVersion{}, err
	}
	signer, hash, ver, err := f.resolve(ctx, ks)
	return ks, signer, hash, ver, err
}

// close releases the token key of --signer-key, if one was opened.
func (f *signerFlags) close() {
	if f.key != nil {
		_ = f.key.Close()
		f.key = nil
	}
}

// resolve returns the signing identity, digest and signer version.
func (f *signerFlags) resolve(ctx context.Context, ks *trust.Keystore) (trust.Signing, trust.HashAlgorithm, trust.SignerVersion, error) {
	hash, err := trust.ParseHashAlgorithm(f.digest)
	if err != nil {
		return trust.Signing{}, 0, trust.SignerVersion{}, err
	}
	ver, err := trust.ParseSignerVersion(f.signerVersion)
	if err != nil {
		return trust.Signing{}, 0, trust.SignerVersion{}, err
	}
	if f.signerKey != "" {
		s, err := f.keySigning(ctx, ks)
		if err != nil {
			return s, 0, ver, err
		}
		return s, hash, ver, nil
	}
	if f.module != "" || f.pinFile != "" {
		return trust.Signing{}, 0, ver, usagef("--pkcs11-module and --pin-file go with --signer-key pkcs11:token=LABEL;object=NAME")
	}
	var id trust.Identity
	switch strings.ToLower(f.signer) {
	case trust.Primary:
		id = ks.Primary
	case trust.Backup:
		id = ks.Backup
	default:
		return trust.Signing{}, 0, ver, usagef("--signer %q: want primary or backup", f.signer)
	}
	s, err := id.Signing()
	return s, hash, ver, err
}

// keySigning returns the identity of --signer-key: a PEM file holding a
// SAST key and its certificate, or a key in a PKCS #11 token whose
// certificate is the keystore's primary or backup SAST certificate (as
// serve --sast-key finds it). Either must be one of ks's SAST
// certificates, or phones would reject the file it signs.
func (f *signerFlags) keySigning(ctx context.Context, ks *trust.Keystore) (trust.Signing, error) {
	if isTokenKeyRef(f.signerKey) {
		k, err := keyref.LoadString(ctx, f.signerKey, keyref.Options{Module: f.module, PINFile: f.pinFile})
		if err != nil {
			return trust.Signing{}, fmt.Errorf("--signer-key: %w", err)
		}
		s, err := sastSigning(ks, k, "--signer-key")
		if err != nil {
			_ = k.Close()
			return trust.Signing{}, err
		}
		f.key = k
		return s, nil
	}
	if f.module != "" || f.pinFile != "" {
		return trust.Signing{}, usagef("--pkcs11-module and --pin-file go with a --signer-key pkcs11: reference, and %s is a file", f.signerKey)
	}
	s, err := trust.ReadSigning(f.signerKey)
	if err != nil {
		return s, err
	}
	if !bytes.Equal(s.Cert.Raw, ks.Primary.Cert.Raw) && !bytes.Equal(s.Cert.Raw, ks.Backup.Cert.Raw) {
		return s, fault.Invalidf("%s: %s is not one of this CAPF's SAST certificates (see capf trust signers): phones would not accept a file it signs", f.signerKey, nameOf(s.Cert))
	}
	return s, nil
}

// parseAdds reads the --add ROLE=CERT.pem flags.
func parseAdds(adds []string) ([]trust.Entry, error) {
	var out []trust.Entry
	for _, a := range adds {
		roleName, path, ok := strings.Cut(a, "=")
		if !ok || path == "" {
			return nil, usagef("--add %q: want ROLE=CERT.pem, e.g. ccm=asterisk.pem", a)
		}
		role, err := trust.ParseRole(roleName)
		if err != nil {
			return nil, fmt.Errorf("--add %s: %w", a, err)
		}
		c, err := trust.ReadCertificate(path)
		if err != nil {
			return nil, fmt.Errorf("--add %s: %w", a, err)
		}
		out = append(out, trust.Entry{Role: role, Cert: c})
	}
	return out, nil
}

func newTrustBuildCmd(g *globals) *cobra.Command {
	var sf signerFlags
	var kind, out, fileName string
	var adds []string
	var force bool
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Write a signed ITL/CTL file: both SAST certificates, the CAPF certificate (CAPF role) and every --add",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch strings.ToLower(kind) {
			case "itl":
				kind = "ITLFile.tlv"
			case "ctl":
				kind = "CTLFile.tlv"
			default:
				return usagef("--kind %q: want itl or ctl", kind)
			}
			if fileName == "" {
				fileName = kind
			}
			if out == "" {
				out = fileName
			}
			extra, err := parseAdds(adds)
			if err != nil {
				return err
			}
			capfs, err := g.trustedCAPFs(cmd.Context()) // every CAPF certificate not retired (ADR 0017)
			if err != nil {
				return err
			}
			ks, signer, hash, ver, err := sf.open(cmd.Context(), g)
			defer sf.close()
			if err != nil {
				return err
			}
			entries := append(trustfile.Entries(ks, capfs), extra...)
			b, err := trust.Build(trust.BuildOptions{
				FileName: fileName, Hash: hash, SignerVersion: ver, Signer: signer,
				Entries: entries,
			})
			if err != nil {
				return err
			}
			if err := checkSuccessor(g, out, signer, force); err != nil {
				return err
			}
			if err := atomicfile.Write(out, b, 0o644, false); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s (%d bytes, %d records, signed by the %s over %s)\n", out, len(b), len(entries), trustfile.SignerLabel(ks, signer), hash)
			return g.recordAudit(cmd.Context(), auditTrustBuild, fileName,
				fmt.Sprintf("wrote %s: %d records, signed by the %s", out, len(entries), trustfile.SignerLabel(ks, signer)))
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "itl", "itl or ctl (sets the default file name)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "output file (default: the file name in the current directory)")
	cmd.Flags().StringVar(&fileName, "filename", "", "FILENAME in the header, as the phone asks for it (default ITLFile.tlv / CTLFile.tlv)")
	cmd.Flags().StringArrayVar(&adds, "add", nil, "also list CERT.pem with ROLE (ccm, tftp, ccm+tftp, capf, app-server, tvs, sast), e.g. ccm=asterisk.pem; repeatable")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing --out file whose SAST certificates did not sign the new one (phones that installed it will reject the new file)")
	sf.register(cmd, true)
	return cmd
}

// checkSuccessor refuses, unless forced, to replace a trust file with one
// that the phones holding it would reject: a phone accepts a new file only
// when one of the old file's SAST certificates signed it.
func checkSuccessor(g *globals, path string, s trust.Signing, force bool) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	succ := trustfile.CheckSuccessor(old, s.Cert)
	switch {
	case succ.NotTrustFile != nil && force, succ.Accepted:
		return nil
	case succ.NotTrustFile != nil:
		return fault.Conflictf("%s exists and is not a trust file (%v); use --force to replace it", path, succ.NotTrustFile)
	}
	fmt.Fprintf(g.stderr, "WARNING: phones that installed %s accept a new trust file only if it is signed by one of its SAST certificates:\n", path)
	for _, n := range succ.SAST {
		fmt.Fprintf(g.stderr, "WARNING:   %s\n", clean(n))
	}
	fmt.Fprintf(g.stderr, "WARNING: the new file is signed by %s, which is not among them: those phones would reject it until they are factory reset (or their ITL is deleted).\n", nameOf(s.Cert))
	if force {
		fmt.Fprintf(g.stderr, "WARNING: replacing it anyway (--force)\n")
		return nil
	}
	return fault.Conflictf("%s: not replaced; sign with one of its SAST keys, or use --force if its phones will be reset", path)
}

// readTrustFile reads and parses a trust file named on the command line.
func readTrustFile(path string) (*trust.File, error) {
	b, err := readBounded(path, trust.MaxParseSize)
	if err != nil {
		return nil, err
	}
	f, err := trust.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// readBounded reads at most max bytes of path; a larger file is invalid.
func readBounded(path string, max int) ([]byte, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fault.NotFoundf("%s: no such file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > max {
		return nil, fault.Invalidf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// nameOf returns the certificate's subject in the trust file's text form.
func nameOf(c *x509.Certificate) string { return trustfile.NameOf(c) }

// clean makes text from a file safe to print on a terminal: control
// characters and invalid UTF-8 are shown escaped.
func clean(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func newTrustShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show FILE.tlv",
		Short: "Show any CTL/ITL file: header, signer, every record, and whether the signature verifies (exit 1 if not)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := readTrustFile(args[0])
			if err != nil {
				return err
			}
			v := trustfile.ViewOf(f)
			if asJSON {
				if err := printJSON(g.stdout, v); err != nil {
					return err
				}
			} else {
				printFileView(g.stdout, v)
			}
			if !v.Verified {
				return fmt.Errorf("%s: %s", args[0], v.VerifyError)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func printFileView(w io.Writer, v trustfile.FileView) {
	fmt.Fprintf(w, "File name:      %s\n", clean(v.FileName))
	fmt.Fprintf(w, "Format version: %s\n", v.Version)
	fmt.Fprintf(w, "Header length:  %d\n", v.HeaderLength)
	fmt.Fprintf(w, "Timestamp:      %s\n", v.Timestamp.Format(time.RFC3339))
	fmt.Fprintf(w, "Signer:         %s\n", clean(v.Signer))
	fmt.Fprintf(w, "Signer issuer:  %s\n", clean(v.SignerIssuer))
	fmt.Fprintf(w, "Signer serial:  %s\n", v.SignerSerial)
	fmt.Fprintf(w, "Digest:         %s, RSA signature of %d bytes\n", v.Digest, v.SignatureLen)
	if v.SignerVersion != "" {
		fmt.Fprintf(w, "Signer version: %s\n", v.SignerVersion)
	}
	for i, r := range v.Records {
		fmt.Fprintf(w, "\nRecord %d (offset %d)\n", i+1, r.Offset)
		fmt.Fprintf(w, "  Role:     %s\n", r.Role)
		fmt.Fprintf(w, "  Subject:  %s\n", clean(r.Subject))
		fmt.Fprintf(w, "  Issuer:   %s\n", clean(r.Issuer))
		fmt.Fprintf(w, "  Serial:   %s\n", r.Serial)
		fmt.Fprintf(w, "  Key:      %s\n", r.KeyType)
		if r.NotAfter != "" {
			fmt.Fprintf(w, "  Valid to: %s\n", r.NotAfter)
		}
		fmt.Fprintf(w, "  SHA-1:    %s\n", r.SHA1)
		fmt.Fprintf(w, "  SHA-256:  %s\n", r.SHA256)
		if r.Problem != "" {
			fmt.Fprintf(w, "  Problem:  %s\n", clean(r.Problem))
		}
	}
	if v.Verified {
		fmt.Fprintf(w, "\nSignature: verifies (signed by %s)\n", clean(v.Signer))
	} else {
		fmt.Fprintf(w, "\nSignature: DOES NOT VERIFY: %s\n", clean(v.VerifyError))
	}
}

func newTrustCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE.tlv",
		Short: "Exit 0 only if the signature verifies and the current CAPF certificate is in the file with the CAPF role",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := readTrustFile(args[0])
			if err != nil {
				return err
			}
			a, err := g.loadAuthority()
			if err != nil {
				return err
			}
			capf := a.Certificate()
			var failed []string
			if err := f.Verify(); err != nil {
				fmt.Fprintf(g.stdout, "signature:        FAILED: %s\n", clean(err.Error()))
				failed = append(failed, "the signature does not verify")
			} else {
				fmt.Fprintf(g.stdout, "signature:        ok (signed by %s)\n", clean(f.Header.SignerName))
			}
			l := trustfile.CheckCAPF(f, capf)
			switch {
			case l.Listed:
				fmt.Fprintf(g.stdout, "CAPF certificate: ok (%s is listed with the CAPF role)\n", nameOf(capf))
			case len(l.Roles) > 0:
				fmt.Fprintf(g.stdout, "CAPF certificate: FAILED: %s is listed only with role %s, not CAPF\n", nameOf(capf), strings.Join(l.Roles, ", "))
				failed = append(failed, "the current CAPF certificate is not listed with the CAPF role")
			default:
				fmt.Fprintf(g.stdout, "CAPF certificate: FAILED: the current CAPF certificate %s (SHA-256 %s) is not in the file\n", nameOf(capf), l.SHA256)
				failed = append(failed, "the current CAPF certificate is not in the file")
			}
			if len(failed) > 0 {
				return fmt.Errorf("%s: %s", args[0], strings.Join(failed, "; "))
			}
			return nil
		},
	}
}

func newTrustSignCmd(g *globals) *cobra.Command {
	var sf signerFlags
	var out string
	cmd := &cobra.Command{
		Use:   "sign FILE",
		Short: "Write FILE.sgn: the phone's configuration file (SEP<MAC>.cnf.xml) signed for secure-mode phones",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			content, err := readBounded(args[0], trust.MaxSignedContent)
			if err != nil {
				return err
			}
			if out == "" {
				out = args[0] + ".sgn"
			}
			ks, signer, hash, _, err := sf.open(cmd.Context(), g)
			defer sf.close()
			if err != nil {
				return err
			}
			b, err := trust.SignFile(trust.SignOptions{
				FileName: filepath.Base(args[0]), Hash: hash, Signer: signer,
			}, content)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, b, 0o644, false); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s (signed by the %s; phones check it against the TFTP-role certificate of their trust file)\n", out, trustfile.SignerLabel(ks, signer))
			return g.recordAudit(cmd.Context(), auditTrustSign, filepath.Base(args[0]), fmt.Sprintf("wrote %s, signed by the %s", out, trustfile.SignerLabel(ks, signer)))
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "output file (default FILE.sgn)")
	sf.register(cmd, false)
	return cmd
}

func newTrustSignersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "signers",
		Short: "Show the two SAST signing identities with fingerprints and validity (created on first use)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := g.openKeystore()
			if err != nil {
				return err
			}
			online := 0
			for _, si := range trustfile.Signers(ks, time.Now()) {
				key := "in the data directory (" + si.KeyPath + ")"
				if !si.Online {
					key = "OFFLINE: not in the data directory (sign with --signer-key FILE)"
				} else {
					online++
				}
				fmt.Fprintf(g.stdout, "%s SAST\n", si.Name)
				fmt.Fprintf(g.stdout, "  Subject:     %s\n", si.Subject)
				fmt.Fprintf(g.stdout, "  Serial:      %s\n", si.Serial)
				fmt.Fprintf(g.stdout, "  Valid from:  %s\n", si.NotBefore.UTC().Format(time.RFC3339))
				fmt.Fprintf(g.stdout, "  Valid until: %s\n", si.NotAfter.UTC().Format(time.RFC3339))
				fmt.Fprintf(g.stdout, "  SHA-1:       %s\n", si.SHA1)
				fmt.Fprintf(g.stdout, "  SHA-256:     %s\n", si.SHA256)
				fmt.Fprintf(g.stdout, "  Certificate: %s\n", si.CertPath)
				fmt.Fprintf(g.stdout, "  Key:         %s\n", key)
				switch {
				case si.Expired:
					fmt.Fprintf(g.stderr, "WARNING: the %s SAST certificate EXPIRED on %s: build and install a file signed by the other identity that lists a replacement\n", si.Name, si.NotAfter.UTC().Format(time.DateOnly))
				case si.ExpiresSoon:
					fmt.Fprintf(g.stderr, "WARNING: the %s SAST certificate expires on %s (within a year): phones must get a file listing its replacement, signed while it is still valid\n", si.Name, si.NotAfter.UTC().Format(time.DateOnly))
				}
			}
			switch online {
			case 0:
				fmt.Fprintf(g.stderr, "WARNING: no SAST key is on this machine: only the exported key files can sign a file phones accept\n")
			case 1:
				fmt.Fprintf(g.stderr, "WARNING: only one SAST key is on this machine: if it is lost, the exported backup key is the only way to sign a file these phones accept; keep it safe\n")
			default:
				fmt.Fprintf(g.stderr, "note: both SAST keys are on this machine; losing it loses both. Export the backup and keep it offline: capf trust export-backup -o FILE --remove\n")
			}
			return nil
		},
	}
}

func newTrustExportBackupCmd(g *globals) *cobra.Command {
	var out string
	var remove bool
	cmd := &cobra.Command{
		Use:   "export-backup",
		Short: "Write the backup SAST key and certificate (PEM, 0600) to move offline; --remove deletes the key from the data directory or the cluster's database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remove && out == "" {
				return usagef("--remove needs -o FILE: the key must be written and read back before it is removed")
			}
			ks, err := g.openKeystore()
			if err != nil {
				return err
			}
			if ks.Backup.Key != nil {
				// Recorded before the private key leaves, so an export that
				// cannot be audited does not happen.
				dest, detail := "standard output", ""
				if out != "" {
					dest = out
				}
				if remove {
					detail = "; removed from " + ks.Dir
				}
				if err := g.recordAudit(cmd.Context(), auditTrustExportBackup, "backup SAST key", "to "+dest+detail); err != nil {
					return err
				}
			}
			if out == "" {
				if ks.Backup.Key == nil {
					return fault.NotFoundf("the backup SAST key is not in %s: it was exported and removed already", ks.Dir)
				}
				tmp := filepath.Join(ks.Dir, ".export.pem")
				_ = os.Remove(tmp)
				if err := ks.ExportBackup(tmp, false); err != nil {
					return err
				}
				defer os.Remove(tmp)
				b, err := os.ReadFile(tmp)
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(b)
				return err
			}
			if remove && g.keysInDB() {
				if err := g.exportClusterBackup(cmd.Context(), ks, out); err != nil {
					return err
				}
			} else if err := ks.ExportBackup(out, remove); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "wrote %s (backup SAST key and certificate, mode 0600)\n", out)
			if remove {
				if g.keysInDB() {
					fmt.Fprintf(g.stderr, "WARNING: the backup SAST key is no longer in the database; %s is now its only copy (nodes serving now drop theirs when they restart).\n", out)
				} else {
					fmt.Fprintf(g.stderr, "WARNING: the backup SAST key is no longer on this machine; %s is now its only copy.\n", out)
				}
				fmt.Fprintf(g.stderr, "WARNING: keep it offline and safe: if the primary key is lost, it is the only key phones will accept a new trust file from.\n")
				fmt.Fprintf(g.stderr, "WARNING: to sign with it: capf trust build --signer-key %s\n", out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file (refuses to overwrite); default: standard output")
	cmd.Flags().BoolVar(&remove, "remove", false, "after writing and reading back FILE, delete the backup key from the data directory (or, on a cluster, the database)")
	return cmd
}
