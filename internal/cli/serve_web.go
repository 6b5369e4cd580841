package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/api"
	"github.com/capf-server/capf/internal/atomicfile"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/trustfile"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// InitialPasswordFile is the file in the data directory that holds the
// password of the first administrator account, created at first start.
const InitialPasswordFile = "admin-initial-password"

// The application services satisfy the API's narrow interfaces.
var (
	_ api.Devices     = (*device.Service)(nil)
	_ api.Campaigns   = (*device.Service)(nil)
	_ api.Accounts    = (*account.Service)(nil)
	_ api.System      = (*system.Service)(nil)
	_ webui.Devices   = (*device.Service)(nil)
	_ webui.Accounts  = (*account.Service)(nil)
	_ webui.Campaigns = (*device.Service)(nil)
	_ webui.System    = (*system.Service)(nil)
)

// The account service serves the UI's Accounts and API Tokens pages.
var _ webui.AccountAdmin = (*account.Service)(nil)

// adminServices are what the administration listener serves: the same
// application services the CLI uses.
type adminServices struct {
	devices     *device.Service
	certs       *lsc.Service
	accounts    *account.Service
	system      *system.Service
	certificate *x509.Certificate
	// caSet is the live CA set's administration (Security > CAPF
	// Certificate, /api/v1/ca-set); nil where the set is not the node's.
	caSet   *caset.Admin
	backups webui.Backups // nil: no backup download
	// trustFiles is serve's trust-file service (Security > Trust File).
	trustFiles *trustfile.Service
	log        *slog.Logger
	// windows are the maintenance windows in force; phones the host and
	// port phones reach the service at (see webui.Options).
	windows func() webui.Windows
	phones  func() (host, port string)
	// servers is capf_servers in force, the capfList of the snippet.
	servers func() []string
	// inUse are the node settings as this serve applied them (see
	// nodeInUse).
	inUse map[string]webui.InUse
}

// handler composes the REST API and the web UI behind the security headers
// and the authentication middleware, with /metrics and /healthz beside them.
func (s adminServices) handler(base adminhttp.Options) http.Handler {
	var apiWindows func() api.Windows
	if s.windows != nil {
		apiWindows = func() api.Windows { return s.windows() }
	}
	apiHandler, _ := api.New(api.Options{
		Devices: s.devices, Campaigns: s.devices,
		Accounts: s.accounts, ParseTTL: account.ParseTTL, RetryAfter: account.RetryAfter,
		System: s.system, Certificate: s.certificate, CASet: apiCASetOrNil(s.caSet), Logger: s.log,
		Certificates: certsOrNil(s.certs), Phones: s.phones, Servers: s.servers, TrustFiles: apiTrustOrNil(s.trustFiles),
		Windows: apiWindows,
	})
	base.API = apiHandler
	base.UI = webui.New(webui.Options{
		Devices: s.devices, Accounts: s.accounts, AccountAdmin: s.accounts, System: s.system, Campaigns: s.devices, Backups: s.backups,
		ParseParam: system.ParseParamValue, Certificate: s.certificate, CASet: uiCASetOrNil(s.caSet), Logger: s.log, Location: time.Local,
		Sessions: s.accounts, Windows: s.windows, Phones: s.phones, Servers: s.servers, InUse: s.inUse,
		Certificates: uiCertsOrNil(s.certs), TrustFiles: uiTrustOrNil(s.trustFiles),
	})
	auth := webauth.Middleware(s.accounts, s.log)
	limit := webauth.LimitBodies(bodyLimit)
	base.Auth = func(h http.Handler) http.Handler { return webauth.SecurityHeaders(limit(auth(h))) }
	// /metrics on this port tells the Go version, descriptor counts and
	// session counters: a token or a session (either role) is needed.
	base.MetricsAuth = func(h http.Handler) http.Handler { return limit(auth(webauth.RequirePrincipal(h))) }
	return adminhttp.Handler(base)
}

