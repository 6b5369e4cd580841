// Package adminhttp is the administrative HTTP listener. For now it serves
// Prometheus metrics on /metrics and a health check on /healthz; the REST
// API and the web UI will mount here too.
package adminhttp

import (
	"context"
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
	return mux
}
