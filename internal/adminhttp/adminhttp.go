// Package adminhttp is the administrative HTTP listener: Prometheus
// metrics on /metrics and a health check on /healthz and, on the HTTPS
// admin listener, the REST API under /api/ and the web UI on every other
// path, behind the authentication middleware. /healthz is open on both
// listeners (process managers and load balancers ask it); /metrics is open
// only on the metrics listener, which operators keep to their monitoring
// network, and needs a token or a session on the admin listener. Guard keeps
// the HTTPS listener's connections bounded so that a flood cannot lock the
// administrator out.
package adminhttp

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capf-server/capf/internal/fault"
)

// Options configures the handler.
type Options struct {
	Gatherer prometheus.Gatherer
	// Health reports whether the service can serve phones; nil means
	// always healthy.
	Health func(ctx context.Context) error
	// API serves /api/ (the REST API); nil: 404.
	API http.Handler
	// UI serves every other path (the web UI); nil: 404.
	UI http.Handler
	// Auth wraps API and UI (webauth's security headers and middleware);
	// nil: none. /healthz stays outside it.
	Auth func(http.Handler) http.Handler
	// MetricsAuth wraps /metrics on the admin listener (the one with an
	// API or a UI): webauth's middleware and a principal required. Nil
	// there: /metrics is not served. The metrics listener (no API, no UI)
	// serves /metrics without it.
	MetricsAuth func(http.Handler) http.Handler
}

// Handler returns the admin HTTP handler.
func Handler(o Options) http.Handler {
	admin := o.API != nil || o.UI != nil
	var metrics http.Handler = promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
	if admin {
		metrics = http.NotFoundHandler()
		if o.MetricsAuth != nil {
			metrics = o.MetricsAuth(promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", monitorHeaders(metrics))
	mux.Handle("GET /healthz", monitorHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Health != nil {
			if err := o.Health(r.Context()); err != nil {
				// The cause goes to the operator's log, not to whoever
				// asks: an internal error shows as such.
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "unhealthy: %s\n", fault.ProblemOf(err).Detail)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})))
	if !admin {
		return mux // the metrics listener: everything else is 404
	}
	app := http.NewServeMux()
	app.Handle("/api/", orNotFound(o.API))
	app.Handle("/", orNotFound(o.UI))
	var h http.Handler = app
	if o.Auth != nil {
		h = o.Auth(h)
	}
	mux.Handle("/", h)
	return mux
}

// monitorHeaders sets, on /metrics and /healthz, the security headers
// that fit a plain-text answer no browser should render, frame, cache or
// sniff: no content may load (CSP default-src 'none'), no framing, no
// referrer, nosniff, no-store, and HSTS over TLS.
func monitorHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func orNotFound(h http.Handler) http.Handler {
	if h == nil {
		return http.NotFoundHandler()
	}
	return h
}

// NewTLSServer is NewServer serving HTTPS with cert (TLS 1.2 or later).
func NewTLSServer(h http.Handler, cert tls.Certificate) *http.Server {
	s := NewServer(h)
	s.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	return s
}
