package cli

import (
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/trust"
)

// newTrustSASTCertCmd makes the SAST certificate of a key kept outside the
// keystore (a PKCS #11 token), signed by that key, for serve --sast-key.
func newTrustSASTCertCmd(g *globals) *cobra.Command {
	var f sastKeyFlags
	var name, out string
	cmd := &cobra.Command{
		Use:   "sast-cert --sast-key pkcs11:token=LABEL;object=NAME --pkcs11-module PATH --pin-file FILE",
		Short: "Print a self-signed SAST certificate for a key in a PKCS #11 token (RSA ≤ 2048), signed in the token, for serve --sast-key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.ref == "" {
				return usagef("give the key: --sast-key pkcs11:token=LABEL;object=NAME")
			}
			k, err := f.load(cmd.Context())
			if err != nil {
				return err
			}
			defer k.Close()
			c, err := trust.NewSASTCertificate(strings.ToLower(name), k.Signer(), trust.KeystoreOptions{})
			if err != nil {
				return fmt.Errorf("--sast-key %s: %w", k.Ref(), err)
			}
			b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
			if out == "" {
				_, err = g.stdout.Write(b)
				return err
			}
			if err := atomicfile.Write(out, b, 0o644, true); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "wrote %s (%s)\n", out, nameOf(c))
			return nil
		},
	}
	f.register(cmd, "the key: pkcs11:token=LABEL;object=NAME (RSA, at most 2048 bits)")
	cmd.Flags().StringVar(&name, "name", trust.Primary, "the identity it is for: primary or backup (goes into the subject)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the PEM certificate to this file (not replaced if it exists) instead of stdout")
	return cmd
}
