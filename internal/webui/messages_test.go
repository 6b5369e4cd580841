package webui_test

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/sqlite"
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
// import row, a parameter change and an account change, the page shows the rule's own
// message once, without the chain of context ("change device X: update
// device …", "change the fleet parameters: …", "set role of alice: …");
// the log line of the edge
// that mapped it holds the chain.
func TestPagesSayTheRuleOnce(t *testing.T) {
	logs := &lockedBuffer{}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "accounts.db"), sqlite.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	accounts := account.NewService(account.Options{Store: st, Now: func() time.Time { return testNow },
		Password: account.PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}})
	if _, err := accounts.AddAccount(t.Context(), device.CLIActor("test"), "alice", account.RoleAdmin, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *webui.Options) {
		o.Logger, o.AccountAdmin = slog.New(slog.NewTextHandler(logs, nil)), accounts
	})
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
		{"account-change", func() *httptest.ResponseRecorder {
			return e.post("/system/accounts/alice/role", "admin", url.Values{"role": {"viewer"}})
		}, "account &#34;alice&#34; is the last admin: give another account the admin role first", "set role of alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.send()
			if w.Code != http.StatusUnprocessableEntity && w.Code != http.StatusConflict {
				t.Errorf("status %d, want a refusal (422 or 409)", w.Code)
			}
			body := w.Body.String()
			if n := strings.Count(body, tt.rule); n != 1 {
				t.Errorf("the page says the rule %d times, want once: %q\n%.3000s", n, tt.rule, body)
			}
			for _, chain := range []string{"change device", "update device", "change the fleet", "set role of"} {
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
