package cli

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/auth"
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
	sudi, err := auth.ParseSUDIPolicy(cfg.SUDIVerification)
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
		// The fleet parameters the limiter, the guard, the issuer and the
		// verifier took at start before; now each session passes them.
		AuthFailuresPerAddress: cfg.AuthFailuresPerAddress,
		MaxConcurrentOps:       cfg.MaxConcurrentOps,
		LSCValidity:            days(cfg.CertificateValidityDays),
		AuthPolicy:             auth.Policy{SUDI: sudi, AllowExpiredMIC: cfg.AllowExpiredMIC},
		CRLURL:                 cfg.CRLURL,
		RenewBefore:            time.Duration(cfg.LSCRenewBefore),
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
	now  func() time.Time

	mu      sync.Mutex
	cur     session.Config
	servers []string // capf_servers in force, for the phones' snippet
	version int64    // of cur, or of the last version tried
	bound   sessionBound
}

// newLiveParams returns the source with cfg, the parameters of version,
// in force.
func newLiveParams(sys *system.Service, node, cfg config.Config, version int64, log *slog.Logger) (*liveParams, error) {
	sc, err := sessionConfig(cfg)
	if err != nil {
		return nil, err
	}
	p := &liveParams{sys: sys, node: node, log: log, now: time.Now, cur: sc, version: version, servers: cfg.CAPFServers}
	p.bound.cur = p.longest(sc)
	return p, nil
}

// longest is the longest a session started under sc can last on this
// node.
func (p *liveParams) longest(sc session.Config) time.Duration {
	return device.LongestSession(sc.KeyGenMaxTime, sc.MessageTimeout, time.Duration(p.node.HandshakeTimeout))
}

// LongestSession returns how long a session may still legitimately be
// running now: the longest one under the parameters in force, or longer
// while a session started under earlier, longer limits (before an
// administrator lowered key_generation_max_time, say) may still run. The
// stale-attempt sweeper fails the attempts that record no deadline (stored
// before the claims recorded one) only once open longer than this; the
// others, after their own deadline (device.Service.SweepStale).
func (p *liveParams) LongestSession() time.Duration {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bound.at(now)
}

// sessionBound is the longest a session may last, over the limits in force
// and those replaced while a session started under them may still run.
type sessionBound struct {
	cur     time.Duration
	earlier []boundUntil
}

// boundUntil is an earlier, longer bound and when the last session that
// started under it must have ended.
type boundUntil struct {
	d     time.Duration
	until time.Time
}

// changeSpread is how much later than this node another node may apply a
// change of the fleet parameters (its poll period, with room to spare):
// a session started there under the earlier limits may begin that much
// later.
const changeSpread = time.Minute

// set records that sessions starting from at are bounded by d.
func (b *sessionBound) set(d time.Duration, at time.Time) {
	if d < b.cur {
		b.earlier = append(b.earlier, boundUntil{d: b.cur, until: at.Add(changeSpread + b.cur)})
	}
	b.cur = d
}

// at returns the bound at now, and forgets the earlier bounds no session
// can be running under any more.
func (b *sessionBound) at(now time.Time) time.Duration {
	d := b.cur
	b.earlier = slices.DeleteFunc(b.earlier, func(e boundUntil) bool { return !now.Before(e.until) || e.d <= b.cur })
	for _, e := range b.earlier {
		d = max(d, e.d)
	}
	return d
}

// Current implements session.Params.
func (p *liveParams) Current() session.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// CAPFServers returns the fleet parameter capf_servers in force: the
// capfList of the phones' configuration snippet (empty: this node alone).
func (p *liveParams) CAPFServers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.servers)
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
			now := p.now()
			p.mu.Lock()
			p.cur, p.version, p.servers = sc, version, cfg.CAPFServers
			p.bound.set(p.longest(sc), now)
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
