package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/overview"
	"github.com/capf-server/capf/internal/webauth"
)

// Prefix is the path under which the API serves.
const Prefix = "/api/v1"

// OpenAPIPath is where the OpenAPI document is served.
const OpenAPIPath = Prefix + "/openapi.json"

// Options configures the API. Devices is required; a nil sibling makes its
// routes answer 503 (they are still listed in the document).
type Options struct {
	Devices   Devices
	Campaigns Campaigns // device.Service's bulk operations and dashboard
	Accounts  Accounts
	// ParseTTL turns a token's "expires" ("90d", "12h", "0" for never)
	// into a duration: account.ParseTTL.
	ParseTTL func(string) (time.Duration, error)
	// RetryAfter says how long a Throttled error asks to wait (0: unknown):
	// account.RetryAfter.
	RetryAfter func(error) time.Duration
	System     System
	// Certificates is the inventory of issued LSCs (lsc.Service).
	Certificates Certificates
	Certificate  *x509.Certificate // the CAPF certificate; CASet's active one when CASet is set
	// CASet is the live CA set (*caset.Admin): GET /ca-set, its actions,
	// and the certificate GET /capf-certificate shows; nil: not here.
	CASet CASet
	// Phones gives the address and port the service really listens on for
	// phones, for a phone's configuration snippet; nil: not known here.
	Phones func() (host, port string)
	// Servers is the fleet parameter capf_servers in force: when it lists
	// servers, a phone's configuration snippet names them; nil or empty:
	// Phones alone.
	Servers func() []string
	// TrustFiles is the trust-file service (*trustfile.Service); nil:
	// not available here.
	TrustFiles TrustFiles
	// Windows are the maintenance windows in force, for the dashboard's
	// notices; nil: always open.
	Windows func() Windows
	Logger  *slog.Logger
}

// access is what a route demands of the principal.
type access int

const (
	readAccess  access = iota // any authenticated principal
	writeAccess               // a principal that may write (Principal.RequireWrite)
	adminAccess               // the admin role, even to read (accounts, tokens)
)

func (a access) String() string {
	return [...]string{"read", "write", "admin"}[a]
}

// accessKey is the operation metadata key that holds a route's access.
const accessKey = "capf-access"

// route is one operation the API serves, as registered.
type route struct {
	Method, Path string // Path without Prefix, as the OpenAPI document lists it
	Access       access
}

// server holds the API's dependencies and its routes.
type server struct {
	o      Options
	log    *slog.Logger
	api    huma.API
	mux    *http.ServeMux
	routes []route
	// compose composes a device's detail, the report and the dashboard.
	compose *overview.Composer
}

// New returns the API's handler, which serves Prefix and everything below
// it (mount it at the root of the admin listener, behind webauth's
// middleware), and the huma API that describes it.
func New(o Options) (http.Handler, huma.API) {
	s := newServer(o)
	return s.mux, s.api
}

func newServer(o Options) *server {
	s := &server{o: o, log: o.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.compose = composer(o, s)
	cfg := huma.DefaultConfig("CAPF server administration API", "1")
	cfg.Info.Description = "Devices (phones and their CAPF settings), bulk operations, import and report, " +
		"the CAPF certificate, service parameters and activation, accounts, tokens and the audit stream. " +
		"Authenticate with an API token (Authorization: Bearer TOKEN) or a browser session. " +
		"Errors are RFC 9457 problem details (application/problem+json)."
	// The document is served by this package at OpenAPIPath only; no
	// documentation page (it would load scripts from a CDN), no schema
	// links in bodies (the bodies are the CLI's --json vocabulary, exactly).
	cfg.OpenAPIPath, cfg.DocsPath, cfg.SchemasPath = "", "", ""
	cfg.CreateHooks = nil
	cfg.RejectUnknownQueryParameters = true // a misspelt filter must not silently match everything
	cfg.Transformers = []huma.Transformer{polishErrors}
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer":  {Type: "http", Scheme: "bearer", Description: "an API token (`capf admin token create`)"},
		"session": {Type: "apiKey", In: "cookie", Name: webauth.CookieName, Description: "a browser session; unsafe methods also need the X-CSRF-Token header"},
	}
	cfg.Security = []map[string][]string{{"bearer": {}}, {"session": {}}}
	s.api = humago.NewWithPrefix(s.mux, Prefix, cfg)
	s.api.UseMiddleware(s.authorize)
	s.registerDevices()
	s.registerBulk()
	s.registerCampaignCancel()
	s.registerFiles()
	s.registerSystem()
	s.registerAccounts()
	s.registerAudit()
	s.registerCertificates()
	s.registerResets()
	s.registerPhoneConfig()
	s.registerTrustFile()
	s.registerCASet()
	s.registerCAOffline()
	s.mux.HandleFunc("GET "+OpenAPIPath, s.serveOpenAPI)
	s.mux.HandleFunc(Prefix+"/", s.noRoute)
	return s
}

