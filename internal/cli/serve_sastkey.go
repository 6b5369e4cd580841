package cli

import (
	"context"
	"crypto"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/trust"
)

// sastKeyFlags choose a SAST signing key kept outside the keystore: in a
// PKCS #11 token (or a PEM file elsewhere), named by a key reference.
type sastKeyFlags struct {
	ref, module, pinFile string
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
		return nil, fmt.Errorf("--sast-key: %w", err)
	}
	k, err := keyref.Load(ctx, ref, keyref.Options{Module: f.module, PINFile: f.pinFile})
	if err != nil {
		return nil, fmt.Errorf("--sast-key: %w", err)
	}
	return k, nil
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
