package cli

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/system"
)

// sessionConfig returns the fleet parameters of cfg in the session's terms.
func sessionConfig(cfg config.Config) (session.Config, error) {
	w, err := cfg.Windows()
	if err != nil {
		return session.Config{}, err
	}
	sc := session.Config{
		KeyGenMaxTime:         time.Duration(cfg.KeyGenerationMaxTime),
		KeyGenMaxAttempts:     cfg.KeyGenerationMaxTries,
		MessageTimeout:        time.Duration(cfg.MessageTimeout),
		DefaultKey:            device.KeySpec(cfg.DefaultKey),
		RetryDelay:            time.Duration(cfg.RetryDelay),
		AuthStringMaxFailures: cfg.AuthStringMaxFailures,
		Backoff:               session.DefaultBackoff,
		CRLURL:                cfg.CRLURL,
		RenewBefore:           time.Duration(cfg.LSCRenewBefore),
	}
	sc.Backoff.Base = time.Duration(cfg.AuthStringBackoff)
	if !w.Always() {
		sc.Windows = w
	}
	return sc, nil
}

// How often a node reads the change counter of the fleet parameters: on
// SQLite that is how a change is seen; on PostgreSQL a notification says
// so at once, and the poll only covers a notification lost with its
// connection.
const (
	fleetPollSQLite   = time.Second
	fleetPollPostgres = 10 * time.Second
)

// fleetWatcher is a store that tells of committed changes of the fleet
// parameters as they happen (PostgreSQL's LISTEN/NOTIFY).
type fleetWatcher interface {
	WatchFleetParameters(ctx context.Context, changed func(), log *slog.Logger)
}

// liveParams is the one source of fleet parameters the sessions consult:
// the database's, composed over the node's own configuration by
// system.Service, and reloaded when their change counter moves (see run),
// so that a change made on any node applies to the sessions that start
// after it, on every node, within seconds and without a restart.
// Parameters that do not compose (a value this version does not accept)
// are logged and the last good ones stay in force. Current never waits
// for the database.
type liveParams struct {
	sys  *system.Service
	node config.Config // the node's own configuration: capf.json and flags
	log  *slog.Logger

	mu      sync.Mutex
	cur     session.Config
	version int64 // of cur, or of the last version tried
}

// newLiveParams returns the source with cfg, the parameters of version,
// in force.
func newLiveParams(sys *system.Service, node, cfg config.Config, version int64, log *slog.Logger) (*liveParams, error) {
	sc, err := sessionConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &liveParams{sys: sys, node: node, log: log, cur: sc, version: version}, nil
}

// Current implements session.Params.
func (p *liveParams) Current() session.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// refresh reads the change counter and, when it moved, the parameters;
// it reports whether new parameters are in force.
func (p *liveParams) refresh(ctx context.Context) bool {
	v, err := p.sys.FleetVersion(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("fleet parameters: could not read the change counter; the current ones stay in force", "err", err)
		}
		return false
	}
	p.mu.Lock()
	seen := p.version
	p.mu.Unlock()
	if v == seen {
		return false
	}
	cfg, version, err := p.sys.Effective(ctx, p.node)
	if err == nil {
		var sc session.Config
		if sc, err = sessionConfig(cfg); err == nil {
			p.mu.Lock()
			p.cur, p.version = sc, version
			p.mu.Unlock()
			p.log.Info("fleet parameters changed; they apply to new sessions", "version", version)
			return true
		}
	}
	if ctx.Err() != nil {
		return false
	}
	// Not tried again until the counter moves once more.
	p.mu.Lock()
	p.version = v
	p.mu.Unlock()
	p.log.Warn("fleet parameters not applied; the previous ones stay in force", "version", v, "err", err)
	return false
}

// run keeps the parameters current until ctx ends: it reads the counter
// every poll, and at once when watcher (nil on SQLite) hears of a change.
// It returns once the watcher has stopped too.
func (p *liveParams) run(ctx context.Context, poll time.Duration, watcher fleetWatcher) {
	kick := make(chan struct{}, 1)
	if watcher != nil {
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			watcher.WatchFleetParameters(ctx, func() {
				select {
				case kick <- struct{}{}:
				default:
				}
			}, p.log)
		}()
		defer func() { <-watched }()
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		p.refresh(ctx)
	}
}
