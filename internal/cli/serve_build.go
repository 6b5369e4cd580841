package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/schedule"
	"github.com/capf-server/capf/internal/tcpbind"
	"github.com/capf-server/capf/internal/trust"
	"github.com/capf-server/capf/internal/trustfile"
)

// servePlan is what `capf serve` has checked before it binds a port or
// writes a file: the service parameters and everything they name.
// `capf config validate` makes the same plan and stops there.
type servePlan struct {
	cfg      config.Config
	windows  *schedule.Windows
	micCerts []*x509.Certificate
	// authority is the CAPF certificate already in the data directory, or
	// nil when serve is to create it.
	authority *ca.Authority
	// phonesOff: the service is deactivated, so the phone port is not
	// bound until it is activated.
	phonesOff bool
	// trustAdds are the trust_file_add certificates, read and checked.
	trustAdds []trust.Entry
}

// resolveTimeout bounds the name look-ups of the listen addresses.
const resolveTimeout = 5 * time.Second

// planServe reads capf.json (if the data directory has one), sets the
// flags over it, and checks everything serve would find wrong later: every
// value, the form and host of both listen addresses, the manufacturer CA
// bundle and an existing CAPF certificate. It writes nothing and binds
// nothing, and reports every problem at once in one Invalid error. Whether
// another serve holds the directory is serve's own check (probeLock):
// `capf config validate` checks a running node's file before its restart.
func planServe(ctx context.Context, g *globals, set map[string]any) (*servePlan, error) {
	d := g.dir()
	if _, err := d.Exists(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(d.Config())
	if errors.Is(err, fs.ErrNotExist) {
		b = nil
	} else if err != nil {
		return nil, fmt.Errorf("read service parameters: %w", err)
	}
	cfg, problems := config.DecodeOver(b, set)
	p := &servePlan{cfg: cfg}
	if len(problems) == 0 {
		problems = append(problems, checkListen(ctx, cfg)...)
		p.windows, _ = cfg.Windows() // checked with the values
		if p.micCerts, err = loadMICBundle(g, cfg); err != nil {
			problems = append(problems, err.Error())
		}
		p.authority, err = existingAuthority(g, cfg)
		if err != nil {
			problems = append(problems, err.Error())
		}
		if cfg.TrustFileDir != "" {
			var addProblems []string
			p.trustAdds, addProblems = trustfile.ConfigAdds(g.dataDir, cfg.TrustFileAdd)
			problems = append(problems, addProblems...)
		}
	}
	if len(problems) > 0 {
		return nil, fault.Invalidf("%s: %s", d.Config(), strings.Join(problems, "; "))
	}
	return p, nil
}

// checkListen checks what the form check of config cannot: that a listen
// host is an IP literal or resolves, and that the two listeners differ.
func checkListen(ctx context.Context, cfg config.Config) []string {
	var problems []string
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	for _, a := range []struct{ key, addr string }{{"listen", cfg.Listen}, {"metrics_listen", cfg.MetricsListen}, {"admin_listen", cfg.AdminListen}, {"crl_listen", cfg.CRLListen}} {
		if a.addr == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(a.addr) // form checked by config
		if host == "" || net.ParseIP(strings.Split(host, "%")[0]) != nil {
			continue
		}
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: host %q does not resolve", a.key, a.addr, host))
		}
	}
	if cfg.MetricsListen != "" && sameListener(cfg.Listen, cfg.MetricsListen) {
		problems = append(problems, fmt.Sprintf("metrics_listen %q: the CAPF protocol listens there (listen %q)", cfg.MetricsListen, cfg.Listen))
	}
	problems = append(problems, checkAdminListen(cfg)...)
	if cfg.CRLListen != "" {
		for _, o := range []struct{ key, addr string }{{"listen", cfg.Listen}, {"metrics_listen", cfg.MetricsListen}, {"admin_listen", cfg.AdminListen}} {
			if o.addr != "" && sameListener(cfg.CRLListen, o.addr) {
				problems = append(problems, fmt.Sprintf("crl_listen %q: %s listens there (%q)", cfg.CRLListen, o.key, o.addr))
			}
		}
	}
	return problems
}

