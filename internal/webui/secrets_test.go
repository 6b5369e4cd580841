package webui_test

import (
	"net/http"
	"testing"

	"github.com/capf-server/capf/internal/device"
)

// TestViewerSeesNoStrings: a viewer's pages and report never show an
// authentication string, and a search by string is refused for them.
func TestViewerSeesNoStrings(t *testing.T) {
	e := newEnv(t)
	const secret = "73519046"
	e.add(device.Device{Name: "SEP000000000001", AuthMode: device.AuthString, AuthString: secret, Operation: device.OpInstall})
	for _, target := range []string{"/phones", "/phones/SEP000000000001", "/report.csv", "/"} {
		w := e.get(target, "viewer")
		wantStatus(t, w, http.StatusOK)
		wantNoBody(t, w, secret)
	}
	wantBody(t, e.get("/phones/SEP000000000001", "admin"), secret)
	wantStatus(t, e.get("/phones?where=auth-string:begins-with:7", "viewer"), http.StatusForbidden)
	wantStatus(t, e.get("/report.csv?where=auth-string:begins-with:7", "viewer"), http.StatusForbidden)
}
