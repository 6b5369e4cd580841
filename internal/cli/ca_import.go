package cli

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keys"
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
	chain, err := caset.CheckImport(leaf, more, key.Public(), "the key "+args[1], time.Now())
	if err != nil {
		return err
	}
	st, _, err := g.caMadeElsewhereStore(ctx, key.Public())
	if err != nil {
		return err
	}
	defer st.Close()
	rec, err := g.stageMadeElsewhere(ctx, st, chain, key, caset.AuditImport)
	if err != nil {
		return err
	}
	g.printStaged(rec, chain)
	return nil
}

// stageMadeElsewhere stores key as the key of chain's CA (sealed in the
// keys table on a cluster with a KEK, else DATA/ca/ID) and stages chain,
// both or neither.
func (g *globals) stageMadeElsewhere(ctx context.Context, st store.Store, chain []*x509.Certificate, key crypto.Signer, action string) (caset.Record, error) {
	id, err := caset.KeyID(chain[0])
	if err != nil {
		return caset.Record{}, err
	}
	recs, err := st.ListCAs(ctx)
	if err != nil {
		return caset.Record{}, err
	}
	for _, r := range recs {
		if r.ID == id {
			return caset.Record{}, fault.Conflictf("CA %s is in the CA set already (%s): nothing was stored", id, r.State)
		}
	}
	svc := caset.NewService(st, nil)
	if g.keysInDB() {
		ck, err := g.clusterKeysOf(ctx)
		if err != nil {
			return caset.Record{}, err
		}
		kr, err := keys.NewService(st, ck.kek, nil).Record(keys.Material{ID: caKeyPrefix + id, Kind: keys.KindCAPF, Chain: chain, Key: key})
		if err != nil {
			return caset.Record{}, err
		}
		return svc.StageMadeElsewhere(ctx, chain, kr.ID, &kr, action, g.actor())
	}
	dir := filepath.Join(g.dir().CA(), id)
	if err := ca.Install(dir, chain[0], key); err != nil {
		return caset.Record{}, err
	}
	rec, err := svc.StageMadeElsewhere(ctx, chain, caKeyPrefix+id, nil, action, g.actor())
	if err != nil {
		_ = os.RemoveAll(dir) // never stored: nothing refers to it
		return caset.Record{}, err
	}
	return rec, nil
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
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	alg := ca.KeyAlgorithm(cfg.CAKey)
	if algFlag != "" {
		if alg, err = ca.ParseKeyAlgorithm(algFlag); err != nil {
			return err
		}
	}
	name, err := parseSubject(subject)
	if err != nil {
		return err
	}
	if !g.caSetShared() {
		return errCASetNotShared
	}
	if cfg.TLSProfile == "legacy" && alg != ca.RSA2048 && alg != ca.RSA3072 && alg != ca.RSA4096 {
		return usagef("tls_profile legacy needs an RSA CAPF key: --key-algorithm %s would not serve old phones", alg)
	}
	if g.keysInDB() {
		return g.caCSRSealed(ctx, name, alg)
	}
	if a, err := ca.Load(ca.Options{Dir: g.pendingDir()}); err == nil {
		return fault.Conflictf("a pending key %s is waiting for its certificate in %s (capf ca install-signed); to start over: capf ca csr --discard", caset.PublicKeyID(a.Signer().Public()), g.pendingDir())
	} else if _, serr := os.Stat(g.pendingDir()); !errors.Is(serr, fs.ErrNotExist) {
		return fmt.Errorf("the pending key in %s: %w", g.pendingDir(), err)
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	// The placeholder certificate only lets the key be stored as every CA
	// key is; the CA set never holds it.
	a, err := ca.Generate(ca.Options{KeyAlgorithm: alg, Subject: name})
	if err != nil {
		return err
	}
	name = a.Certificate().Subject // with the generated CN when none was given
	der, err := createCACSR(name, a.Signer())
	if err != nil {
		return err
	}
	id := caset.PublicKeyID(a.Signer().Public())
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: caset.AuditCSR, Target: id,
		Detail: fmt.Sprintf("pending %s key for %s made for an outside CA to certify (capf ca install-signed)", alg, name)}
	if err := ca.Install(g.pendingDir(), a.Certificate(), a.Signer()); err != nil {
		return err
	}
	if err := st.AppendAudit(ctx, ev); err != nil {
		_ = os.RemoveAll(g.pendingDir()) // not audited: not kept
		return fmt.Errorf("audit: %w", err)
	}
	fmt.Fprintf(g.stderr, "pending key %s (%s) in %s; have the outside CA sign this request as a CA (basic constraints CA:TRUE, keyCertSign), then: capf ca install-signed CERT.pem [CHAIN.pem]\n", id, alg, g.pendingDir())
	return pem.Encode(g.stdout, &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// createCACSR returns a PKCS #10 request for a CA certificate for key:
// basic constraints CA:TRUE (critical) and key usage keyCertSign, cRLSign
// and digitalSignature (keyEncipherment too for RSA, which the legacy TLS
// profile's key exchange needs), as the CAPF's own certificates have.
func createCACSR(name pkix.Name, key crypto.Signer) ([]byte, error) {
	bc, err := asn1.Marshal(struct{ IsCA bool }{true})
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	ku, err := keyUsageExtension(usage)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: name, ExtraExtensions: []pkix.Extension{
		{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc},
		ku,
	}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("make the certificate request: %w", err)
	}
	return der, nil
}

// keyUsageExtension encodes usage as the key usage extension (critical).
func keyUsageExtension(usage x509.KeyUsage) (pkix.Extension, error) {
	var bits [2]byte
	n := 0
	for i := range 9 {
		if usage&(1<<i) != 0 {
			bits[i/8] |= 0x80 >> (i % 8)
			n = i + 1
		}
	}
	b := asn1.BitString{Bytes: bits[:(n+7)/8], BitLength: n}
	v, err := asn1.Marshal(b)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: v}, nil
}

