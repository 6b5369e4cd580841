package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/account"
)

func init() { subcommands = append(subcommands, newAdminCmd) }

func newAdminCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Manage the administrator accounts and API tokens of the web UI and the REST API"}
	token := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens"}
	token.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	cmd.AddCommand(newAdminAddCmd(g), newAdminPasswdCmd(g), newAdminRoleCmd(g), newAdminRmCmd(g),
		newAdminDisableCmd(g, true), newAdminDisableCmd(g, false), newAdminListCmd(g), token)
	return cmd
}

// openAccounts opens the store and returns the account service over it and
// a function that closes the store. A readWrite store works while `capf
// serve` runs on the same data directory: SQLite serialises the writers.
func (g *globals) openAccounts(ctx context.Context, mode access) (*account.Service, func(), error) {
	st, err := g.openStore(ctx, mode)
	if err != nil {
		return nil, nil, err
	}
	return account.NewService(account.Options{Store: st}), func() { st.Close() }, nil
}

// readPassword returns the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, account.MaxPasswordLen+3), account.MaxPasswordLen+3)
	line, err := br.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	if !strings.HasSuffix(line, "\n") && len(line) > account.MaxPasswordLen {
		return "", usagef("the password on stdin is longer than %d bytes", account.MaxPasswordLen)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", usagef("--password-stdin: stdin holds no password")
	}
	return line, nil
}

// newPassword returns the password from stdin, or a generated one
// (generated true) when fromStdin is false.
func (g *globals) newPassword(fromStdin bool) (pw string, generated bool, err error) {
	if fromStdin {
		pw, err := readPassword(g.stdin)
		return pw, false, err
	}
	pw, err = account.GeneratePassword(rand.Reader)
	return pw, true, err
}

// printSecret prints a generated password or a token secret alone on
// stdout, so that a script can capture it, and what it is on stderr.
func (g *globals) printSecret(secret, what string) {
	fmt.Fprintln(g.stdout, secret)
	fmt.Fprintf(g.stderr, "%s: shown only now, keep it safe\n", what)
}

func newAdminAddCmd(g *globals) *cobra.Command {
	var role string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add an account; without --password-stdin a random password is generated and printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := account.ParseRole(role)
			if err != nil {
				return err
			}
			pw, generated, err := g.newPassword(fromStdin)
			if err != nil {
				return err
			}
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			a, err := svc.AddAccount(cmd.Context(), g.actor(), args[0], r, pw)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "added account %s (role %s)\n", a.Name, a.Role)
			if generated {
				g.printSecret(pw, "password of "+a.Name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", string(account.RoleAdmin), "admin (may change everything) or viewer (read only)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, fmt.Sprintf("read the password (at least %d characters) from the first line of stdin", account.MinPasswordLen))
	return cmd
}

func newAdminPasswdCmd(g *globals) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set an account's password (ends its sessions, clears its login throttle); without --password-stdin a random one is generated and printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, generated, err := g.newPassword(fromStdin)
			if err != nil {
				return err
			}
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			if err := svc.SetPassword(cmd.Context(), g.actor(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "password of %s changed; its sessions are ended\n", args[0])
			if generated {
				g.printSecret(pw, "password of "+args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, fmt.Sprintf("read the password (at least %d characters) from the first line of stdin", account.MinPasswordLen))
	return cmd
}

func newAdminRoleCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "role NAME ROLE",
		Short: "Give an account the admin or the viewer role (the last admin keeps its role)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := account.ParseRole(args[1])
			if err != nil {
				return err
			}
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			a, err := svc.SetRole(cmd.Context(), g.actor(), args[0], r)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: role %s\n", a.Name, a.Role)
			return nil
		},
	}
}

func newAdminRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove an account and end its sessions (the last admin cannot be removed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			if err := svc.RemoveAccount(cmd.Context(), g.actor(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed account %s\n", args[0])
			return nil
		},
	}
}

// newAdminDisableCmd is "admin disable NAME" (disable true) or "admin
// enable NAME".
func newAdminDisableCmd(g *globals, disable bool) *cobra.Command {
	use, short := "enable NAME", "Let a disabled account log in again (the API tokens it owns work again)"
	if disable {
		use, short = "disable NAME", "Disable an account without removing it: no login, its sessions end, the API tokens it owns stop working (the last enabled admin cannot be disabled)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			change, state := svc.EnableAccount, "enabled"
			if disable {
				change, state = svc.DisableAccount, "disabled"
			}
			a, err := change(cmd.Context(), g.actor(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%s: %s\n", a.Name, state)
			return nil
		},
	}
}

// when formats an optional time for a table.
func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}

func newAdminListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := g.openAccounts(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			as, err := svc.Accounts(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, as)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tLAST LOGIN\tDISABLED")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Role, when(a.CreatedAt, "-"), when(a.LastLogin, "never"), when(a.DisabledAt, "-"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var role, expires string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token and print its secret once (the server keeps only its hash)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := account.ParseRole(role)
			if err != nil {
				return err
			}
			ttl, err := account.ParseTTL(expires)
			if err != nil {
				return err
			}
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			secret, t, err := svc.CreateToken(cmd.Context(), g.actor(), "", args[0], r, ttl) // a service token
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "created token %s (role %s, expires %s)\n", t.Name, t.Role, when(t.ExpiresAt, "never"))
			g.printSecret(secret, "token "+t.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", string(account.RoleViewer), "viewer (read only) or admin (may change everything)")
	cmd.Flags().StringVar(&expires, "expires", "90d", "lifetime: days (90d), a duration (12h) or 0 for never")
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the API tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, done, err := g.openAccounts(cmd.Context(), readOnly)
			if err != nil {
				return err
			}
			defer done()
			ts, err := svc.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, ts)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tOWNER\tCREATED\tEXPIRES\tLAST USED\tCREATED BY")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, tokenRole(t), t.OwnerLabel(), when(t.CreatedAt, "-"),
					when(t.ExpiresAt, "never"), when(t.LastUsed, "never"), t.CreatedBy)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API token: it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, done, err := g.openAccounts(cmd.Context(), readWrite)
			if err != nil {
				return err
			}
			defer done()
			if err := svc.RevokeToken(cmd.Context(), g.actor(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "revoked token %s\n", args[0])
			return nil
		},
	}
}

// tokenRole is the token's role as listed: its own, and what its owner's
// current role caps it at when that is less.
func tokenRole(t account.Token) string {
	if c := t.Capped(); c != "" {
		return fmt.Sprintf("%s (%s)", t.Role, c)
	}
	return string(t.Role)
}
