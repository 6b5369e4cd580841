package webui_test

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webui"
)

// lockedBuffer is a log sink safe for the handler's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPagesSayTheRuleOnce: for rule violations of a device change, an
// import row and a parameter change, the page shows the rule's own
// message once, without the chain of context ("change device X: update
// device …", "change the fleet parameters: …"); the log line of the edge
// that mapped it holds the chain.
func TestPagesSayTheRuleOnce(t *testing.T) {
	logs := &lockedBuffer{}
	e := newEnv(t, func(o *webui.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	const phone = "SEP000000000001"
	e.add(device.Device{Name: phone, SecurityProfile: device.NonSecure, AuthMode: device.AuthString, AuthString: "12345"})
	d, err := e.devices.Get(t.Context(), phone)
	if err != nil {
		t.Fatal(err)
	}
	change := phoneForm(d)
	change.Set("security_profile", "authenticated")

	importBody := func() (string, io.Reader, int64) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf", principals["admin"].CSRF)
		fw, _ := mw.CreateFormFile("file", "phones.csv")
		_, _ = io.WriteString(fw, "Device Name,Authentication String\n"+phone+",12ab\n")
		_ = mw.WriteField("import", "1")
		_ = mw.Close()
		return mw.FormDataContentType(), bytes.NewReader(buf.Bytes()), int64(buf.Len())
	}
	params := url.Values{"certificate_validity_days": {"9999"}, "listen": {":3804"}, "require_sudi": {"false"}, "session_timeout": {"2m"}, "trusted_issuers": {"a\r\nb"}}

	tests := []struct {
		name  string
		send  func() *httptest.ResponseRecorder
		rule  string // as the page shows it (HTML-escaped)
		chain string // in the log line, "" when there is none
	}{
		{"device-change", func() *httptest.ResponseRecorder { return e.post("/phones/"+phone, "admin", change) },
			"device " + phone + ": a phone in authenticated security mode never contacts CAPF before it registers, so it cannot use By Authentication String",
			"change device " + phone},
		{"import-row", func() *httptest.ResponseRecorder {
			ct, body, n := importBody()
			return sendAs(e.stack(), "admin", http.MethodPost, "/import", ct, body, n)
		}, "authentication string &#34;12ab&#34;: must be 4 to 10 digits", ""},
		{"parameter", func() *httptest.ResponseRecorder { return e.post("/system/parameters", "admin", params) },
			"certificate_validity_days 9999 is above the maximum 3650", "change the fleet parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.send()
			wantStatus(t, w, http.StatusUnprocessableEntity)
			body := w.Body.String()
			if n := strings.Count(body, tt.rule); n != 1 {
				t.Errorf("the page says the rule %d times, want once: %q\n%.3000s", n, tt.rule, body)
			}
			for _, chain := range []string{"change device", "update device", "change the fleet"} {
				if strings.Contains(body, chain) {
					t.Errorf("the page holds the chain %q", chain)
				}
			}
			if tt.chain != "" && (!strings.Contains(logs.String(), "refused") || !strings.Contains(logs.String(), tt.chain)) {
				t.Errorf("no log line with the chain %q: %s", tt.chain, logs)
			}
		})
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("a refusal went to the error log: %s", logs)
	}
}
