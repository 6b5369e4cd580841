package webui_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/webui"
)

// fakeBackups hands out a fixed archive, or err, and remembers who asked
// and whether the body was closed.
type fakeBackups struct {
	err    error
	actors []device.Actor
	closed bool
}

func (f *fakeBackups) Backup(_ context.Context, actor device.Actor) (string, int64, io.ReadCloser, error) {
	if f.err != nil {
		return "", 0, nil, f.err
	}
	f.actors = append(f.actors, actor)
	body := "ARCHIVE"
	return "capf-backup-20261203.tar.gz", int64(len(body)), closer{strings.NewReader(body), &f.closed}, nil
}

type closer struct {
	io.Reader
	closed *bool
}

func (c closer) Close() error { *c.closed = true; return nil }

// TestBackupDownload: an administrator downloads the archive with a POST
// carrying the anti-forgery token, as an attachment the browser does not
// cache; a viewer sees the page without the button and is refused the
// download; the service's refusal (an audit event that cannot be
// written) is an error page, not an archive; no service, no page.
func TestBackupDownload(t *testing.T) {
	fb := &fakeBackups{}
	e := newEnv(t, func(o *webui.Options) { o.Backups = fb })

	page := e.get("/serviceability/backup", "admin")
	wantStatus(t, page, http.StatusOK)
	if b := page.Body.String(); !strings.Contains(b, `id="backup-download"`) || !strings.Contains(b, "private key") {
		t.Errorf("the admin's page has no download button or no warning:\n%s", b)
	}
	w := e.post("/serviceability/backup", "admin", nil)
	wantStatus(t, w, http.StatusOK)
	if got := w.Body.String(); got != "ARCHIVE" {
		t.Errorf("body %q", got)
	}
	if cd := w.Header().Get("Content-Disposition"); cd != `attachment; filename="capf-backup-20261203.tar.gz"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Length") != "7" {
		t.Errorf("headers %v", w.Header())
	}
	if len(fb.actors) != 1 || fb.actors[0].Name != "alice" || !fb.closed {
		t.Errorf("backups asked by %v, closed %v; want alice once, closed", fb.actors, fb.closed)
	}

	viewer := e.get("/serviceability/backup", "viewer")
	wantStatus(t, viewer, http.StatusOK)
	if strings.Contains(viewer.Body.String(), `id="backup-download"`) {
		t.Errorf("a viewer is offered the download")
	}
	wantStatus(t, e.post("/serviceability/backup", "viewer", nil), http.StatusForbidden)
	if len(fb.actors) != 1 {
		t.Errorf("a viewer's request reached the backup service")
	}
	noToken := e.do(http.MethodPost, "/serviceability/backup", "admin", nil)
	if noToken.Code == http.StatusOK {
		t.Errorf("a download without the anti-forgery token succeeded")
	}

	fb.err = fault.New(fault.Unavailable, "audit the backup download: database is locked")
	refused := e.post("/serviceability/backup", "admin", nil)
	if refused.Code == http.StatusOK || strings.Contains(refused.Body.String(), "ARCHIVE") {
		t.Errorf("a backup whose audit failed was sent: %d", refused.Code)
	}

	none := newEnv(t)
	wantStatus(t, none.get("/serviceability/backup", "admin"), http.StatusServiceUnavailable)
}
