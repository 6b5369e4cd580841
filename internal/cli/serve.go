package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/cluster"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/contact"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/kek"
	"github.com/capf-server/capf/internal/keyref"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/lease"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/sdnotify"
	"github.com/capf-server/capf/internal/server"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/store"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/telemetry"
	"github.com/capf-server/capf/internal/webui"
)

func init() { subcommands = append(subcommands, newServeCmd) }

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

type serveFlags struct {
	listen        string
	tlsProfile    string
	logLevel      string
	metricsListen string
	adminListen   string
	adminCert     string
	adminKey      string
	drain         time.Duration
	leaseTerm     time.Duration
	cpuProfile    string
	sastKey       sastKeyFlags
}

func newServeCmd(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the CAPF service (creates the data directory, database and CAPF certificate on first start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, f, cmd.Flags().Changed)
		},
	}
	cmd.Flags().StringVar(&f.listen, "listen", "", "address for the CAPF protocol (default from capf.json, \":3804\")")
	cmd.Flags().StringVar(&f.tlsProfile, "tls-profile", "", config.Choices(config.TLSProfiles)+" (legacy adds TLS 1.0/1.1 and RSA key exchange for 79xx phones)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "", config.Choices(config.LogLevels))
	cmd.Flags().StringVar(&f.metricsListen, "metrics-listen", "", "address for Prometheus /metrics and /healthz (default from capf.json: off)")
	cmd.Flags().StringVar(&f.adminListen, "admin-listen", "", "address for the HTTPS administration listener: web UI, REST API, /metrics, /healthz (default from capf.json, \":8443\"; \"\": off)")
	cmd.Flags().StringVar(&f.adminCert, "admin-cert", "", "PEM certificate (chain) of the admin listener (default: issued by the admin CA in DATA/admin-tls/)")
	cmd.Flags().StringVar(&f.adminKey, "admin-key", "", "PEM private key of --admin-cert")
	cmd.Flags().DurationVar(&f.drain, "drain", 30*time.Second, "on SIGTERM, how long running sessions may take to finish")
	cmd.Flags().DurationVar(&f.leaseTerm, "lease-term", 0, "how long a node's registration and its job leases last unless renewed (default $"+envLeaseTerm+", else 30s); for tests")
	_ = cmd.Flags().MarkHidden("lease-term")
	cmd.Flags().StringVar(&f.cpuProfile, "cpu-profile", "", "write the CPU profile of this run to a new FILE (capf bench --cpu-profile)")
	_ = cmd.Flags().MarkHidden("cpu-profile")
	f.sastKey.register(cmd, "sign the trust file kept in trust_file_dir with this key: pkcs11:token=LABEL;object=NAME (or a PEM file); it must match the primary or backup SAST certificate")
	return cmd
}

// flagParams returns the service parameters the flags set, by their
// capf.json keys; they override the file.
func flagParams(f serveFlags, changed func(string) bool) map[string]any {
	set := map[string]any{}
	for _, p := range []struct {
		flag, key, value string
	}{
		{"listen", "listen", f.listen},
		{"tls-profile", "tls_profile", f.tlsProfile},
		{"log-level", "log_level", f.logLevel},
		{"metrics-listen", "metrics_listen", f.metricsListen},
		{"admin-listen", "admin_listen", f.adminListen},
	} {
		if changed(p.flag) {
			set[p.key] = p.value
		}
	}
	return set
}

func newLogger(g *globals, cfg config.Config) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(cfg.LogLevel)) // validated with the config
	opts := &slog.HandlerOptions{Level: l}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// runServe plans the service (checks that write nothing), binds its
