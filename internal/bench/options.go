package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/capflist"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/phonesim"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/wire"
)

// StartFunc starts a CAPF server on dataDir and the database db (a
// postgres:// URL, or "" for the SQLite database of dataDir) in this
// process, listening on a loopback port, and returns its phone address and
// a function that stops it and waits until it has.
type StartFunc func(ctx context.Context, dataDir, db string) (addr string, stop func(), err error)

// Options configures a benchmark run. Only Phones is required; the zero
// value of every other field is a usable default.
//
// The server is chosen thus: Server set means an external server (mode
// "external"); else StartServer set means an in-process server on a
// temporary data directory ("in-process"); else Executable (default: this
// program) is started as a child process, "EXE serve", on a temporary data
// directory ("spawned"). Only the spawned server's CPU time and memory are
// measured.
type Options struct {
	// Phones is the number of phones in the timed phase, each a distinct
	// device with one session.
	Phones int
	// Concurrency is the number of phones in session at once (default 64).
	Concurrency int
	// PhoneKey is the key the devices are asked to generate, as a
	// device.KeySpec: rsa1024, rsa2048, ec256, … (default ec256).
	PhoneKey string
	// CAPFKey is the key of the CAPF certificate of a server the run starts:
	// rsa2048 (default) or ec256; other capf_key values are passed on.
	CAPFKey string
	// Operation is the operation the devices are provisioned with: install
	// (default: key generation, issuance, store) or none (authentication
	// only, the session ends with no-action).
	Operation string

	// Server is the address (host:port) of an external server, or of
	// several nodes of one cluster, comma-separated (at most MaxNodes):
	// each phone then lists them all as its capfList, phone i starting
	// at node i mod N, and the report gives each node's share.
	Server string
	// DataDir is the external server's data directory, to provision the
	// devices through its SQLite database (capf.db) and, when CAFile is
	// empty, to read the CAPF certificate (ca/capf.pem). Required with
	// Server unless NoProvision is set.
	DataDir string
	// CAFile is the PEM file of the CAPF certificate the phones trust, for
	// an external server.
	CAFile string
	// DB is a PostgreSQL database (a postgres:// URL); "" means SQLite.
	// A server the run starts uses a new schema of it, created for the run
	// and dropped afterwards (kept with KeepDataDir), so runs on one
	// database do not collide; the devices are provisioned there. With
	// Server, it is the external server's database, where the devices are
	// provisioned (DataDir is then needed only for the CAPF certificate).
	DB string
	// Nodes is the number of server nodes a spawned run starts (default
	// 1). More than one needs DB: the run stores one cluster's keys in its
	// schema with "capf cluster init" under a KEK file of its temporary
	// directory, starts that many "capf serve" nodes on distinct loopback
	// addresses (127.0.0.1, 127.0.0.2, …), and gives phone i the capfList
	// node i mod Nodes first, then the others in order.
	Nodes int
	// NoProvision skips provisioning: the devices must exist with the
	// operation wanted and null-string authentication.
	NoProvision bool

	// NamePrefix and Offset name the devices: NamePrefix (default "SEP")
	// followed by Offset+i in upper-case hex, zero-padded to 15 characters
	// in all for SEP names (a MAC address) and to 12 digits otherwise. The
	// timed phones are i = 0 … Phones-1, the waiting ones follow.
	NamePrefix string
	Offset     uint64

	// Waiting phones are connected before the timed phase and held in key
	// generation for WaitingDelay (default 10m), sending REQUEST_IN_PROGRESS
	// every WaitingProgress (default 30s), while the timed phones run.
	Waiting         int
	WaitingDelay    time.Duration
	WaitingProgress time.Duration

	// KeyPool is the number of phone key pairs generated before the timed
	// phase and handed out round robin (default 16).
	KeyPool int
	// SourceAddrs spreads the phones over this many loopback source
	// addresses, 127.0.0.1, 127.0.0.2, … (250 per third octet), when the
	// server address is an IPv4 loopback address; 0 or 1 lets the system
	// choose.
	SourceAddrs int
	// Timeout bounds the hold and timed phases (default 10m).
	Timeout time.Duration
	// MessageTimeout is each phone's per-message timeout (default 60s).
	MessageTimeout time.Duration
	// TLS13 lets the simulated phones negotiate TLS 1.3. By default they
	// stop at TLS 1.2, as the protocol notes observe of phones and
	// softphones, so the figure is the one a real fleet produces.
	TLS13 bool

	// ServerParams are extra capf.json keys for a server the run starts;
	// they override the ones the run sets.
	ServerParams map[string]any
	// StartServer, when set, starts the server in this process.
	StartServer StartFunc
	// Executable is the program to spawn as the server (default: this
	// program, os.Executable).
	Executable string
	// CPUProfile, when set, has each server the run spawns write its CPU
	// profile, from its start to its stop, to a new file: CPUProfile
	// itself, or CPUProfile.nodeN for node N of several. The timed phase
	// is most of that span; start-up and drain are short.
	CPUProfile string
	// KeepDataDir keeps the temporary data directory of a server the run
	// started (its database and server.log), and names it in the report.
	KeepDataDir bool
	// BareCAPF measures the reference instead of capf, driven by the same
	// simulated phones: Executable's hidden "bench-bare-server" command
	// ([ServeBareCAPF]) spawned as the server, measured as capf's would
	// be (CPUProfile too). It takes no server, database, nodes, waiting
	// phones or service parameters, and operation install only.
	BareCAPF bool
}