// sameListener reports whether two listen addresses would take the same
// port: the same non-zero port on the same host, or on the wildcard.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	return ha == hb || ha == "" || hb == ""
}

// existingAuthority loads the CAPF certificate of the data directory, if
// there is one, and checks that it suits the TLS profile; on a cluster
// node (keys in the database) it loads none.
func existingAuthority(g *globals, cfg config.Config) (*ca.Authority, error) {
	if g.keysInDB() {
		return nil, nil // the cluster's, from the database (clusterkeys.go)
	}
	a, err := ca.Load(g.caOptions(cfg))
	if fault.KindOf(err) == fault.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CAPF certificate: %w", err)
	}
	if cfg.TLSProfile == "legacy" && a.Certificate().PublicKeyAlgorithm != x509.RSA {
		return nil, fmt.Errorf("tls_profile legacy needs an RSA CAPF key: the CAPF certificate in %s has a %s key", g.dir().CA(), a.Certificate().PublicKeyAlgorithm)
	}
	return a, nil
}

// probeLock fails if another capf serve holds the data directory. It
// creates nothing: the lock itself is taken once the listeners are bound.
func probeLock(g *globals) error {
	f, err := os.OpenFile(g.dir().Lock(), os.O_RDWR, 0)
	if err != nil {
		return nil // no lock file, or one we cannot open: lockDataDir decides
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		b, _ := os.ReadFile(g.dir().Lock())
		return fault.Conflictf("data directory %s is in use by another capf serve (pid %s)", g.dataDir, strings.TrimSpace(string(b)))
	}
	return nil
}

// serveListeners are the bound sockets of a serve. They are bound before
// serve writes anything (a port in use stops it with the data directory
// untouched) and listen only once what each serves is in place: until
// then a client's connect is refused, so a process manager or script that
// waits for a port finds a server that answers.
type serveListeners struct {
	phones, metrics *tcpbind.Socket // metrics is nil when off
	admin           *tcpbind.Socket // nil when off
	crl             *tcpbind.Socket // nil when off
}

// bind binds the sockets of the plan; on failure it closes what it bound.
func (p *servePlan) bind(ctx context.Context) (*serveListeners, error) {
	l := &serveListeners{}
	var err error
	if !p.phonesOff {
		if l.phones, err = tcpbind.Bind(ctx, p.cfg.Listen); err != nil {
			return nil, fault.New(fault.Unavailable, "listen for phones on %s: %v", p.cfg.Listen, err)
		}
	}
	if p.cfg.MetricsListen != "" {
		if l.metrics, err = tcpbind.Bind(ctx, p.cfg.MetricsListen); err != nil {
			l.close()
			return nil, fault.New(fault.Unavailable, "listen for metrics on %s: %v", p.cfg.MetricsListen, err)
		}
	}
	if p.cfg.AdminListen != "" {
		if l.admin, err = tcpbind.Bind(ctx, p.cfg.AdminListen); err != nil {
			l.close()
			return nil, fault.New(fault.Unavailable, "listen for administration (HTTPS) on %s: %v", p.cfg.AdminListen, err)
		}
	}
	if p.cfg.CRLListen != "" {
		if l.crl, err = tcpbind.Bind(ctx, p.cfg.CRLListen); err != nil {
			l.close()
			return nil, fault.New(fault.Unavailable, "listen for CRL and OCSP (HTTP) on %s: %v", p.cfg.CRLListen, err)
		}
	}
	return l, nil
}

// close releases the sockets that do not listen yet; listeners are closed
// by their servers.
func (l *serveListeners) close() {
	for _, s := range []*tcpbind.Socket{l.phones, l.metrics, l.admin, l.crl} {
		if s != nil {
			s.Close()
		}
	}
}