// sockets, and only then creates what a first start creates (data
// directory, capf.json, database, CAPF key and certificate, first
// administrator) and serves until ctx ends. Each socket listens only once
// what it serves is in place. A serve that fails before it binds leaves
// the data directory as it was.
func runServe(ctx context.Context, g *globals, f serveFlags, changed func(string) bool) error {
	if err := store.Check(g.db); err != nil {
		return err
	}
	term, err := leaseTerm(f.leaseTerm, os.Getenv)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintln(g.stderr, "capf serve:", err)
			}
		}()
	}
	plan, err := planServe(ctx, g, flagParams(f, changed))
	if err != nil {
		return err
	}
	if err := probeLock(g); err != nil {
		return err
	}
	cfg := plan.cfg
	givenAdmin, ownAdmin, err := adminFiles(f, time.Now())
	if err != nil {
		return err
	}
	// The token settings of capf.json fill what the flags left unset.
	f.sastKey = f.sastKey.fromConfig(cfg, g.dataDir, changed)
	sastKey, err := f.sastKey.load(ctx)
	if err != nil {
		return err
	}
	// The CA keys kept in a token open with the same module and PIN.
	g.p11 = keyref.Options{Module: f.sastKey.module, PINFile: f.sastKey.pinFile}
	defer g.tokenKeys.closeAll()
	if sastKey != nil {
		defer sastKey.Close()
	}
	// A KEK file that is missing, readable by others or malformed stops
	// serve here, before it binds or writes anything.
	var k *kek.KEK
	if g.kekFile != "" {
		if k, err = g.loadKEK(); err != nil {
			return err
		}
	}
	plan.phonesOff = !startsActive(ctx, g)
	lns, err := plan.bind(ctx)
	if err != nil {
		return err
	}
	defer lns.close()
	var st store.Store
	if store.IsPostgres(g.db) {
		// Before the data directory is touched: a database that cannot be
		// opened (unreachable, credentials refused, a newer schema) leaves
		// it as it was.
		if st, err = store.Open(ctx, g.storeOptions(store.Create)); err != nil {
			return err
		}
		defer st.Close()
		// So are keys that do not open (a wrong KEK), or a database
		// without keys when a KEK is given.
		if err := g.serveClusterKeys(ctx, st, k, cfg); err != nil {
			return err
		}
	}
	if err := g.dir().Ensure(); err != nil {
		return err
	}
	unlock, err := g.lockDataDir()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := config.WriteIfMissing(g.dataDir, config.Defaults()); err != nil {
		return err
	}
	log := newLogger(g, cfg)
	if old, err := g.tightenDataDir(); err != nil {
		return err
	} else if old != 0 {
		log.Warn("the data directory was accessible by others; made it private", "dir", g.dataDir, "was", fmt.Sprintf("%04o", old), "now", fmt.Sprintf("%04o", dataDirMode))
	}
	conns := phoneConnCap(cfg, log)
	if st == nil {
		if st, err = store.Open(ctx, g.storeOptions(store.Create)); err != nil {
			return err
		}
		defer st.Close()
	}
	// The fleet parameters live in the database: a capf.json of an older
	// version gives its own once, and from then on the database's are in
	// force over the node's file.
	sys := system.NewService(system.Options{DataDir: g.dataDir, Store: st})
	nodeCfg := cfg
	cfg, version, err := fleetParameters(ctx, sys, nodeCfg, log)
	if err != nil {
		return err
	}
	authority, created := plan.authority, false
	capfSource := g.dir().CACert()
	if g.cluster != nil {
		authority = g.cluster.authority
		capfSource = fmt.Sprintf("the database (cluster key %s, KEK %s)", keys.IDCAPF, g.cluster.kek.ID())
	}
	if authority == nil {
		if authority, created, err = ca.LoadOrCreate(g.caOptions(cfg)); err != nil {
			return fmt.Errorf("CAPF certificate: %w", err)
		}
	}
	// The CA set (ADR 0017): the certificate loaded above becomes its
	// first active CA on the first start; from then on the set says which
	// CA TLS presents and signs, and which are trusted and listed.
	caSet, err := g.serveCASet(ctx, st, authority, cfg, log)
	if err != nil {
		return err
	}
	if active := caSet.Active(); !active.Certificate().Equal(authority.Certificate()) {
		id, _ := caset.KeyID(active.Certificate())
		capfSource, created = "the CA set (active "+id+"; capf ca status)", false
		authority = active
	}
	verifier := newVerifier(caSet, plan.micCerts)
	trustFiles, syncTrust, err := startTrustFile(ctx, g, cfg, caSet.Trusted(), servedTrust{adds: plan.trustAdds, audit: st, key: sastKey, keyFrom: f.sastKey.flag(), capfNow: caSet.Trusted}, log)
	if err != nil {
		return err
	}
	node, err := loadOrCreateNodeID(g.dataDir)
	if err != nil {
		return err
	}
	windows, err := cfg.Windows()
	if err != nil {
		return err
	}
	params, err := newLiveParams(sys, nodeCfg, cfg, version, log)
	if err != nil {
		return err
	}
	poll, watcher := fleetPollSQLite, fleetWatcher(nil)
	if w, ok := st.(fleetWatcher); ok {
		poll, watcher = fleetPollPostgres, w
	}
	paramsCtx, stopParams := context.WithCancel(ctx)
	paramsDone := make(chan struct{})
	go func() { defer close(paramsDone); params.run(paramsCtx, poll, watcher) }()
	defer func() { stopParams(); <-paramsDone }() // before the store closes
	caSetDone := make(chan struct{})
	go func() { defer close(caSetDone); g.watchCASet(paramsCtx, caSet, st, cfg, caSetPoll, watcher, log) }()
	defer func() { stopParams(); <-caSetDone }()
	strangers := contact.NewStrangers(contact.DefaultLatest, contact.DefaultEvery)
	svc := device.NewService(device.ServiceOptions{Store: st, DefaultKey: device.KeySpec(cfg.DefaultKey),
		DefaultKeyNow: func() device.KeySpec { return params.Current().DefaultKey }, Strangers: strangers, Notifier: plan.notifier})
	rev, err := newRevocation(g.dataDir, st, st, caSet, log)
	if err != nil {
		return err
	}
	revCtx, stopRev := context.WithCancel(ctx)
	revDone := rev.run(revCtx)
	defer func() { stopRev(); revDone() }() // before the store closes
	if n, err := svc.RecoverNode(ctx, node); err != nil {
		return err
	} else if n > 0 {
		log.Warn("marked sessions cut off by a restart as failed", "count", n)
	}
	tlsCfg, err := server.TLSConfigFunc(cfg.TLSProfile, caSet.GetCertificate)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := telemetry.New(reg)
	// capf_lscs_expiring is counted every minute on every node (two
	// indexed counts), never per scrape.
	expiryCtx, stopExpiry := context.WithCancel(ctx)
	defer stopExpiry()
	go metrics.WatchExpiring(expiryCtx, st, time.Minute, time.Now, log)
	// The operation limit and the per-address budget of string guesses
	// are the sessions' fleet parameters (params); the guesses are counted
	// in the database, so the budget holds for every node sharing it.
	limiter := session.NewLimiter()
	guard := session.NewSharedGuard(addressGuessWindow, st)
	// The refusals before a session are written in batches, one row per
	// device per interval however often its phone calls.
	contacts := contact.NewRecorder(contact.RecorderOptions{Sink: st, Logger: log})
	contactsCtx, stopContacts := context.WithCancel(context.WithoutCancel(ctx))
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "capf_contacts_recorded_total",
			Help: "Phone contacts that ended before a session, written to their device (batched: at most one per device per flush)."},
			func() float64 { w, _ := contacts.Stats(); return float64(w) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "capf_contacts_dropped_total",
			Help: "Phone contacts not recorded because too many devices were waiting for the next flush."},
			func() float64 { _, d := contacts.Stats(); return float64(d) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "capf_unconfigured_requests_total",
			Help: "Requests from phones for a device that is not configured (or a malformed name)."},
			func() float64 { return float64(strangers.UnknownNames().Count) }),
	)
	contactsDone := make(chan struct{})
	go func() { defer close(contactsDone); contacts.Run(contactsCtx) }()
	defer func() { stopContacts(); <-contactsDone }()
	deps := &session.Deps{
		Store:     kickingStore{Store: metrics.InstrumentStore(st), kick: rev.publisher.Kick},
		Issuer:    caSet,
		Auth:      verifier,
		Tracer:    server.TraceDir{Dir: g.dir().Trace()},
		Locks:     session.NewDeviceLocks(),
		Limiter:   limiter,
		Guard:     guard,
		Observer:  metrics,
		Contacts:  contacts,
		Strangers: strangers,
		Now:       time.Now,
		Logger:    log,
		Node:      node,
		Params:    params,
	}
	// A phone's LSC is refused once revoked: one look-up by serial, only
	// when a phone authenticates by its LSC.
	deps.Revocations = lsc.Revocations{Store: st}
	srv := server.New(server.Options{
		TLS:                tlsCfg,
		HandshakeTimeout:   time.Duration(cfg.HandshakeTimeout),
		MaxConnsPerAddress: cfg.MaxConnsPerAddress,
		MaxConns:           conns.max,
		Observer:           metrics,
		Logger:             log,
		Deps:               deps,
	})
	health := func(ctx context.Context) error {
		_, err := st.ListDevices(ctx, device.Query{Limit: 1})
		return err
	}
	accounts := account.NewService(account.Options{Store: st, Logger: log})
	firstAdmin, err := bootstrapAdmin(ctx, g, accounts)
	if err != nil {
		return err
	}
	var metricsAddr, adminAddr string
	addrs := []string{"host " + nodeHostname()}
	// phoneListen is where phones are served, once they are.
	var phoneListen atomic.Pointer[string]
	if lns.metrics != nil {
		mln, err := lns.metrics.Listen()
		if err != nil {
			return err
		}
		metricsAddr = mln.Addr().String()
		addrs = append(addrs, "metrics http://"+metricsAddr)
		// Its own listener with a few connections of its own, out of the
		// descriptors the phone cap leaves: it answers while phones flood.
		hs := adminhttp.NewServer(adminhttp.Handler(adminhttp.Options{Gatherer: reg, Health: health}))
		go func() { _ = hs.Serve(adminhttp.LimitListener(mln, adminhttp.MaxConns)) }()
		defer hs.Close()
	}
	if lns.admin != nil {
		cert, err := adminCertificate(g, cfg, givenAdmin, ownAdmin, log)
		if err != nil {
			return err
		}
		// The first administrator and the certificate exist: accept.
		aln, err := lns.admin.Listen()
		if err != nil {
			return err
		}
		adminAddr = adminURL(aln.Addr().String())
		addrs = append(addrs, "admin "+adminAddr)
		if ownAdmin {
			adminAddr += " (certificate " + f.adminCert + ")"
		} else {
			adminAddr += " (browsers trust " + filepath.Join(admintls.Dir(g.dataDir), admintls.CAFile) + ")"
		}
		inUse, err := nodeInUse(nodeCfg, flagParams(f, changed), g.db, g.dbFrom)
		if err != nil {
			return err
		}
		web := adminServices{devices: svc, certs: rev.certs, accounts: accounts, system: sys, certificate: authority.Certificate(), log: log, inUse: inUse,
			caSet:   g.serveCAAdmin(st, cfg),
			backups: &webBackups{o: g.storeOptions(store.ReadOnly), audit: st}, trustFiles: trustFiles,
			windows: func() webui.Windows {
				if w := params.Current().Windows; w != nil {
					return w
				}
				return nil
			},
			phones:  func() (string, string) { return phoneHostPort(cfg.Listen, phoneListen.Load()) },
			servers: params.CAPFServers,
		}
		hs := serveAdmin(aln, web.handler(adminhttp.Options{Gatherer: reg, Health: health}), cert, conns.limit, reg, log)
		defer hs.Close()
	}
	serveCtx := context.WithoutCancel(ctx)
	gate := newPhoneGate(cfg.Listen, func(ln net.Listener) error { return srv.Serve(serveCtx, ln) }, log)
	// A phone accepted while the service was being deactivated is told so.
	deps.Active = gate.listening
	phoneAddr := ""
	var pln net.Listener
	if lns.phones != nil {
		if pln, err = lns.phones.Listen(); err != nil {
			return err
		}
		phoneAddr = pln.Addr().String()
		addrs = append(addrs, "phones "+phoneAddr)
	} else {
		addrs = append(addrs, "phones "+cfg.Listen+" (deactivated)")
	}
	// Registered (alive again) before the first attempt of this run; the
	// once-per-fleet jobs run under their leases from now on.
	jobs := []lease.Job{sweepJob(svc, params.LongestSession, term, st, time.Now, log), rev.job(), renewalJob(st, params, metrics, log)}
	if syncTrust != nil {
		jobs = append(jobs, lease.Job{Name: leaseTrustFile, Every: trustFileCheck, Run: syncTrust})
	}
	fleet, err := joinCluster(ctx, st, cluster.Node{ID: node, Addresses: addrs, Version: buildVersion()}, term, limiter.Running, jobs, log)
	if err != nil {
		if pln != nil {
			_ = pln.Close()
		}
		return err
	}
	defer fleet.stop()
	if pln != nil {
		// The CAPF certificate, the database and the trust file are in
		// place: accept phones.
		gate.start(pln)
		phoneListen.Store(&phoneAddr)
		if err := os.WriteFile(g.dir().PhoneListen(), []byte(phoneAddr+"\n"), 0o600); err != nil {
			log.Warn("could not record the phone address for capf phone-config", "err", err)
		}
		defer os.Remove(g.dir().PhoneListen())
	}
	crlAddr := ""
	if lns.crl != nil {
		hs, addr, err := rev.serveCRL(lns.crl, log)
		if err != nil {
			return err
		}
		defer hs.Close()
		crlAddr = addr
	}
	printStartup(g, cfg, authority.Certificate(), capfSource, created, phoneAddr, metricsAddr, adminAddr, windows.String(), conns)
	if crlAddr != "" {
		fmt.Fprintf(g.stdout, "  CRL and OCSP:       %s/crl, %s/ocsp (plain HTTP)\n", crlAddr, crlAddr)
	}
	fmt.Fprint(g.stdout, firstAdmin)
	// Under systemd's Type=notify: every listener accepts now.
	notify := sdnotify.New(os.Getenv)
	if err := notify.Notify(sdnotify.Ready, "STATUS=serving"); err != nil {
		log.Warn("could not tell the service manager that serve is ready", "err", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		gate.watch(watchCtx, activationPoll, func(ctx context.Context) (bool, error) {
			a, err := sys.Activation(ctx)
			return a.Active, err
		})
	}()
	select {
	case err := <-gate.errc:
		stopWatch()
		<-watched
		gate.close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopWatch()
	<-watched
	log.Info("shutting down: draining sessions", "drain", f.drain)
	if err := notify.Notify(sdnotify.Stopping, "STATUS=draining sessions"); err != nil {
		log.Warn("could not tell the service manager that serve is stopping", "err", err)
	}
	dctx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("drain timed out; open sessions were cut", "err", err)
	}
	gate.close()
	select {
	case err := <-gate.errc:
		log.Warn("listener", "err", err)
	default:
	}
	log.Info("stopped")
	return nil
}