// Server modes, as reported.
const (
	ModeExternal  = "external"
	ModeSpawned   = "spawned"
	ModeInProcess = "in-process"
)

// Defaults.
const (
	DefaultConcurrency     = 64
	DefaultPhoneKey        = "ec256"
	DefaultCAPFKey         = "rsa2048"
	DefaultOperation       = "install"
	DefaultKeyPool         = 16
	DefaultWaitingDelay    = 10 * time.Minute
	DefaultWaitingProgress = 30 * time.Second
	DefaultTimeout         = 10 * time.Minute
	DefaultMessageTimeout  = 60 * time.Second
	DefaultNamePrefix      = "SEP"
	// MaxSourceAddrs is the number of loopback addresses the scheme
	// 127.0.x.y (x < 256, 0 < y ≤ 250) can name.
	MaxSourceAddrs = 256 * 250
	// MaxErrors is how many distinct error messages a report keeps.
	MaxErrors = 10
	// MaxNodes is the most nodes a run starts: a phone's capfList holds
	// up to five servers.
	MaxNodes = phonesim.MaxServers
)

// mode returns the server mode the options select.
func (o *Options) mode() string {
	switch {
	case o.Server != "":
		return ModeExternal
	case o.StartServer != nil:
		return ModeInProcess
	}
	return ModeSpawned
}

