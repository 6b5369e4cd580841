package cli

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/capf-server/capf/internal/server"
	"github.com/capf-server/capf/internal/store"
)

// activationPoll is how often serve reads the service activation.
const activationPoll = time.Second

// phoneGate opens and closes the phone listener as the service is
// activated and deactivated (Serviceability > Service Activation). Closed,
// phones get "connection refused" while the sessions already open run to
// their end; opened again, it listens on the same address.
type phoneGate struct {
	addr   string // where to listen again
	serve  func(net.Listener) error
	listen func(ctx context.Context, addr string) (net.Listener, error)
	log    *slog.Logger
	errc   chan error // an unexpected end of serving; buffered

	mu        sync.Mutex
	ln        net.Listener  // nil while closed
	done      chan struct{} // closed when ln's serve returned
	failed    bool          // the last reopen failed (logged once)
	pollError bool          // the last poll failed (logged once)
}

// newPhoneGate returns a gate for the phone listener configured as listen;
// serve serves one listener until it is closed (server.Server.Serve).
func newPhoneGate(listen string, serve func(net.Listener) error, log *slog.Logger) *phoneGate {
	var lc net.ListenConfig
	return &phoneGate{
		addr:   listen,
		serve:  serve,
		listen: func(ctx context.Context, addr string) (net.Listener, error) { return lc.Listen(ctx, "tcp", addr) },
		log:    log,
		errc:   make(chan error, 1),
	}
}

// start serves on ln, bound already. A listen address with port 0 is
// opened again on the port ln got, so phones find it where they found it.
func (p *phoneGate) start(ln net.Listener) {
	if host, port, err := net.SplitHostPort(p.addr); err == nil && port == "0" {
		if _, got, err := net.SplitHostPort(ln.Addr().String()); err == nil {
			p.addr = net.JoinHostPort(host, got)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startLocked(ln)
}

func (p *phoneGate) startLocked(ln net.Listener) {
	done := make(chan struct{})
	p.ln, p.done = ln, done
	go func() {
		defer close(done)
		err := p.serve(ln)
		ln.Close()
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, server.ErrServerClosed) {
			select {
			case p.errc <- err:
			default:
			}
		}
	}()
}

// listening reports whether the phone listener is open.
func (p *phoneGate) listening() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ln != nil
}

// set opens or closes the listener to match active, logging each change.
func (p *phoneGate) set(ctx context.Context, active bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case active && p.ln == nil:
		ln, err := p.listen(ctx, p.addr)
		if err != nil {
			if !p.failed {
				p.log.Error("service activated, but the phone listener does not open; trying again every second", "addr", p.addr, "err", err)
			}
			p.failed = true
			return
		}
		p.failed = false
		p.startLocked(ln)
		p.log.Info("service activated: accepting phones again", "addr", ln.Addr().String())
	case !active && p.ln != nil:
		p.closeLocked()
		p.log.Warn("service deactivated: the phone listener is closed (phones are refused); open sessions finish", "addr", p.addr)
	case !active:
		p.failed = false
	}
}

// close closes the listener, if open, and waits for its serve to return.
func (p *phoneGate) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
}

func (p *phoneGate) closeLocked() {
	if p.ln == nil {
		return
	}
	p.ln.Close()
	<-p.done
	p.ln, p.done = nil, nil
}

// watch reads the activation every interval and sets the gate to it until
// ctx ends. A failed read leaves the gate as it is.
func (p *phoneGate) watch(ctx context.Context, interval time.Duration, active func(context.Context) (bool, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a, err := active(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !p.pollError {
				p.log.Warn("cannot read the service activation; the phone listener stays as it is", "err", err)
			}
			p.pollError = true
			continue
		}
		p.pollError = false
		p.set(ctx, a)
	}
}

// startsActive reports whether the service is active according to the
// node's database, read without creating or changing anything: a serve of a deactivated service does not bind the phone port. A
// failure to read says active; serve's own read decides a second later.
func startsActive(ctx context.Context, g *globals) bool {
	st, err := store.PeekServiceState(ctx, g.storeOptions(store.ReadOnly))
	return err != nil || st.Active
}
