package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/report"
	"github.com/capf-server/capf/internal/view"
)

func init() { subcommands = append(subcommands, newDeviceCmd) }

func newDeviceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Add, change, find, import and remove phones and their CAPF settings"}
	for _, sub := range []*cobra.Command{newDeviceAddCmd(g, "add"), newDeviceAddCmd(g, "set"), newDeviceShowCmd(g),
		newDeviceListCmd(g), newDeviceRmCmd(g), newDeviceImportCmd(g), newDeviceResetCmd(g)} {
		cmd.AddCommand(canRunRemote(sub))
	}
	return canRunRemote(cmd)
}

// settingFlags are the CAPF settings of the Phone Configuration window.
type settingFlags struct {
	description, profile, mode, authString, operation, key, deadline string
	generate, asJSON                                                 bool
}

func (f *settingFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.description, "description", "", "description")
	fl.StringVar(&f.profile, "security-profile", "", "non-secure, authenticated or encrypted")
	fl.StringVar(&f.mode, "auth-mode", "", "string, null, lsc or mic")
	fl.StringVar(&f.authString, "auth-string", "", "authentication string, 4 to 10 digits; \"\" clears it")
	fl.BoolVar(&f.generate, "generate-string", false, "generate a new random authentication string")
	fl.StringVar(&f.operation, "operation", "", "none, install, delete or troubleshoot")
	fl.StringVar(&f.key, "key", "", config.Choices(config.PhoneKeys))
	fl.StringVar(&f.deadline, "deadline", "", "Operation Completes By, RFC 3339 (e.g. 2026-12-01T18:00:00Z) or \"2026-12-01 18:00\" in UTC; \"none\" clears it")
	fl.BoolVar(&f.asJSON, "json", false, "print the device as JSON")
}

// change turns the flags that were set into a device.Change with the one
// parser of device changes.
func (f *settingFlags) change(changed func(string) bool) (device.Change, error) {
	if changed("auth-string") && f.generate {
		return device.Change{}, usagef("--auth-string and --generate-string exclude each other")
	}
	in := device.ChangeInput{GenerateString: f.generate}
	for _, fl := range []struct {
		name string
		v    *string
		to   **string
	}{
		{"description", &f.description, &in.Description},
		{"security-profile", &f.profile, &in.SecurityProfile},
		{"auth-mode", &f.mode, &in.AuthMode},
		{"auth-string", &f.authString, &in.AuthString},
		{"operation", &f.operation, &in.Operation},
		{"key", &f.key, &in.Key},
		{"deadline", &f.deadline, &in.Deadline},
	} {
		if changed(fl.name) {
			*fl.to = fl.v
		}
	}
	return in.Parse()
}

func newDeviceAddCmd(g *globals, verb string) *cobra.Command {
	var f settingFlags
	short := "Add a phone"
	if verb == "set" {
		short = "Change a phone's CAPF settings"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.change(cmd.Flags().Changed)
			if err != nil {
				return err
			}
			a, done, err := g.deviceAdmin(readWrite)
			if err != nil {
				return err
			}
			defer done()
			var d view.Device
			if verb == "add" {
				d, err = a.AddDevice(cmd.Context(), args[0], c)
			} else {
				d, err = a.ChangeDevice(cmd.Context(), args[0], c)
			}
			if err != nil {
				return err
			}
			return printDevice(g.stdout, d, f.asJSON)
		},
	}
	f.register(cmd)
	return cmd
}

// newDevice builds a new device from the fields of c that were given.
func newDevice(name string, c device.Change) device.Device {
	d := device.Device{Name: name}
	c.Apply(&d)
	return d
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printDevice prints a device's Phone Configuration, from its view so that
// a local and a remote command print the same.
func printDevice(w io.Writer, d view.Device, asJSON bool) error {
	if asJSON {
		return printJSON(w, d)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	deadline, validUntil, serial, issuer := report.NA, report.NA, report.NA, report.NA
	if d.Deadline != nil {
		deadline = d.Deadline.UTC().Format(time.RFC3339)
	}
	if d.LSCValidUntil != nil {
		validUntil, serial, issuer = d.LSCValidUntil.UTC().Format(time.RFC3339), d.LSCSerial, d.LSCIssuer
	}
	for _, row := range [][2]string{
		{"Device Name", d.Name},
		{"Description", d.Description},
		{"Security Profile", device.SecurityProfile(d.SecurityProfile).Label()},
		{"Certificate Operation", device.Operation(d.Operation).Label()},
		{"Authentication Mode", device.AuthMode(d.AuthMode).Label()},
		{"Authentication String", report.OrNA(d.AuthString)},
		{"Key", d.Key},
		{"Operation Completes By", deadline},
		{"Operation Status", d.Status},
		{"LSC Status", d.LSCStatus},
		{"LSC Serial", serial},
		{"LSC Issuer", issuer},
		{"LSC Valid Until", validUntil},
		{"Last Contact", lastContact(d.LastContact)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if d.Warning != "" {
		fmt.Fprintf(tw, "Warning:\t%s\n", d.Warning)
	}
	return tw.Flush()
}

// lastContact is the Last Contact line: time, address, outcome, reason.
func lastContact(c *view.Contact) string {
	if c == nil {
		return "none on record"
	}
	s := c.At.UTC().Format(time.RFC3339) + "  from " + c.Remote + "  " + c.Outcome
	if c.Reason != "" {
		s += ": " + c.Reason
	}
	return s
}

func newDeviceShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	var history int
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a phone's CAPF settings, status, LSC and recent attempts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, done, err := g.deviceAdmin(readOnly)
			if err != nil {
				return err
			}
			defer done()
			d, err := a.ShowDevice(cmd.Context(), args[0], history)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, d)
			}
			if err := printDevice(g.stdout, d.Device, false); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "%-24s%s\n", "Last Reset:", lastReset(d.LastReset))
			if len(d.Fetched) > 0 {
				fmt.Fprintf(g.stdout, "\nTroubleshoot certificates:\n")
				for _, f := range d.Fetched {
					fmt.Fprintf(g.stdout, "  %s  %s  %d bytes\n", f.FetchedAt.Format(time.RFC3339), f.Type, len(f.DER))
				}
			}
			fmt.Fprintf(g.stdout, "\nHistory (newest first):\n")
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  STARTED\tREMOTE\tOPERATION\tAUTH\tSUDI\tRESULT\tREASON")
			for _, a := range d.History {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.StartedAt.Format(time.RFC3339), a.Remote, a.Operation, report.OrNA(a.AuthMode), report.OrNA(a.SUDI), a.Result, a.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().IntVar(&history, "history", 20, "how many attempts to show (0: all)")
	return cmd
}

func newDeviceRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a phone (certificates issued to it stay on record)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, done, err := g.deviceAdmin(readWrite)
			if err != nil {
				return err
			}
			defer done()
			if err := a.RemoveDevice(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %s\n", strings.ToUpper(args[0]))
			return nil
		},
	}
}

func newDeviceImportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Add or update phones from a CSV file, all or nothing (the CAPF report is accepted back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return usagef("import: %v", err)
			}
			defer f.Close()
			a, done, err := g.deviceAdmin(readWrite)
			if err != nil {
				return err
			}
			defer done()
			// Locally the file is parsed on this host; remotely it goes as
			// it is, and the server names a bad line in the same words.
			counts, err := a.Import(cmd.Context(), args[0], f)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "imported %d devices: %d added, %d updated, %d unchanged\n",
				counts.Created+counts.Updated+counts.Unchanged, counts.Created, counts.Updated, counts.Unchanged)
			return nil
		},
	}
}
