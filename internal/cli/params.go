package cli

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/session"
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
	}
	sc.Backoff.Base = time.Duration(cfg.AuthStringBackoff)
	if !w.Always() {
		sc.Windows = w
	}
	return sc, nil
}

// fileParams is the one source of fleet parameters the sessions consult:
// capf.json, read again (at most once a second) when it changed, so that a
// change of a fleet parameter applies to the sessions that start after it
// without a restart. A file that does not load is logged and the last good
// parameters stay in force. Node settings (listen addresses, TLS profile,
// log format) still need a restart.
type fileParams struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	cur     session.Config
	checked time.Time
	modTime time.Time
	size    int64
}

func newFileParams(dataDir string, cfg config.Config, log *slog.Logger) (*fileParams, error) {
	sc, err := sessionConfig(cfg)
	if err != nil {
		return nil, err
	}
	p := &fileParams{path: filepath.Join(dataDir, config.FileName), log: log, now: time.Now, cur: sc}
	if fi, err := os.Stat(p.path); err == nil {
		p.modTime, p.size = fi.ModTime(), fi.Size()
	}
	return p, nil
}

// Current implements session.Params.
func (p *fileParams) Current() session.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.checked) < time.Second {
		return p.cur
	}
	p.checked = now
	fi, err := os.Stat(p.path)
	if err != nil || (fi.ModTime().Equal(p.modTime) && fi.Size() == p.size) {
		return p.cur
	}
	p.modTime, p.size = fi.ModTime(), fi.Size()
	cfg, err := config.Load(filepath.Dir(p.path))
	if err == nil {
		var sc session.Config
		if sc, err = sessionConfig(cfg); err == nil {
			p.cur = sc
			p.log.Info("service parameters reloaded; fleet parameters apply to new sessions", "file", p.path)
			return p.cur
		}
	}
	p.log.Warn("service parameters not reloaded; the previous ones stay in force", "file", p.path, "err", err)
	return p.cur
}
