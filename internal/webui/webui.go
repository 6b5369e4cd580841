package webui

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/overview"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/webauth"
)

// Accounts is what the UI needs of the account service: logging in and
// out. *account.Service implements it.
type Accounts interface {
	Login(ctx context.Context, username, password, remote string) (account.Session, error)
	Logout(ctx context.Context, id string) error
}

// System is what the UI needs of the system service: the service
// parameters and the service activation. *system.Service implements it.
type System interface {
	Parameters(ctx context.Context) ([]system.Parameter, error)
	UpdateParameters(ctx context.Context, actor device.Actor, set map[string]any) ([]system.Parameter, error)
	Activation(ctx context.Context) (system.Activation, error)
	SetActive(ctx context.Context, actor device.Actor, active bool) (system.Activation, error)
}

// Certificates is what the UI needs of the issued-LSC inventory
// (lsc.Service).
type Certificates interface {
	List(ctx context.Context, q lsc.Query) ([]lsc.Record, error)
	Get(ctx context.Context, serial string) (lsc.Record, error)
	Revoke(ctx context.Context, actor device.Actor, serial, reason string) (lsc.Record, error)
}

// Devices is what the UI needs of the device service; *device.Service
// implements it. It has no List: the UI lists and counts phones only
// through Reader, for the audience of the page's principal, so no page a
// viewer may load can search, sort or count by authentication string.
type Devices interface {
	Now() time.Time
	Reader(seeSecrets bool) device.Reader
	Get(ctx context.Context, name string) (device.Device, error)
	History(ctx context.Context, name string, limit int) ([]device.Attempt, error)
	Fetched(ctx context.Context, name string) ([]device.FetchedCertificate, error)
	Audit(ctx context.Context, q device.AuditQuery) ([]device.AuditEvent, error)
	Add(ctx context.Context, actor device.Actor, d device.Device, generate bool) (device.Device, error)
	Change(ctx context.Context, actor device.Actor, name string, c device.Change) (device.Device, error)
	Remove(ctx context.Context, actor device.Actor, name string) error
	Import(ctx context.Context, actor device.Actor, rows []device.ImportRow) (device.ImportCounts, error)
	RecordCAExport(ctx context.Context, actor device.Actor, detail string) error
	Reset(ctx context.Context, actor device.Actor, name string) (device.Reset, error)
	ResetMatching(ctx context.Context, actor device.Actor, c device.Criteria) (device.BulkReset, error)
	LastReset(ctx context.Context, name string) (device.Reset, error)
	// CampaignStrings gives a campaign's authentication strings, auditing
	// each showing (administrators only: the UI checks).
	CampaignStrings(ctx context.Context, actor device.Actor, id int64, how string) (device.CampaignStrings, error)
}

// Campaigns is what the UI needs for bulk operations and the dashboard.
// *device.Service implements it.
type Campaigns interface {
	Schedule(ctx context.Context, actor device.Actor, c device.Criteria, ch device.Change) (device.Campaign, error)
	Campaigns(ctx context.Context, limit int) ([]device.Campaign, error)
	Campaign(ctx context.Context, id int64) (device.CampaignProgress, error)
	CancelCampaign(ctx context.Context, actor device.Actor, id int64) (device.CampaignCancel, error)
	CountForBulk(ctx context.Context, c device.Criteria, op device.Operation) (act, skip int, err error)
	Dashboard(ctx context.Context) (device.Dashboard, error)
}

// Backups makes the archive of Serviceability > Backup; *cli's backup
// service implements it.
type Backups interface {
	// Backup makes one archive, as `capf backup` does, and records an
	// audit event for actor before it is handed out (an archive whose
	// event cannot be written is refused). body is the archive; closing
	// it removes the temporary file.
	Backup(ctx context.Context, actor device.Actor) (name string, size int64, body io.ReadCloser, err error)
}

