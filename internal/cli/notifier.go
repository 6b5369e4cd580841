package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/datadir"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/notify"
)

// buildNotifier returns the reset notifier the node settings configure
// (Asterisk AMI or a command), paced by reset_per_second; nil when none is
// configured (device.Service then says how to configure one). The AMI
// secret file is read now, and refused unless only its owner may read it.
func buildNotifier(cfg config.Config, dir datadir.Dir) (device.Notifier, error) {
	timeout := time.Duration(cfg.ResetTimeout)
	endpoint := notify.Endpoint(cfg.ResetEndpoint)
	var n notify.Notifier
	switch {
	case cfg.ResetAMIAddress != "":
		path := cfg.ResetAMISecretFile
		if path != "" && !filepath.IsAbs(path) {
			path = dir.Path(path)
		}
		secret, err := notify.LoadSecret(path)
		if err != nil {
			return nil, err
		}
		var tlsConf *tls.Config
		if ca := cfg.ResetAMICAFile; ca != "" {
			if !filepath.IsAbs(ca) {
				ca = dir.Path(ca)
			}
			if tlsConf, err = notify.AMITLS(ca, cfg.ResetAMIAddress); err != nil {
				return nil, err
			}
		}
		a, err := notify.NewAMI(notify.AMIOptions{Address: cfg.ResetAMIAddress, Username: cfg.ResetAMIUser, Secret: secret,
			Endpoint: endpoint, Timeout: timeout, TLS: tlsConf})
		if err != nil {
			return nil, err
		}
		n = a
	case len(cfg.ResetCommand) > 0:
		// Checked at start, as every file capf.json names: a reset
		// should not be the first to find the program missing.
		st, err := os.Stat(cfg.ResetCommand[0])
		if err != nil {
			return nil, fault.Invalidf("reset_command %s: %v", cfg.ResetCommand[0], errors.Unwrap(err))
		}
		if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			return nil, fault.Invalidf("reset_command %s: not an executable file (mode %s)", cfg.ResetCommand[0], st.Mode())
		}
		c, err := notify.NewCommand(notify.CommandOptions{Argv: cfg.ResetCommand, Endpoint: endpoint, Timeout: timeout})
		if err != nil {
			return nil, err
		}
		n = c
	default:
		return nil, nil
	}
	return notify.NewPaced(notify.PacedOptions{Notifier: n, PerSecond: cfg.ResetPerSecond}), nil
}

// resetConfigured reports whether the node settings name a notifier.
func resetConfigured(cfg config.Config) bool {
	return cfg.ResetAMIAddress != "" || len(cfg.ResetCommand) > 0
}

// lazyNotifier builds the configured notifier at its first use, so that a
// CLI command other than reset never reads the AMI secret file; a notifier
// that cannot be built fails each reset with why (and the reset is
// recorded so).
type lazyNotifier struct {
	once  sync.Once
	build func() (device.Notifier, error)
	n     device.Notifier
	err   error
}

// Notify builds the notifier once and passes device on.
func (l *lazyNotifier) Notify(ctx context.Context, device string) error {
	l.once.Do(func() { l.n, l.err = l.build() })
	if l.err != nil {
		return l.err
	}
	return l.n.Notify(ctx, device)
}
