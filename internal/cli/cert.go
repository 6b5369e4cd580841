package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/view"
)

func init() { subcommands = append(subcommands, newCertCmd) }

func newCertCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cert", Short: "Every LSC ever issued: list, show and revoke (revoked LSCs go on the CRL and OCSP answers revoked)"}
	cmd.AddCommand(newCertListCmd(g), newCertShowCmd(g), newCertRevokeCmd(g))
	return cmd
}

// openCerts opens the store and returns the issued-LSC service over it and
// a function that closes the store.
func (g *globals) openCerts(ctx context.Context, mode access) (*lsc.Service, func(), error) {
	st, err := g.openStore(ctx, mode)
	if err != nil {
		return nil, nil, err
	}
	return lsc.NewService(lsc.Options{Store: st}), func() { st.Close() }, nil
}

func newCertListCmd(g *globals) *cobra.Command {
	var name, status string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the issued LSCs, newest first, with device, issuer key, validity, state and revocation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := lsc.Query{Device: strings.ToUpper(strings.TrimSpace(name)), Limit: limit}
			if status != "" {
				st, err := lsc.ParseStatus(status)
				if err != nil {
					return err
				}
				q.Status = st
			}
			svc, done, err := g.openCerts(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			rs, err := svc.List(cmd.Context(), q)
			if err != nil {
				return err
			}
			now := svc.Now()
			if asJSON {
				return printJSON(g.stdout, view.Certificates(rs, now))
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tDEVICE\tSTATUS\tISSUED\tNOT AFTER\tREASON\tISSUER KEY")
			for _, r := range rs {
				reason := ""
				if r.Revoked() {
					reason = r.Reason.String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Serial, r.Device, r.Status(now), stamp(r.IssuedAt), stamp(r.NotAfter), reason, shortKeyID(r.IssuerKeyID))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&name, "device", "", "only the LSCs issued to this device")
	cmd.Flags().StringVar(&status, "status", "", "only the LSCs in this state: valid, revoked, expired or superseded")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (0: up to 10000)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newCertShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SERIAL",
		Short: "Show one issued LSC (serial in hex as openssl x509 -serial prints it; case and colons ignored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := g.openCerts(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			r, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			v := view.CertificateOf(r, svc.Now(), true)
			if asJSON {
				return printJSON(g.stdout, v)
			}
			printCert(g, v)
			fmt.Fprint(g.stdout, v.PEM)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newCertRevokeCmd(g *globals) *cobra.Command {
	var reason string
	var asJSON bool
	names := make([]string, 0, len(lsc.AdminReasons))
	for _, r := range lsc.AdminReasons {
		names = append(names, r.String())
	}
	cmd := &cobra.Command{
		Use:   "revoke SERIAL --reason REASON",
		Short: "Revoke an issued LSC: its CA's CRL lists it (regenerated within seconds by the serving fleet) and OCSP answers revoked",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usagef("revoke: --reason is required: one of %s", strings.Join(names, ", "))
			}
			svc, done, err := g.openCerts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			r, err := svc.Revoke(cmd.Context(), g.actor(), args[0], reason)
			if err != nil {
				return err
			}
			v := view.CertificateOf(r, svc.Now(), false)
			if asJSON {
				return printJSON(g.stdout, v)
			}
			fmt.Fprintf(g.stdout, "revoked %s (device %s, %s)\n", v.Serial, v.Device, v.Reason)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "RFC 5280 reason: "+strings.Join(names, ", "))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the certificate as JSON")
	return cmd
}

// printCert prints v as aligned lines.
func printCert(g *globals, v view.Certificate) {
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "serial:\t%s\n", v.Serial)
	fmt.Fprintf(tw, "device:\t%s\n", v.Device)
	fmt.Fprintf(tw, "status:\t%s\n", v.Status)
	fmt.Fprintf(tw, "issuer:\t%s\n", v.Issuer)
	fmt.Fprintf(tw, "issuer key id:\t%s\n", v.IssuerKeyID)
	fmt.Fprintf(tw, "issued:\t%s (attempt %d)\n", stamp(v.IssuedAt), v.AttemptID)
	fmt.Fprintf(tw, "valid:\t%s to %s\n", stamp(v.NotBefore), stamp(v.NotAfter))
	if v.RevokedAt != nil {
		fmt.Fprintf(tw, "revoked:\t%s, %s, by %s\n", stamp(*v.RevokedAt), v.Reason, v.RevokedBy)
	}
	_ = tw.Flush()
}

// stamp formats t for a table, or "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// shortKeyID shortens a key id for a table.
func shortKeyID(id string) string {
	if len(id) > 16 {
		return id[:16] + "…"
	}
	if id == "" {
		return "-"
	}
	return id
}
