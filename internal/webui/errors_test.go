package webui_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/system"
	"github.com/capf-server/capf/internal/webui"
)

// brokenSystem fails every call with a plain error, as a database driver
// or a file system would: no fault kind, and text the client must not see.
type brokenSystem struct{ err error }

func (b brokenSystem) Parameters(context.Context) ([]system.Parameter, error) { return nil, b.err }
func (b brokenSystem) UpdateParameters(context.Context, device.Actor, map[string]any) ([]system.Parameter, error) {
	return nil, b.err
}
func (b brokenSystem) Activation(context.Context) (system.Activation, error) {
	return system.Activation{}, b.err
}
func (b brokenSystem) SetActive(context.Context, device.Actor, bool) (system.Activation, error) {
	return system.Activation{}, b.err
}

// TestPlainErrorShowsGenericMessage: a service error without a fault kind
// is an internal error: the page (and a form's message) says so in
// general terms, with status 500, and its text goes only to the log.
func TestPlainErrorShowsGenericMessage(t *testing.T) {
	const secretText = "open /var/lib/capf/capf.db: database is locked by pid 4242"
	var logs bytes.Buffer
	e := newEnv(t, func(o *webui.Options) {
		o.System = brokenSystem{err: fmt.Errorf("load parameters: %w", errors.New(secretText))}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	for _, c := range []struct {
		name string
		do   func() *http.Response
	}{
		{"page", func() *http.Response { return e.get("/system/parameters", "admin").Result() }},
		{"activation", func() *http.Response { return e.get("/serviceability/activation", "viewer").Result() }},
		{"form", func() *http.Response {
			return e.post("/serviceability/activation", "admin", url.Values{"action": {"deactivate"}}).Result()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			res := c.do()
			var body bytes.Buffer
			_, _ = body.ReadFrom(res.Body)
			if res.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", res.StatusCode)
			}
			if bytes.Contains(body.Bytes(), []byte("capf.db")) || bytes.Contains(body.Bytes(), []byte("pid 4242")) {
				t.Errorf("the page shows the internal error:\n%s", body.String())
			}
			if !bytes.Contains(body.Bytes(), []byte("internal error")) {
				t.Errorf("the page lacks the generic message:\n%s", body.String())
			}
			if !bytes.Contains(logs.Bytes(), []byte("pid 4242")) {
				t.Errorf("the log lacks the internal error: %s", logs.String())
			}
		})
	}
}