// Windows says when the maintenance windows are open, as the phone
// sessions see them now (a changed parameter file included).
type Windows interface {
	Open(t time.Time) bool
	NextOpen(t time.Time) time.Time
}

// Options configures the UI.
type Options struct {
	Devices   Devices
	Accounts  Accounts
	System    System
	Campaigns Campaigns
	// AccountAdmin serves System > Accounts and System > API Tokens
	// (administrators only); nil: those pages say they are not available.
	AccountAdmin AccountAdmin
	// InUse are the node settings as the running capf serve applied them
	// at start, by capf.json key: System > Service Parameters says so
	// next to a setting whose value in force is not the one shown (a flag
	// or environment variable overrides the file, or the file changed
	// since). nil: nothing is said.
	InUse map[string]InUse
	// Backups makes backup archives for administrators; nil: the Backup
	// page says it is not available.
	Backups Backups
	// Certificates lists the LSCs issued to a phone on its page
	// (lsc.Service); nil leaves that list out.
	Certificates Certificates
	// ParseParam turns a Service Parameters form's text into the
	// parameter's JSON-native value; system.ParseParamValue when nil.
	ParseParam func(p system.Parameter, text string) (any, error)
	// Windows are the maintenance windows in force, for the banner of the
	// dashboard and the phone list; nil: always open.
	Windows func() Windows
	// Phones is the address phones reach the CAPF service at, as the
	// phone page's configuration snippet gives it: host and port.
	// nil: the snippet is not shown.
	Phones func() (host, port string)
	// Servers is the fleet parameter capf_servers in force: when it lists
	// servers, the snippet's capfList names them (see overview.Options).
	Servers func() []string
	// Certificate is the CAPF certificate Security > CAPF Certificate
	// shows; nil shows that none is loaded.
	Certificate *x509.Certificate
	// CASet is the live CA set (*caset.Admin): Security > CAPF
	// Certificate then shows its active CA and every CA, with regenerate,
	// activate and retire for administrators; nil: Certificate alone.
	CASet CASet
	// TrustFiles shows Security > Trust File; nil: not available.
	TrustFiles TrustFiles
	Logger     *slog.Logger
	// Location is the time zone of Operation Completes By in the forms and
	// of the times shown; UTC when nil.
	Location *time.Location
	// Rand draws the strings of Generate String; crypto/rand when nil.
	Rand io.Reader
	// EventInterval is how often the live status stream polls the
	// device; 1 s when zero.
	EventInterval time.Duration
	// EventMaxAge ends a live status stream after this long (the browser
	// reconnects, and is authenticated again); 5 min when zero.
	EventMaxAge time.Duration
	// Sessions checks a live status stream's session (or token) again
	// every SessionRecheck, through the account store every node shares;
	// the stream ends once the session has (logout, expiry, password
	// change, account removal). nil: not checked again before EventMaxAge.
	Sessions webauth.Sessions
	// SessionRecheck is how often a stream's session is checked again;
	// 5 s when zero.
	SessionRecheck time.Duration
	// StreamsPerSession bounds the live status streams one session (or
	// token) holds open at once: one more is refused with 429;
	// DefaultStreamsPerSession when zero.
	StreamsPerSession int
	// MaxStreams bounds the live status streams open in total (429
	// beyond); DefaultMaxStreams when zero.
	MaxStreams int
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ui holds the handler's dependencies and parsed pages.
type ui struct {
	o     Options
	log   *slog.Logger
	loc   *time.Location
	rand  io.Reader
	pages map[string]*template.Template
	// streams counts the open live status streams.
	streams streamSlots
	// compose composes the phone page, the report and the dashboard.
	compose *overview.Composer
}

// New returns the UI's handler. It must run behind webauth.Middleware (and
// webauth.SecurityHeaders).
func New(o Options) http.Handler {
	u := &ui{o: o, log: o.Logger, loc: o.Location, rand: o.Rand}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.loc == nil {
		u.loc = time.UTC
	}
	if u.rand == nil {
		u.rand = rand.Reader
	}
	if u.o.EventInterval <= 0 {
		u.o.EventInterval = time.Second
	}
	if u.o.EventMaxAge <= 0 {
		u.o.EventMaxAge = 5 * time.Minute
	}
	if u.o.SessionRecheck <= 0 {
		u.o.SessionRecheck = 5 * time.Second
	}
	if u.o.StreamsPerSession <= 0 {
		u.o.StreamsPerSession = DefaultStreamsPerSession
	}
	if u.o.MaxStreams <= 0 {
		u.o.MaxStreams = DefaultMaxStreams
	}
	u.streams.perSession, u.streams.total = u.o.StreamsPerSession, u.o.MaxStreams
	u.pages = parsePages(u.funcs())
	u.compose = composer(u.o, u)

	mux := http.NewServeMux()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.HandleFunc("GET /login", u.loginPage)
	mux.HandleFunc("POST /login", u.loginSubmit)
	mux.HandleFunc("POST /logout", u.logout)

	mux.HandleFunc("GET /{$}", u.read(u.dashboard))
	mux.HandleFunc("GET /phones", u.read(u.phoneList))
	mux.HandleFunc("GET /phones/new", u.read(u.phoneNew))
	mux.HandleFunc("POST /phones/new", u.write(u.phoneCreate))
	mux.HandleFunc("GET /phones/{name}", u.read(u.phoneShow))
	mux.HandleFunc("POST /phones/{name}", u.write(u.phoneSave))
	mux.HandleFunc("POST /phones/{name}/delete", u.write(u.phoneDelete))
	mux.HandleFunc("GET /phones/{name}/events", u.read(u.phoneEvents))
	mux.HandleFunc("GET /phones/{name}/certificates/{index}", u.read(u.phoneCertificate))
	mux.HandleFunc("POST /phones/{name}/revoke", u.write(u.phoneRevoke))
	mux.HandleFunc("POST /phones/{name}/reset", u.write(u.phoneReset))
	mux.HandleFunc("GET /bulk", u.read(u.bulkForm))
	mux.HandleFunc("POST /bulk", u.write(u.bulkSubmit))
	mux.HandleFunc("GET /campaigns", u.read(u.campaigns))
	mux.HandleFunc("POST /bulk/reset", u.write(u.bulkReset))
	mux.HandleFunc("GET /campaigns/{id}", u.read(u.campaign))
	mux.HandleFunc("POST /campaigns/{id}/cancel", u.write(u.campaignCancel))
	mux.HandleFunc("GET /campaigns/{id}/strings", u.read(u.campaignStringsPage))
	mux.HandleFunc("GET /campaigns/{id}/strings.csv", u.read(u.campaignStringsCSV))
	mux.HandleFunc("GET /import", u.read(u.importForm))
	mux.HandleFunc("POST /import", u.write(u.importSubmit))
	mux.HandleFunc("GET /report.csv", u.read(u.reportCSV))
	mux.HandleFunc("GET /system/parameters", u.read(u.parameters))
	mux.HandleFunc("POST /system/parameters", u.write(u.parametersSave))
	mux.HandleFunc("GET /serviceability/activation", u.read(u.activation))
	mux.HandleFunc("POST /serviceability/activation", u.write(u.activationSave))
	mux.HandleFunc("GET /serviceability/backup", u.read(u.backupPage))
	mux.HandleFunc("POST /serviceability/backup", u.write(u.backupDownload))
	mux.HandleFunc("GET /security/certificate", u.read(u.certificate))
	mux.HandleFunc("GET /security/certificate/file", u.read(u.certificateFile))
	mux.HandleFunc("POST /security/certificate/regenerate", u.write(u.caRegenerate))
	mux.HandleFunc("POST /security/certificate/activate", u.write(u.caActivate))
	mux.HandleFunc("POST /security/certificate/retire", u.write(u.caRetire))
	mux.HandleFunc("POST /security/certificate/import", u.write(u.caChange(u.caImport)))
	mux.HandleFunc("POST /security/certificate/csr", u.write(u.caCSR))
	mux.HandleFunc("GET /security/certificate/pending.csr", u.read(u.caPendingCSR))
	mux.HandleFunc("POST /security/certificate/install-signed", u.write(u.caChange(u.caInstallSigned)))
	mux.HandleFunc("POST /security/certificate/pending/discard", u.write(u.caChange(u.caDiscardPending)))
	mux.HandleFunc("POST /security/certificate/issuer", u.write(u.caChange(u.caIssuerCreate)))
	mux.HandleFunc("POST /security/certificate/issuer/import", u.write(u.caChange(u.caIssuerImport)))
	mux.HandleFunc("POST /security/certificate/issuer/remove", u.write(u.caChange(u.caIssuerRemove)))
	mux.HandleFunc("POST /security/certificate/issuer/forget", u.write(u.caChange(u.caIssuerForget)))
	mux.HandleFunc("GET /security/trust-file", u.read(u.trustPage))
	mux.HandleFunc("GET /security/trust-file/ITLFile.tlv", u.read(u.trustDownload))
	mux.HandleFunc("POST /security/trust-file", u.write(u.trustRebuild))
	mux.HandleFunc("GET /audit", u.read(u.audit))
	u.accountRoutes(mux)
	mux.HandleFunc("/", u.read(func(w http.ResponseWriter, r *http.Request, p account.Principal) {
		u.fail(w, r, p, fault.NotFoundf("no page at %s", r.URL.Path))
	}))
	return mux
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// BodyLimit is the most a request body to the UI may hold, for
// webauth.LimitBodies: the import file's limit on POST /import, a form's
// elsewhere.
func BodyLimit(r *http.Request) int64 {
	if r.URL.Path == "/import" {
		return maxImportBytes
	}
	return maxFormBytes
}

// handler is a page handler that runs for an authenticated principal.
type handler func(w http.ResponseWriter, r *http.Request, p account.Principal)

// read wraps a page that any principal may see; an anonymous request is
// sent to the login page and comes back afterwards.
func (u *ui) read(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := webauth.PrincipalFrom(r.Context())
		if !ok {
			if r.Header.Get("Accept") == "text/event-stream" {
				http.Error(w, "not logged in", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, p)
	}
}

// write wraps a state-changing form handler: it needs a principal that may
// write and, for a browser session, the form's anti-forgery token (the
// middleware checks it too; this keeps the UI safe if it is mounted
// without).
func (u *ui) write(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := webauth.PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if err := p.RequireWrite(); err != nil {
			u.fail(w, r, p, err)
			return
		}
		limit := int64(maxFormBytes)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			limit = maxImportBytes
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		var perr error
		if limit == maxImportBytes {
			perr = r.ParseMultipartForm(8 << 20)
		} else {
			perr = r.ParseForm()
		}
		if perr != nil {
			var mbe *http.MaxBytesError
			if errors.As(perr, &mbe) {
				u.render(w, r, p, http.StatusRequestEntityTooLarge, "error.html", http.StatusText(http.StatusRequestEntityTooLarge), "",
					errorData{Status: http.StatusRequestEntityTooLarge, Title: http.StatusText(http.StatusRequestEntityTooLarge),
						Detail: fmt.Sprintf("the form is larger than the %d KiB this page accepts", limit>>10)})
			} else {
				u.fail(w, r, p, fault.Invalidf("the form could not be read: %v", perr))
			}
			return
		}
		if err := checkCSRF(r, p); err != nil {
			u.fail(w, r, p, err)
			return
		}
		h(w, r, p)
	}
}

// checkCSRF requires a browser session's anti-forgery token in the form
// or the header; a bearer token's request carries none and needs none.
func checkCSRF(r *http.Request, p account.Principal) error {
	if p.CSRF == "" {
		return nil
	}
	got := r.Header.Get(webauth.CSRFHeader)
	if got == "" {
		got = r.FormValue(webauth.CSRFField)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) != 1 {
		return fault.New(fault.Forbidden, "the form's anti-forgery token is missing or stale; reload the page and try again")
	}
	return nil
}

// view is what every page template gets.
type view struct {
	P        account.Principal
	LoggedIn bool
	Title    string
	Nav      string // the nav entry to mark current
	Zone     string // the time zone name of the times shown
	Data     any
}

// CanWrite reports whether the page shows write controls.
func (v view) CanWrite() bool { return v.LoggedIn && v.P.CanWrite() }

// CSRF returns the token every form carries.
func (v view) CSRF() string { return v.P.CSRF }

// CSRFField returns the name of the token's form field.
func (v view) CSRFField() string { return webauth.CSRFField }

// render writes page name with data, status 200 unless status says
// otherwise.
func (u *ui) render(w http.ResponseWriter, r *http.Request, p account.Principal, status int, name, title, nav string, data any) {
	t, ok := u.pages[name]
	if !ok {
		u.log.Error("webui: no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	_, loggedIn := webauth.PrincipalFrom(r.Context())
	var buf bytes.Buffer
	v := view{P: p, LoggedIn: loggedIn, Title: title, Nav: nav, Zone: u.zoneName(), Data: data}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		u.log.Error("webui: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorData is the error page's content.
type errorData struct {
	Status int
	Title  string
	Detail string
}

// fail shows err as an error page with its HTTP status; an internal error's
// text goes only to the log.
func (u *ui) fail(w http.ResponseWriter, r *http.Request, p account.Principal, err error) {
	pr := u.problem("request "+r.URL.Path, err)
	u.render(w, r, p, pr.Status, "error.html", pr.Title, "", errorData{Status: pr.Status, Title: pr.Title, Detail: pr.Detail})
}

// problem maps err to what the page shows — the rule once
// (fault.Message), with the field it blames — and logs what the page does
// not: an internal error in full, the chain of context around any other.
// what names the action for the log.
func (u *ui) problem(what string, err error) fault.Problem {
	pr := fault.ProblemOf(err)
	switch {
	case pr.Status >= 500:
		u.log.Error("webui: "+what+" failed", "err", err)
	case fault.Chained(err):
		u.log.Info("webui: "+what+" refused", "status", pr.Status, "detail", pr.Detail, "err", err)
	}
	return pr
}

// formErrors maps an input field to its message; "" is the form's own.
type formErrors map[string]string

// formError records err next to the field it names (or for the whole
// form), logs it as problem does, and returns the HTTP status to answer
// with.
func (u *ui) formError(fe formErrors, err error) int {
	pr := u.problem("form action", err)
	fe[pr.Field] = pr.Detail
	if pr.Status == http.StatusUnprocessableEntity { // every field a parse blames, beside the first
		for f, e := range device.ErrorsByField(err) {
			if _, ok := fe[f]; !ok {
				fe[f] = fault.Message(e)
			}
		}
	}
	return pr.Status
}

// maxNext bounds the page a login returns to.
const maxNext = 2048

// safeNext returns next if it is a path on this site, else "/": printable
// ASCII only (no control character, which browsers strip before they
// resolve a URL, so that "/\t/evil.example/" means "//evil.example/"), no
// backslash (which browsers read as a slash), a single leading slash, and
// no scheme or host when parsed.
func safeNext(next string) string {
	if next == "" || len(next) > maxNext || next[0] != '/' || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x21 || c > 0x7e || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

// notConfigured is the error of a page whose service is not wired.
func notConfigured(what string) error {
	return fault.New(fault.Unavailable, "%s is not available on this server", what)
}