// parseSubject reads "CN=…,O=…,OU=…,L=…,ST=…,C=…" (no escaped commas);
// empty is the zero name.
func parseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	if strings.TrimSpace(s) == "" {
		return n, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || v == "" {
			return n, usagef("--subject %q: want attributes like CN=name,O=organisation", s)
		}
		switch k {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "C":
			n.Country = append(n.Country, v)
		default:
			return n, usagef("--subject: unknown attribute %q (CN, O, OU, L, ST or C)", k)
		}
	}
	return n, nil
}

func (g *globals) caInstallSigned(ctx context.Context, args []string) error {
	if !g.caSetShared() {
		return errCASetNotShared
	}
	if g.keysInDB() {
		return g.caInstallSignedSealed(ctx, args)
	}
	pending, err := ca.Load(ca.Options{Dir: g.pendingDir()})
	if err != nil {
		if _, serr := os.Stat(filepath.Join(g.pendingDir(), ca.KeyFile)); errors.Is(serr, fs.ErrNotExist) {
			return fault.NotFoundf("no pending key: capf ca csr makes one and its certificate request")
		}
		return fmt.Errorf("the pending key in %s: %w", g.pendingDir(), err)
	}
	key := pending.Signer()
	leaf, more, err := readCertFiles(args...)
	if err != nil {
		return err
	}
	chain, err := caset.CheckImport(leaf, more, key.Public(), "the pending key", time.Now())
	if err != nil {
		return err
	}
	st, _, err := g.caMadeElsewhereStore(ctx, key.Public())
	if err != nil {
		return err
	}
	defer st.Close()
	rec, err := g.stageMadeElsewhere(ctx, st, chain, key, caset.AuditInstallSigned)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(g.pendingDir()); err != nil { // its key is the staged CA's now
		return fmt.Errorf("staged %s, but remove the pending key: %w", rec.ID, err)
	}
	g.printStaged(rec, chain)
	return nil
}
