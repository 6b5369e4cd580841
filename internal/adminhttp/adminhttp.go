// Package adminhttp is the administrative HTTP listener: Prometheus
// metrics on /metrics and a health check on /healthz, unauthenticated, and,
// on the HTTPS admin listener, the REST API under /api/ and the web UI on
// every other path, behind the authentication middleware. Guard keeps the
// HTTPS listener's connections bounded so that a flood cannot lock the
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
	// nil: none. /metrics and /healthz stay outside it.
	Auth func(http.Handler) http.Handler
}

// Handler returns the admin HTTP handler.
func Handler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
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
	})
	if o.API == nil && o.UI == nil {
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
