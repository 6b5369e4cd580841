package adminhttp

import (
	"context"
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