// noRoute answers a request no route takes, as a problem like every other
// error: 405 with Allow when the path is a route's, 404 otherwise.
func (s *server) noRoute(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, Prefix)
	var allow []string
	for _, rt := range s.routes {
		if matchPath(rt.Path, path) {
			allow = append(allow, rt.Method)
		}
	}
	// The detail never quotes the request: the client knows what it sent.
	status, detail := http.StatusNotFound, "no such resource; the routes are listed in "+OpenAPIPath
	if len(allow) > 0 {
		status, detail = http.StatusMethodNotAllowed, "this resource takes only "+strings.Join(allow, ", ")
		w.Header().Set("Allow", strings.Join(allow, ", "))
	}
	b, _ := json.Marshal(huma.NewError(status, detail))
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// matchPath reports whether path fits the route template pattern, whose
// {name} segments match any one segment.
func matchPath(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], "{") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// serveOpenAPI writes the OpenAPI document. It is public: it holds the
// API's shape, which the source code shows anyway, and no data.
func (s *server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.api.OpenAPI())
	if err != nil {
		s.log.ErrorContext(r.Context(), "api: openapi document", "err", err)
		http.Error(w, "internal error; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/openapi+json")
	_, _ = w.Write(b)
}

// add registers one operation: with huma (hence in the document and on the
// mux) and in the route list the tests compare the document with. Every
// route goes through here.
func add[I, O any](s *server, acc access, op huma.Operation, h func(context.Context, *I) (*O, error)) {
	op.Metadata = map[string]any{accessKey: acc}
	errs := []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusInternalServerError}
	if acc != readAccess {
		errs = append(errs, http.StatusForbidden)
	}
	if strings.Contains(op.Path, "{") {
		errs = append(errs, http.StatusNotFound)
	}
	op.Errors = append(errs, op.Errors...)
	if acc == adminAccess {
		op.Description = strings.TrimSpace(op.Description + " Admin role only.")
	} else if acc == writeAccess {
		op.Description = strings.TrimSpace(op.Description + " Needs the admin role.")
	}
	huma.Register(s.api, op, h)
	s.routes = append(s.routes, route{Method: op.Method, Path: op.Path, Access: acc})
}

// authorize runs before every operation: no principal is 401, a principal
// whose role does not allow the route is 403.
func (s *server) authorize(ctx huma.Context, next func(huma.Context)) {
	p, ok := webauth.PrincipalFrom(ctx.Context())
	if !ok {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="capf"`)
		_ = huma.WriteErr(s.api, ctx, http.StatusUnauthorized, "authentication required: send an API token as Authorization: Bearer TOKEN, or log in")
		return
	}
	acc, _ := ctx.Operation().Metadata[accessKey].(access)
	if err := allowed(p, acc); err != nil {
		pr := fault.ProblemOf(err)
		_ = huma.WriteErr(s.api, ctx, pr.Status, pr.Detail)
		return
	}
	next(ctx)
}

// allowed checks p against what a route demands.
func allowed(p account.Principal, acc access) error {
	switch acc {
	case writeAccess:
		return p.RequireWrite()
	case adminAccess:
		if p.Role != account.RoleAdmin {
			return fault.New(fault.Forbidden, "%s has the %s role; accounts and tokens need the admin role", p.Name, p.Role)
		}
	}
	return nil
}

// reader is the device service's read side for the request's principal:
// a viewer gets no authentication strings and cannot search by them.
func (s *server) reader(ctx context.Context) device.Reader {
	p, _ := webauth.PrincipalFrom(ctx)
	return s.o.Devices.Reader(p.SeesSecrets())
}

// writer returns the actor of a write, checking again (the middleware did)
// that the principal may write, so that no write can run unchecked.
func writer(ctx context.Context) (device.Actor, error) {
	p, ok := webauth.PrincipalFrom(ctx)
	if !ok {
		return device.Actor{}, fault.New(fault.Unauthorized, "authentication required")
	}
	if err := p.RequireWrite(); err != nil {
		return device.Actor{}, err
	}
	return p.Actor(), nil
}

// polishErrors makes huma's own validation problems as specific as the
// domain's: the detail names the first failure instead of a bare
// "validation failed". It also drops the values those errors quote from
// the request body: they may be a password or a token (the client sent
// them anyway; no need to echo them).
func polishErrors(_ huma.Context, _ string, v any) (any, error) {
	e, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	for _, d := range e.Errors {
		if d != nil && (d.Location == "body" || strings.HasPrefix(d.Location, "body.")) {
			d.Value = nil
		}
	}
	if e.Detail == "validation failed" && len(e.Errors) > 0 && e.Errors[0] != nil {
		first := e.Errors[0]
		e.Detail = "validation failed: " + first.Location + ": " + first.Message
		if len(e.Errors) > 1 {
			e.Detail += fmt.Sprintf(" (and %d more)", len(e.Errors)-1)
		}
	}
	return v, nil
}