// withDefaults returns o with the defaults applied, or every problem found.
func (o Options) withDefaults() (Options, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.PhoneKey == "" {
		o.PhoneKey = DefaultPhoneKey
	}
	if o.CAPFKey == "" {
		o.CAPFKey = DefaultCAPFKey
	}
	if o.Operation == "" {
		o.Operation = DefaultOperation
	}
	if o.KeyPool <= 0 {
		o.KeyPool = DefaultKeyPool
	}
	if o.WaitingDelay <= 0 {
		o.WaitingDelay = DefaultWaitingDelay
	}
	if o.WaitingProgress <= 0 {
		o.WaitingProgress = DefaultWaitingProgress
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	if o.NamePrefix == "" {
		o.NamePrefix = DefaultNamePrefix
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.Phones <= 0 {
		bad("phones %d: want at least 1", o.Phones)
	}
	if o.Waiting < 0 {
		bad("waiting %d: want 0 or more", o.Waiting)
	}
	if _, err := phoneKeySpec(o.PhoneKey); err != nil {
		bad("phone key: %v", err)
	}
	switch o.Operation {
	case string(device.OpInstall), string(device.OpNone):
	default:
		bad("operation %q: want install or none", o.Operation)
	}
	if o.SourceAddrs < 0 || o.SourceAddrs > MaxSourceAddrs {
		bad("source addresses %d: want 0 to %d", o.SourceAddrs, MaxSourceAddrs)
	}
	if o.Server != "" {
		if _, err := serverList(o.Server); err != nil {
			bad("%v", err)
		}
		if o.DataDir == "" && o.DB == "" && !o.NoProvision {
			bad("an external server needs its data directory to provision the devices, or no provisioning")
		}
		if o.CAFile == "" && o.DataDir == "" {
			bad("an external server needs the CAPF certificate file (or its data directory)")
		}
		if o.StartServer != nil {
			bad("an external server and an in-process server are exclusive")
		}
	}
	if err := store.Check(o.DB); err != nil {
		bad("%v", err)
	}
	switch {
	case o.Nodes < 0 || o.Nodes > MaxNodes:
		bad("nodes %d: want 1 to %d", o.Nodes, MaxNodes)
	case o.Nodes > 1 && o.mode() != ModeSpawned:
		bad("%d nodes: only a server the run spawns can have several nodes (not --server, not --in-process)", o.Nodes)
	case o.Nodes > 1 && !store.IsPostgres(o.DB):
		bad("%d nodes: several nodes share a PostgreSQL database: give --db postgres://…", o.Nodes)
	}
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if o.CPUProfile != "" && o.mode() != ModeSpawned {
		bad("a CPU profile is written by a server the run spawns (not --server, not --in-process)")
	}
	if o.BareCAPF && (o.mode() != ModeSpawned || o.DB != "" || o.Nodes > 1 || o.Waiting > 0 ||
		len(o.ServerParams) > 0 || o.Operation != string(device.OpInstall)) {
		bad("the bare CAPF server takes no server, database, nodes, waiting phones or parameters, and operation install only")
	}
	if o.Waiting > 0 && o.Operation != string(device.OpInstall) {
		bad("waiting phones need operation install (they wait in key generation)")
	}
	if n := len(deviceName(o.NamePrefix, o.Offset+uint64(o.Phones+o.Waiting))); n > device.MaxNameLen {
		bad("device names of %d characters are too long", n)
	}
	if _, err := device.NormalizeName(deviceName(o.NamePrefix, o.Offset)); err != nil {
		bad("name prefix %q: %v", o.NamePrefix, err)
	}
	return o, errors.Join(errs...)
}

// deviceName returns the name of device number n.
func deviceName(prefix string, n uint64) string {
	width := 12
	if strings.HasPrefix(strings.ToUpper(prefix), "SEP") {
		width = max(15-len(prefix), 1)
	}
	return fmt.Sprintf("%s%0*X", prefix, width, n)
}

// phoneKeySpec turns a device.KeySpec name into the simulator's KeySpec.
func phoneKeySpec(s string) (phonesim.KeySpec, error) {
	k, err := device.ParseKeySpec(s)
	if err != nil {
		return phonesim.KeySpec{}, err
	}
	if k.IsRSA() {
		return phonesim.KeySpec{Type: wire.KeyRSA, Bits: k.Bits()}, nil
	}
	curves := map[int]wire.Curve{256: wire.CurveP256, 384: wire.CurveP384, 521: wire.CurveP521}
	return phonesim.KeySpec{Type: wire.KeyEC, Curve: curves[k.Bits()]}, nil
}

// sourceAddr returns the loopback source address number i (0-based):
// 127.0.(i/250).(i%250+1).
func sourceAddr(i int) string {
	return fmt.Sprintf("127.0.%d.%d", i/250, i%250+1)
}

// isIPv4Loopback reports whether the host of addr is an IPv4 loopback
// address (or "localhost").
func isIPv4Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// serverList splits an external Server into its addresses: one to
// MaxNodes host:port entries, comma-separated, none twice, each read as
// capf_servers reads a capfList entry (capflist.ParseEntry) but with its
// port required: the run dials it.
func serverList(s string) ([]string, error) {
	var list []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		e, err := capflist.ParseEntry(a)
		if err == nil && e.Port == "" {
			err = fmt.Errorf("no port: want HOST:PORT")
		}
		if err != nil {
			return nil, fmt.Errorf("server %q: %s", a, fault.Message(err))
		}
		if slices.Contains(list, e.String()) {
			return nil, fmt.Errorf("server %q listed twice", a)
		}
		list = append(list, e.String())
	}
	if len(list) > MaxNodes {
		return nil, fmt.Errorf("servers %q: %d listed, a phone's capfList holds at most %d", s, len(list), MaxNodes)
	}
	return list, nil
}
