package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spf13/cobra"

	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/auth"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/server"
	"github.com/capf-server/capf/internal/session"
	"github.com/capf-server/capf/internal/telemetry"
)

func init() { subcommands = append(subcommands, newServeCmd) }

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

type serveFlags struct {
	listen        string
	tlsProfile    string
	logLevel      string
	metricsListen string
	drain         time.Duration
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
	cmd.Flags().StringVar(&f.tlsProfile, "tls-profile", "", "modern or legacy (adds TLS 1.0/1.1 and RSA key exchange for 79xx phones)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.metricsListen, "metrics-listen", "", "address for Prometheus /metrics and /healthz (default from capf.json: off)")
	cmd.Flags().DurationVar(&f.drain, "drain", 30*time.Second, "on SIGTERM, how long running sessions may take to finish")
	return cmd
}

// serveConfig merges flags over the service parameters and validates them.
func serveConfig(g *globals, f serveFlags, changed func(string) bool) (config.Config, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return cfg, err
	}
	if changed("listen") {
		cfg.Listen = f.listen
	}
	if changed("tls-profile") {
		cfg.TLSProfile = f.tlsProfile
	}
	if changed("log-level") {
		cfg.LogLevel = f.logLevel
	}
	if changed("metrics-listen") {
		cfg.MetricsListen = f.metricsListen
	}
	return cfg, cfg.Validate()
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

func runServe(ctx context.Context, g *globals, f serveFlags, changed func(string) bool) error {
	if err := g.ensureDataDir(); err != nil {
		return err
	}
	cfg, err := serveConfig(g, f, changed)
	if err != nil {
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
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	authority, created, err := ca.LoadOrCreate(g.caOptions(cfg))
	if err != nil {
		return fmt.Errorf("CAPF certificate: %w", err)
	}
	verifier, err := newVerifier(g, cfg, authority)
	if err != nil {
		return err
	}
	// This process has just started: every attempt still open in the
	// embedded database was cut off by a crash or kill. Fail them, so no
	// device stays "in progress"; the phones' retries complete them.
	if n, err := st.FailStaleAttempts(ctx, time.Now(), device.ReasonServerRestart); err != nil {
		return fmt.Errorf("close stale sessions: %w", err)
	} else if n > 0 {
		log.Warn("marked sessions cut off by a restart as failed", "count", n)
	}
	windows, err := cfg.Windows()
	if err != nil {
		return err
	}
	tlsCfg, err := server.TLSConfig(cfg.TLSProfile, authority.TLSCertificate())
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := telemetry.New(reg)
	limiter := session.NewLimiter(cfg.MaxConcurrentOps)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for phones: %w", err)
	}
	srv := server.New(server.Options{
		TLS:                tlsCfg,
		HandshakeTimeout:   time.Duration(cfg.HandshakeTimeout),
		MaxConnsPerAddress: cfg.MaxConnsPerAddress,
		MaxConns:           conns.max,
		Observer:           metrics,
		Logger:             log,
		Deps: &session.Deps{
			Store:    metrics.InstrumentStore(st),
			Issuer:   authority,
			Auth:     verifier,
			Tracer:   server.TraceDir{Dir: g.path(traceDir)},
			Locks:    session.NewDeviceLocks(),
			Limiter:  limiter,
			Windows:  windows,
			Observer: metrics,
			Now:      time.Now,
			Logger:   log,
			Config: session.Config{
				KeyGenMaxTime:     time.Duration(cfg.KeyGenerationMaxTime),
				KeyGenMaxAttempts: cfg.KeyGenerationMaxTries,
				MessageTimeout:    time.Duration(cfg.MessageTimeout),
				DefaultKey:        device.KeySpec(cfg.DefaultKey),
				RetryDelay:        time.Duration(cfg.RetryDelay),
			},
		},
	})
	var metricsAddr string
	if cfg.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for metrics: %w", err)
		}
		metricsAddr = mln.Addr().String()
		// Its own listener with a few connections of its own, out of the
		// descriptors the phone cap leaves: it answers while phones flood.
		hs := adminhttp.NewServer(adminhttp.Handler(adminhttp.Options{Gatherer: reg, Health: func(ctx context.Context) error {
			_, err := st.ListDevices(ctx, device.Query{Limit: 1})
			return err
		}}))
		go func() { _ = hs.Serve(adminhttp.LimitListener(mln, adminhttp.MaxConns)) }()
		defer hs.Close()
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go sweepStale(sweepCtx, st, cfg, log)
	printStartup(g, cfg, authority.Certificate(), created, ln.Addr().String(), metricsAddr, windows.String(), conns)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.WithoutCancel(ctx), ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining sessions", "drain", f.drain)
	dctx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("drain timed out; open sessions were cut", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, server.ErrServerClosed) {
		log.Warn("listener", "err", err)
	}
	log.Info("stopped")
	return nil
}