// bodyLimit is the most a request body to the admin listener may hold:
// the API's limit under /api/, the UI's elsewhere. It is set before the
// middleware reads anything.
func bodyLimit(r *http.Request) int64 {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return api.BodyLimit(r)
	}
	return webui.BodyLimit(r)
}

// bootstrapAdmin creates the first administrator account when there is
// none and keeps its random password in DATA/admin-initial-password
// (0600). It returns the startup line that shows the password, once, or ""
// when an account existed.
func bootstrapAdmin(ctx context.Context, g *globals, accounts *account.Service) (string, error) {
	pw, created, err := accounts.Bootstrap(ctx)
	if err != nil || !created {
		return "", err
	}
	file := g.dir().Path(InitialPasswordFile)
	if err := atomicfile.Write(file, []byte(pw+"\n"), 0o600, false); err != nil {
		return "", fmt.Errorf("write the initial admin password: %w", err)
	}
	return fmt.Sprintf("  first administrator: %s, password %s (also in %s; change it with `capf admin passwd %s`)\n",
		account.BootstrapName, pw, file, account.BootstrapName), nil
}

// certsOrNil keeps a nil service a nil interface, so that the API answers
// 503 rather than calling it.
func certsOrNil(c *lsc.Service) api.Certificates {
	if c == nil {
		return nil
	}
	return c
}

// uiCertsOrNil keeps a nil service a nil interface (the UI then leaves
// the phone page's list of issued LSCs out).
func uiCertsOrNil(c *lsc.Service) webui.Certificates {
	if c == nil {
		return nil
	}
	return c
}

// uiTrustOrNil keeps a nil service a nil interface (Security > Trust File
// then says it is not available).
func uiTrustOrNil(t *trustfile.Service) webui.TrustFiles {
	if t == nil {
		return nil
	}
	return t
}

// apiTrustOrNil keeps a nil service a nil interface (GET /trust-file
// then says it is not available).
func apiTrustOrNil(t *trustfile.Service) api.TrustFiles {
	if t == nil {
		return nil
	}
	return t
}

// nodeInUse returns the node settings a serve applied at start, by
// capf.json key: nodeCfg is capf.json with the flags over it, flags the
// keys the flags set (flagParams), db the database in use and dbFrom
// where it was named (--db, CAPF_DB or capf.json). Each value set by a
// flag or the environment names it as its source. Fleet parameters are
// left out: the database's values are in force on every node.
func nodeInUse(nodeCfg config.Config, flags map[string]any, db, dbFrom string) (map[string]webui.InUse, error) {
	ps, err := system.ParametersOf(nodeCfg)
	if err != nil {
		return nil, err
	}
	out := map[string]webui.InUse{}
	for _, p := range ps {
		if !p.Restart {
			continue
		}
		in := webui.InUse{Value: p.Value}
		if _, ok := flags[p.Name]; ok {
			in.Source = "the --" + strings.ReplaceAll(p.Name, "_", "-") + " flag"
		}
		if p.Name == "database" {
			switch dbFrom {
			case "--db":
				in = webui.InUse{Value: config.RedactDatabase(db), Source: "the --db flag"}
			case store.EnvDB:
				in = webui.InUse{Value: config.RedactDatabase(db), Source: "the " + store.EnvDB + " environment variable"}
			}
		}
		out[p.Name] = in
	}
	return out, nil
}

// serveCAAdmin is the CA set's administration the admin listener offers,
// over the store serve uses; nil where the set is not the node's
// (caSetShared): the pages then show the CAPF certificate serve loaded.
func (g *globals) serveCAAdmin(st store.Store, cfg config.Config) *caset.Admin {
	if !g.caSetShared() {
		return nil
	}
	return g.caAdmin(st, caset.NewService(st, nil), cfg)
}

// apiCASetOrNil keeps a nil administration a nil interface.
func apiCASetOrNil(a *caset.Admin) api.CASet {
	if a == nil {
		return nil
	}
	return a
}

// uiCASetOrNil keeps a nil administration a nil interface.
func uiCASetOrNil(a *caset.Admin) webui.CASet {
	if a == nil {
		return nil
	}
	return a
}
