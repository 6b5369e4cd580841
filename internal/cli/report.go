package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func init() { subcommands = append(subcommands, newReportCmd) }

func newReportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "CAPF reports"}
	var f listFlags
	var out string
	csvCmd := &cobra.Command{
		Use:   "csv",
		Short: "Write the CAPF report (CSV, opens in a spreadsheet; `capf device import` accepts it back)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := f.query(time.Now()); err != nil {
				return err
			}
			a, done, err := g.deviceAdmin(readOnly)
			if err != nil {
				return err
			}
			defer done()
			return writeReport(g.stdout, out, func(w io.Writer) error { return a.Report(cmd.Context(), w, f.c) })
		},
	}
	f.register(csvCmd)
	csvCmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.AddCommand(canRunRemote(csvCmd))
	return canRunRemote(cmd)
}

// reportFileMode is the mode of a report written with -o: it holds the
// authentication strings.
const reportFileMode = 0o600

// writeReport writes the report gen makes to stdout, or to the file path.
// The file is written only once the whole report is made, so that a
// failure (a store that does not open, a server that refuses) leaves an
// earlier report there as it was.
func writeReport(stdout io.Writer, path string, gen func(io.Writer) error) error {
	if path == "" {
		w := bufio.NewWriter(stdout)
		if err := gen(w); err != nil {
			return err
		}
		return w.Flush()
	}
	var buf bytes.Buffer
	if err := gen(&buf); err != nil {
		return err
	}
	// The report holds authentication strings: owner only. Chmod too, since
	// O_TRUNC keeps the mode of a file that already exists.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, reportFileMode)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := f.Chmod(reportFileMode); err != nil {
		f.Close()
		return fmt.Errorf("report: %w", err)
	}
	if _, err := buf.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("report: %w", err)
	}
	return f.Close()
}
