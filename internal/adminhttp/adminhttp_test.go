package adminhttp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "capf_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	var healthErr error
	srv := httptest.NewServer(Handler(Options{Gatherer: reg, Health: func(context.Context) error { return healthErr }}))
	defer srv.Close()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "capf_test_total 1") {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	healthErr = errors.New("database closed")
	if code, body := get("/healthz"); code != 503 || strings.Contains(body, "database closed") || !strings.Contains(body, "internal error") {
		t.Fatalf("/healthz unhealthy: %d %q, want 503 without the internal detail", code, body)
	}
	if code, _ := get("/nope"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
}

func TestHandlerComposesAPIAndUI(t *testing.T) {
	named := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+" "+r.URL.Path) })
	}
	// Auth refuses requests without a header, so a test sees which paths
	// it guards.
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Test-Auth") == "" {
				http.Error(w, "auth", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := prometheus.NewRegistry()
	tests := []struct {
		name     string
		opts     Options
		path     string
		authed   bool
		wantCode int
		wantBody string
	}{
		{"metrics-not-served-without-its-auth", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/metrics", true, 404, ""},
		{"metrics-behind-its-auth", Options{API: named("api"), UI: named("ui"), Auth: auth, MetricsAuth: auth}, "/metrics", false, 401, ""},
		{"metrics-authed", Options{API: named("api"), UI: named("ui"), Auth: auth, MetricsAuth: auth}, "/metrics", true, 200, ""},
		{"metrics-api-only", Options{API: named("api"), MetricsAuth: auth}, "/metrics", false, 401, ""},
		{"healthz-outside-auth", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/healthz", false, 200, "ok\n"},
		{"api-behind-auth", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/api/v1/devices", false, 401, ""},
		{"api", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/api/v1/devices", true, 200, "api /api/v1/devices"},
		{"ui-root", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/", true, 200, "ui /"},
		{"ui-page", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/phones/SEP001122334455", true, 200, "ui /phones/SEP001122334455"},
		{"ui-behind-auth", Options{API: named("api"), UI: named("ui"), Auth: auth}, "/login", false, 401, ""},
		{"no-auth", Options{API: named("api"), UI: named("ui")}, "/audit", false, 200, "ui /audit"},
		{"no-ui", Options{API: named("api")}, "/phones", false, 404, ""},
		{"no-api", Options{UI: named("ui")}, "/api/v1/devices", false, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Gatherer = reg
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.authed {
				req.Header.Set("X-Test-Auth", "yes")
			}
			Handler(tt.opts).ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || (tt.wantBody != "" && rec.Body.String() != tt.wantBody) {
				t.Fatalf("GET %s = %d %q, want %d %q", tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

// TestMonitorHeaders: /metrics and /healthz carry the security headers on
// both listeners (HSTS over TLS), whatever the answer.
func TestMonitorHeaders(t *testing.T) {
	reg := prometheus.NewRegistry()
	open := func(next http.Handler) http.Handler { return next }
	refuse := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusUnauthorized) })
	}
	ui := http.NotFoundHandler()
	for _, c := range []struct {
		name string
		o    Options
		path string
		tls  bool
		want int
	}{
		{"metrics-listener/metrics", Options{}, "/metrics", false, 200},
		{"metrics-listener/healthz", Options{}, "/healthz", false, 200},
		{"admin/healthz", Options{UI: ui, Auth: open, MetricsAuth: refuse}, "/healthz", true, 200},
		{"admin/metrics-refused", Options{UI: ui, Auth: open, MetricsAuth: refuse}, "/metrics", true, 401},
		{"admin/metrics", Options{UI: ui, Auth: open, MetricsAuth: open}, "/metrics", true, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Gatherer = reg
			r := httptest.NewRequest(http.MethodGet, c.path, nil)
			if c.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			Handler(c.o).ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
			want := map[string]string{
				"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
				"Referrer-Policy":         "no-referrer",
				"Cache-Control":           "no-store",
			}
			if c.tls {
				want["Strict-Transport-Security"] = "max-age=31536000"
			}
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}
