package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
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
			page, now, err := g.find(cmd.Context(), &f)
			if err != nil {
				return err
			}
			return writeReport(g.stdout, out, page.Devices, now)
		},
	}
	f.register(csvCmd)
	csvCmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	cmd.AddCommand(csvCmd)
	return cmd
}

// reportFileMode is the mode of a report written with -o: it holds the
// authentication strings.
const reportFileMode = 0o600

func writeReport(stdout io.Writer, path string, ds []device.Device, now time.Time) error {
	if path == "" {
		w := bufio.NewWriter(stdout)
		if err := report.WriteReport(w, ds, now); err != nil {
			return err
		}
		return w.Flush()
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
	w := bufio.NewWriter(f)
	if err := report.WriteReport(w, ds, now); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