func newVerifier(g *globals, cfg config.Config, a *ca.Authority) (*auth.Verifier, error) {
	opts := auth.Options{LSCRoots: a.Roots(), AllowExpiredMIC: cfg.AllowExpiredMIC, Now: time.Now}
	certs, err := loadMICBundle(g, cfg)
	if err != nil {
		return nil, err
	}
	if len(certs) > 0 {
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		opts.MICRoots, opts.MICBundle = pool, certs
	}
	return auth.New(opts), nil
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

// sweepStale fails, every minute, attempts open longer than any session can
// last, so a node that died in a cluster leaves no device in progress.
func sweepStale(ctx context.Context, st device.Store, cfg config.Config, log *slog.Logger) {
	longest := time.Duration(cfg.KeyGenerationMaxTime) + 3*time.Duration(cfg.MessageTimeout) + time.Duration(cfg.HandshakeTimeout)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := st.FailStaleAttempts(ctx, now.Add(-longest), device.ReasonCommFailure); err != nil {
				log.Warn("sweep stale sessions", "err", err)
			} else if n > 0 {
				log.Warn("failed sessions open longer than any session can last", "count", n)
			}
		}
	}
}

func printStartup(g *globals, cfg config.Config, cert *x509.Certificate, created bool, addr, metricsAddr, windows string, conns connCap) {
	w := g.stdout
	verb := "loaded"
	if created {
		verb = "created"
	}
	sum := sha256.Sum256(cert.Raw)
	fmt.Fprintf(w, "CAPF service\n")
	fmt.Fprintf(w, "  data directory:     %s\n", g.dataDir)
	fmt.Fprintf(w, "  database:           %s\n", g.path(dbFile))
	fmt.Fprintf(w, "  service parameters: %s\n", g.path(config.FileName))
	fmt.Fprintf(w, "  CAPF certificate:   %s (%s)\n", g.path(caDir, "capf.pem"), verb)
	fmt.Fprintf(w, "    subject:          %s\n", cert.Subject)
	fmt.Fprintf(w, "    SHA-256:          %X\n", sum)
	fmt.Fprintf(w, "    valid until:      %s\n", cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  trace files:        %s\n", g.path(traceDir))
	fmt.Fprintf(w, "  listening (phones): %s (TLS profile %s)\n", addr, cfg.TLSProfile)
	fmt.Fprintf(w, "  max connections:    %s\n", conns)
	fmt.Fprintf(w, "  maintenance windows: %s\n", windows)
	if metricsAddr != "" {
		fmt.Fprintf(w, "  metrics:            http://%s/metrics\n", metricsAddr)
	}
	if cfg.ManufacturerCABundle == "" {
		fmt.Fprintf(w, "  MIC authentication: off (no manufacturer_ca_bundle in %s)\n", config.FileName)
	}
	if f, ok := w.(*os.File); ok {
		_ = f.Sync()
	}
}
