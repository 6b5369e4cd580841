package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/store"
)

func init() { subcommands = append(subcommands, newKEKCmd) }

func newKEKCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "kek", Short: "Manage the key-encryption key that seals a cluster's keys in the database"}
	var newFile string
	var generate bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every key of the PostgreSQL --db from --kek-file under --new-kek-file, in one transaction",
		Long: `kek rotate opens every private key of the cluster with the KEK in --kek-file and seals
it again under the KEK in --new-kek-file (with --generate, a new one written there, mode
0600), all in one transaction: either every key moves to the new KEK or none does. Afterwards
the old KEK opens nothing; restart every node with --kek-file set to the new file (running
nodes keep the keys they loaded).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKEKRotate(cmd.Context(), g, newFile, generate)
		},
	}
	rotate.Flags().StringVar(&newFile, "new-kek-file", "", "the new key-encryption key file (required)")
	rotate.Flags().BoolVar(&generate, "generate", false, "write a new key-encryption key to --new-kek-file first (an existing file is never replaced)")
	cmd.AddCommand(rotate)
	return cmd
}

func runKEKRotate(ctx context.Context, g *globals, newFile string, generate bool) error {
	if newFile == "" {
		return usagef("--new-kek-file is required")
	}
	old, err := g.loadKEK()
	if err != nil {
		return err
	}
	var next *kek.KEK
	if !generate {
		if next, err = kek.Load(newFile); err != nil {
			return err
		}
	}
	st, err := store.Open(ctx, g.storeOptions(store.ReadWrite))
	if err != nil {
		return err
	}
	defer st.Close()
	if generate {
		if next, err = kek.Generate(newFile, nil); err != nil {
			return err
		}
	}
	n, err := keys.Rotate(ctx, st, old, next, g.actor(), time.Now())
	if err != nil {
		if generate {
			_ = os.Remove(newFile) // it sealed nothing
		}
		return err
	}
	fmt.Fprintf(g.stdout, "re-sealed %d keys of %s under the KEK %s (%s); the KEK %s (%s) opens none of them now\n",
		n, store.Describe(g.storeOptions(store.ReadWrite)), next.Path(), next.ID(), old.Path(), old.ID())
	fmt.Fprintf(g.stdout, "restart every node with --kek-file %s (copy it to each over a secure channel), then destroy %s\n", next.Path(), old.Path())
	return nil
}
