package cli

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/trust"
)

// sastKeyFlags choose a SAST signing key kept outside the keystore: in a
// PKCS #11 token (or a PEM file elsewhere), named by a key reference.
type sastKeyFlags struct {
	ref, module, pinFile string
	// from names where ref came from in messages: --sast-key, or the
	// node setting sast_key (fromConfig).
	from string
}

// fromConfig returns f with what its flags left unset taken from the node
// settings sast_key, pkcs11_module and pkcs11_pin_file of cfg (file paths
// relative to dataDir): a flag wins over capf.json.
func (f sastKeyFlags) fromConfig(cfg config.Config, dataDir string, changed func(string) bool) sastKeyFlags {
	f.from = "--sast-key"
	if !changed("sast-key") && cfg.SASTKey != "" {
		f.ref, f.from = cfg.SASTKey, "sast_key (capf.json)"
		if ref, err := keyref.Parse(cfg.SASTKey); err == nil && !ref.IsPKCS11() {
			f.ref = config.Resolve(dataDir, cfg.SASTKey)
		}
	}
	if !changed("pkcs11-module") && cfg.PKCS11Module != "" {
		f.module = config.Resolve(dataDir, cfg.PKCS11Module)
	}
	if !changed("pin-file") && cfg.PKCS11PINFile != "" {
		f.pinFile = config.Resolve(dataDir, cfg.PKCS11PINFile)
	}
	return f
}

// register adds --sast-key (described by usage), --pkcs11-module and
// --pin-file to cmd.
func (f *sastKeyFlags) register(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&f.ref, "sast-key", "", usage)
	cmd.Flags().StringVar(&f.module, "pkcs11-module", "", "the HSM vendor's PKCS #11 module (shared library) for a pkcs11: key reference")
	cmd.Flags().StringVar(&f.pinFile, "pin-file", "", "file holding the token's user PIN (mode 0600) for a pkcs11: key reference")
}

// load opens the key of --sast-key, or returns nil when none is given.
// --pkcs11-module and --pin-file without a token key are left alone: serve
// also opens with them the CA keys kept in a token. (startTrustFile
// refuses a key when serve keeps no trust file.)
func (f *sastKeyFlags) load(ctx context.Context) (*keyref.Key, error) {
	if f.ref == "" {
		return nil, nil
	}
	ref, err := keyref.Parse(f.ref)
	if err != nil {
		return nil, within(f.flag(), err)
	}
	k, err := keyref.Load(ctx, ref, keyref.Options{Module: f.module, PINFile: f.pinFile})
	if err != nil {
		return nil, within(f.flag(), err)
	}
	return k, nil
}

// flag names where the key reference came from.
func (f sastKeyFlags) flag() string {
	if f.from == "" {
		return "--sast-key"
	}
	return f.from
}

// within names the flag or setting an error is about in the message the
// administrator reads, keeping the error's kind and chain (errors.Is still
// finds keyref's sentinels).
func within(name string, err error) error {
	if fault.KindOf(err) == fault.Internal {
		return fmt.Errorf("%s: %w", name, err)
	}
	return errors.Join(&fault.Error{Kind: fault.KindOf(err), Msg: name + ": " + fault.Message(err), Field: fault.FieldOf(err)}, err)
}

// sastSigning returns the identity of ks whose certificate key is the
// public half of key, signing with key; flag names where key came from in
// the refusal (--sast-key, --signer-key).
func sastSigning(ks *trust.Keystore, key *keyref.Key, flag string) (trust.Signing, error) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, id := range ks.Identities() {
		if pub, ok := id.Cert.PublicKey.(equaler); ok && pub.Equal(key.Public()) {
			return trust.Signing{Cert: id.Cert, Key: key.Signer()}, nil
		}
	}
	return trust.Signing{}, fault.Invalidf("%s %s matches neither SAST certificate of %s (primary %q, backup %q): its certificate must be one of them, or phones reject the file", flag, key.Ref(), ks.Dir, ks.Primary.Cert.Subject.CommonName, ks.Backup.Cert.Subject.CommonName)
}