// phoneHostPort is the host and port phones reach the service at, for the
// phone page's configuration snippet: the listen host when it names one
// (else this machine's host name), and the port the phone listener really
// has (else the listen parameter's).
func phoneHostPort(listen string, bound *string) (host, port string) {
	host, port, _ = net.SplitHostPort(listen)
	if bound != nil {
		if h, p, err := net.SplitHostPort(*bound); err == nil {
			port = p
			if ip := net.ParseIP(h); host != "" && ip != nil && !ip.IsUnspecified() {
				host = h
			}
		}
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return host, port
}

// fleetParameters imports the fleet parameters of the node's capf.json
// into the database if no node did yet, warns when the file still sets
// some that the database's now override, and returns node with the
// database's fleet parameters in force, and their version.
func fleetParameters(ctx context.Context, sys *system.Service, node config.Config, log *slog.Logger) (config.Config, int64, error) {
	imported, err := sys.ImportFile(ctx)
	if err != nil {
		return config.Config{}, 0, err
	}
	if len(imported) > 0 {
		log.Info("imported the fleet parameters of "+config.FileName+" into the database (once); change them with capf config set", "keys", imported)
	} else if keys, err := sys.FileFleetKeys(); err == nil && len(keys) > 0 {
		log.Warn(config.FileName+" sets fleet parameters that live in the database: the file's values are ignored; change them with capf config set", "keys", keys)
	}
	return sys.Effective(ctx, node)
}

// newVerifier builds the phone authentication over the CAPF certificate
// and the manufacturer CA certificates. Its policy (sudi_verification,
// allow_expired_mic) is a fleet parameter each session passes (see
// sessionConfig), not the verifier's.
func newVerifier(roots auth.RootSource, certs []*x509.Certificate) *auth.Verifier {
	opts := auth.Options{LSCRootSource: roots, Now: time.Now}
	opts.MICBundle = certs // auth.New trusts every certificate of the bundle as a root
	return auth.New(opts)
}

// loadMICBundle reads the manufacturer CA bundle, if one is configured.
func loadMICBundle(g *globals, cfg config.Config) ([]*x509.Certificate, error) {
	p := config.Resolve(g.dataDir, cfg.ManufacturerCABundle)
	if p == "" {
		return nil, nil
	}
	certs, err := auth.LoadBundleCertificates(p)
	if err != nil {
		return nil, fmt.Errorf("manufacturer_ca_bundle: %w", err)
	}
	return certs, nil
}

func printStartup(g *globals, cfg config.Config, cert *x509.Certificate, capfSource string, created bool, addr, metricsAddr, adminAddr, windows string, conns connCap) {
	w := g.stdout
	verb := "loaded"
	if created {
		verb = "created"
	}
	sum := sha256.Sum256(cert.Raw)
	fmt.Fprintf(w, "CAPF service\n")
	fmt.Fprintf(w, "  data directory:     %s\n", g.dataDir)
	db := store.Describe(g.storeOptions(store.Create))
	if g.dbFrom != "" {
		db += " (from " + g.dbFrom + ")"
	}
	fmt.Fprintf(w, "  database:           %s\n", db)
	fmt.Fprintf(w, "  node settings:      %s (applied at start)\n", g.dir().Config())
	fmt.Fprintf(w, "  fleet parameters:   in the database (capf config show; a change applies within seconds)\n")
	fmt.Fprintf(w, "  CAPF certificate:   %s (%s)\n", capfSource, verb)
	fmt.Fprintf(w, "    subject:          %s\n", cert.Subject)
	fmt.Fprintf(w, "    SHA-256:          %X\n", sum)
	fmt.Fprintf(w, "    valid until:      %s\n", cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  trace files:        %s\n", g.dir().Trace())
	if addr != "" {
		fmt.Fprintf(w, "  listening (phones): %s (TLS profile %s)\n", addr, cfg.TLSProfile)
	} else {
		fmt.Fprintf(w, "  phones:             not listening: the service is deactivated (capf service activate opens %s)\n", cfg.Listen)
	}
	fmt.Fprintf(w, "  max connections:    %s\n", conns)
	fmt.Fprintf(w, "  maintenance windows: %s\n", windows)
	if metricsAddr != "" {
		fmt.Fprintf(w, "  metrics:            http://%s/metrics\n", metricsAddr)
	}
	if adminAddr != "" {
		fmt.Fprintf(w, "  admin:              %s\n", adminAddr)
	}
	if cfg.ManufacturerCABundle == "" {
		fmt.Fprintf(w, "  MIC authentication: off (no manufacturer_ca_bundle in %s)\n", config.FileName)
	}
	if f, ok := w.(*os.File); ok {
		_ = f.Sync()
	}
}
