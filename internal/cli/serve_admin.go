package cli

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capf-server/capf/internal/adminhttp"
	"github.com/capf-server/capf/internal/admintls"
	"github.com/capf-server/capf/internal/config"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/fdlimit"
)

// checkAdminListen refuses an admin listener on the port of the phone or
// the metrics listener.
func checkAdminListen(cfg config.Config) []string {
	if cfg.AdminListen == "" {
		return nil
	}
	var problems []string
	if sameListener(cfg.Listen, cfg.AdminListen) {
		problems = append(problems, fmt.Sprintf("admin_listen %q: the CAPF protocol listens there (listen %q)", cfg.AdminListen, cfg.Listen))
	}
	if cfg.MetricsListen != "" && sameListener(cfg.MetricsListen, cfg.AdminListen) {
		problems = append(problems, fmt.Sprintf("admin_listen %q: the metrics listener is there (metrics_listen %q)", cfg.AdminListen, cfg.MetricsListen))
	}
	return problems
}

// adminFiles loads the administrator's certificate and key of --admin-cert
// and --admin-key, before serve binds or writes anything; ok is false when
// neither flag is given (the admin CA of the data directory is used).
func adminFiles(f serveFlags, now time.Time) (res admintls.Result, ok bool, err error) {
	if f.adminCert == "" && f.adminKey == "" {
		return admintls.Result{}, false, nil
	}
	if f.adminCert == "" || f.adminKey == "" {
		return admintls.Result{}, false, fault.Invalidf("--admin-cert and --admin-key go together: give both, or neither for a certificate from the admin CA in %s/", admintls.DirName)
	}
	res, err = admintls.LoadFiles(f.adminCert, f.adminKey, now)
	return res, err == nil, err
}

// adminCertificate returns the admin listener's certificate: the given
// files' (own is true), or one from the admin CA of the data directory for
// the host's names and admin_listen's host.
func adminCertificate(g *globals, cfg config.Config, given admintls.Result, own bool, log *slog.Logger) (admintls.Result, error) {
	if own {
		return given, nil
	}
	var hosts []string
	if host, _, err := net.SplitHostPort(cfg.AdminListen); err == nil && host != "" {
		hosts = append(hosts, host)
	}
	dir := admintls.Dir(g.dataDir)
	if g.cluster != nil && g.cluster.adminCA != nil {
		return clusterAdminCertificate(dir, g.cluster, hosts, log)
	}
	res, err := admintls.LoadOrCreate(dir, hosts, time.Now())
	if err != nil {
		return admintls.Result{}, fmt.Errorf("admin TLS certificate: %w", err)
	}
	switch {
	case res.CAReplaced != "":
		log.Warn("replaced the admin CA: trust the new one in the administrators' browsers and remove the old one",
			"why", res.CAReplaced, "file", dir+"/"+admintls.CAFile, "permitted_dns", res.CA.PermittedDNSDomains, "permitted_ip", res.CA.PermittedIPRanges)
	case res.CACreated:
		log.Info("created the admin CA; trust it in the administrators' browsers", "file", dir+"/"+admintls.CAFile,
			"permitted_dns", res.CA.PermittedDNSDomains, "permitted_ip", res.CA.PermittedIPRanges)
	}
	if res.Issued {
		leaf := res.Certificate.Leaf
		log.Info("issued the admin listener's certificate", "dns", leaf.DNSNames, "ip", leaf.IPAddresses, "valid_until", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return res, nil
}

// serveAdmin serves h over HTTPS on ln with cert, behind adminhttp.Guard
// with a total cap of adminConnCap(limit) and its metrics in reg; close
// the returned server to stop.
func serveAdmin(ln net.Listener, h http.Handler, res admintls.Result, limit uint64, reg prometheus.Registerer, log *slog.Logger) *http.Server {
	hs := adminhttp.NewTLSServer(h, res.Certificate)
	hs.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug) // TLS handshake noise from scanners
	lim := adminhttp.Limits{MaxConns: adminConnCap(limit), Logger: log, Registerer: reg}
	gln, _ := adminhttp.Guard(hs, ln, lim)
	log.Info("admin listener limits", "max_connections", lim.MaxConns, "per_address", adminhttp.MaxConnsPerAddress,
		"first_request_timeout", adminhttp.FirstRequestTimeout)
	go func() { _ = hs.ServeTLS(gln, "", "") }()
	return hs
}

// adminConnCap is the HTTPS admin listener's total connection cap for the
// descriptor limit: the ReservePercent share of the limit that fdlimit
// keeps back from the phones for the listeners, between
// adminhttp.MinTLSConns and adminhttp.MaxTLSConns (the most when the
// limit is unknown).
func adminConnCap(limit uint64) int {
	if limit == 0 {
		return adminhttp.MaxTLSConns
	}
	n := limit * fdlimit.ReservePercent / 100
	return int(min(max(n, adminhttp.MinTLSConns), adminhttp.MaxTLSConns))
}

// adminURL is how printStartup names the admin listener: https://HOST:PORT/
// with the host a browser can use.
func adminURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "https://" + addr + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return "https://" + net.JoinHostPort(host, port) + "/"
}
