package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/apiclient"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/view"
)

func init() { subcommands = append(subcommands, newCertCmd) }

func newCertCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cert", Short: "Every LSC ever issued: list, show and revoke (revoked LSCs go on the CRL and OCSP answers revoked)"}
	for _, sub := range []*cobra.Command{newCertListCmd(g), newCertShowCmd(g), newCertRevokeCmd(g)} {
		cmd.AddCommand(canRunRemote(sub))
	}
	return canRunRemote(cmd)
}

// certAdmin is what the cert commands work through: the data directory's
// issued-LSC service, or a remote server's REST API.
type certAdmin interface {
	List(ctx context.Context, q lsc.Query) ([]view.Certificate, error)
	Get(ctx context.Context, serial string) (view.Certificate, error)
	Revoke(ctx context.Context, serial, reason string) (view.Certificate, error)
}

// certAdmin returns the certAdmin a command works through and a function
// that releases it: remote when --server (or CAPF_SERVER) names a server,
// else the store, opened with mode.
func (g *globals) certAdmin(ctx context.Context, mode access) (certAdmin, func(), error) {
	if g.remote.server != "" {
		c, err := g.apiClient()
		if err != nil {
			return nil, nil, err
		}
		return remoteCerts{c}, c.Close, nil
	}
	st, err := g.openStore(ctx, mode)
	if err != nil {
		return nil, nil, err
	}
	return localCerts{g: g, svc: lsc.NewService(lsc.Options{Store: st})}, func() { st.Close() }, nil
}

// localCerts works on the store through lsc.Service.
type localCerts struct {
	g   *globals
	svc *lsc.Service
}

func (l localCerts) List(ctx context.Context, q lsc.Query) ([]view.Certificate, error) {
	rs, err := l.svc.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return view.Certificates(rs, l.svc.Now()), nil
}

func (l localCerts) Get(ctx context.Context, serial string) (view.Certificate, error) {
	r, err := l.svc.Get(ctx, serial)
	if err != nil {
		return view.Certificate{}, err
	}
	return view.CertificateOf(r, l.svc.Now(), true), nil
}

func (l localCerts) Revoke(ctx context.Context, serial, reason string) (view.Certificate, error) {
	r, err := l.svc.Revoke(ctx, l.g.actor(), serial, reason)
	if err != nil {
		return view.Certificate{}, err
	}
	return view.CertificateOf(r, l.svc.Now(), false), nil
}

// remoteCerts works on a remote server through its REST API; the server
// applies the rules and records the token's name as the actor. The serial
// and reason are checked here first, as the service checks them, so that
// a mistake gets the local message and no request.
type remoteCerts struct{ c *apiclient.Client }

func (r remoteCerts) List(ctx context.Context, q lsc.Query) ([]view.Certificate, error) {
	if q.Device != "" {
		if _, err := lsc.NormalizeDevice(q.Device); err != nil {
			return nil, err
		}
	}
	return r.c.Certificates(ctx, q)
}

func (r remoteCerts) Get(ctx context.Context, serial string) (view.Certificate, error) {
	norm, err := lsc.ParseSerial(serial)
	if err != nil {
		return view.Certificate{}, err
	}
	return r.c.Certificate(ctx, norm)
}

func (r remoteCerts) Revoke(ctx context.Context, serial, reason string) (view.Certificate, error) {
	norm, err := lsc.ParseSerial(serial)
	if err != nil {
		return view.Certificate{}, err
	}
	why, err := lsc.ParseReason(reason)
	if err != nil {
		return view.Certificate{}, err
	}
	return r.c.RevokeCertificate(ctx, norm, why.String())
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
			certs, done, err := g.certAdmin(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			vs, err := certs.List(cmd.Context(), q)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, vs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tDEVICE\tSTATUS\tISSUED\tNOT AFTER\tREASON\tISSUER KEY")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Serial, v.Device, v.Status, stamp(v.IssuedAt), stamp(v.NotAfter), v.Reason, shortKeyID(v.IssuerKeyID))
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
			certs, done, err := g.certAdmin(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			v, err := certs.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
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
			certs, done, err := g.certAdmin(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			v, err := certs.Revoke(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
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
