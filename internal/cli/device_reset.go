package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

func (l *localAdmin) ResetDevice(ctx context.Context, name string) (view.Reset, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return view.Reset{}, err
	}
	defer done()
	r, err := svc.Reset(ctx, l.g.actor(), name)
	if v := view.ResetOf(r); v != nil {
		return *v, err
	}
	return view.Reset{}, err
}

func (l *localAdmin) ResetDevices(ctx context.Context, c device.Criteria) (view.BulkReset, error) {
	svc, done, err := l.service(ctx)
	if err != nil {
		return view.BulkReset{}, err
	}
	defer done()
	b, err := svc.ResetMatching(ctx, l.g.actor(), c)
	if err != nil {
		return view.BulkReset{}, err
	}
	return view.BulkResetOf(b), nil
}

func (r remoteAdmin) ResetDevice(ctx context.Context, name string) (view.Reset, error) {
	if _, err := device.NormalizeName(name); err != nil {
		return view.Reset{}, err
	}
	return r.c.ResetDevice(ctx, name)
}

func (r remoteAdmin) ResetDevices(ctx context.Context, c device.Criteria) (view.BulkReset, error) {
	return r.c.ResetDevices(ctx, c)
}

// errResetsFailed is the exit error of a bulk reset some of whose phones
// were not reset; the lines printed say which.
type errResetsFailed struct{ failed, skipped int }

func (e errResetsFailed) Error() string {
	return fmt.Sprintf("%d resets failed, %d phones skipped", e.failed, e.skipped)
}

func newDeviceResetCmd(g *globals) *cobra.Command {
	var f listFlags
	cmd := &cobra.Command{
		Use:   "reset [NAME]",
		Short: "Reset a phone, or every phone a search matches, so it restarts and contacts the CAPF (Save, then Reset)",
		Long: `reset asks the PBX to send the phone a SIP NOTIFY with Event: check-sync, through the
notifier the node settings configure (reset_ami_address, or reset_command; see README
"Reset after Save"). Name one phone, or select phones with the search flags of
capf device list (at most ` + fmt.Sprint(device.MaxBulkReset) + `; after ` + fmt.Sprint(device.BulkResetFailureStop) + ` failures in a row the rest are
skipped). Each reset is audited and its outcome kept; capf device show prints the last.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			searched := false
			for _, fl := range []string{"name", "description", "auth-string", "security-profile", "lsc-status", "operation",
				"status", "expires-before", "where", "sort", "desc", "limit", "offset"} {
				searched = searched || cmd.Flags().Changed(fl)
			}
			switch {
			case len(args) == 1 && searched:
				return usagef("give a device name or search flags, not both")
			case len(args) == 0 && !searched:
				return usagef("give a device name, or search flags such as --name SEP to reset every phone they match")
			}
			a, done, err := g.deviceAdmin(readWrite)
			if err != nil {
				return err
			}
			defer done()
			if len(args) == 1 {
				r, err := a.ResetDevice(cmd.Context(), args[0])
				if r.Device == "" {
					return err
				}
				if f.asJSON {
					if perr := printJSON(g.stdout, r); perr != nil {
						return perr
					}
					return err
				}
				printReset(g, r)
				return err
			}
			if _, err := f.query(time.Now()); err != nil {
				return err
			}
			b, err := a.ResetDevices(cmd.Context(), f.c)
			if err != nil {
				return err
			}
			if f.asJSON {
				if err := printJSON(g.stdout, b); err != nil {
					return err
				}
			} else {
				for _, r := range b.Resets {
					printReset(g, r)
				}
				if len(b.Skipped) > 0 {
					fmt.Fprintf(g.stdout, "skipped %d: %s\n", len(b.Skipped), strings.Join(b.Skipped, " "))
				}
				if b.Stopped != "" {
					fmt.Fprintf(g.stdout, "stopped: %s\n", b.Stopped)
				}
				fmt.Fprintf(g.stdout, "%d of %d phones reset\n", len(b.Resets)-b.Failed, b.Matched)
			}
			if b.Failed > 0 || len(b.Skipped) > 0 {
				return errResetsFailed{failed: b.Failed, skipped: len(b.Skipped)}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the outcome as JSON")
	return cmd
}

// printReset prints one reset's outcome.
func printReset(g *globals, r view.Reset) {
	if r.OK {
		fmt.Fprintf(g.stdout, "reset %s: ok\n", r.Device)
		return
	}
	fmt.Fprintf(g.stdout, "reset %s: failed: %s\n", r.Device, r.Reason)
}

// lastReset describes a phone's last reset for capf device show.
func lastReset(r *view.Reset) string {
	switch {
	case r == nil:
		return "none"
	case r.OK:
		return fmt.Sprintf("%s ok (by %s)", r.At.UTC().Format(time.RFC3339), r.Actor)
	}
	return fmt.Sprintf("%s failed (by %s): %s", r.At.UTC().Format(time.RFC3339), r.Actor, r.Reason)
}
