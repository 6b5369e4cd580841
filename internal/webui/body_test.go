package webui_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/webauth"
	"github.com/capf-server/capf/internal/webui"
)

// testSessions are the sessions of principals, for the real middleware.
type testSessions struct{}

func (testSessions) Session(_ context.Context, id string) (account.Session, error) {
	for _, p := range principals {
		if p.SessionID == id {
			return account.Session{ID: id, Account: p.Name, Role: p.Role, CSRF: p.CSRF, ExpiresAt: testNow.Add(time.Hour)}, nil
		}
	}
	return account.Session{}, fault.New(fault.Unauthorized, "unknown session")
}

func (testSessions) Authenticate(context.Context, string) (account.Token, error) {
	return account.Token{}, fault.New(fault.Unauthorized, "unknown API token")
}

// stack is the UI behind the real middleware, composed as serve does:
// bodies bounded first, then authentication and the CSRF check.
func (e *env) stack() http.Handler {
	ui := webui.New(webui.Options{Devices: e.devices, Accounts: e.accounts, System: e.system, Campaigns: e.campaigns})
	return webauth.LimitBodies(webui.BodyLimit)(webauth.Middleware(testSessions{}, slog.New(slog.DiscardHandler))(ui))
}

// countingBody is a request body of n bytes (head, then filler, then
// tail), made as it is read, that counts what was read.
type countingBody struct {
	r    io.Reader
	read atomic.Int64
}

func newCountingBody(head string, filler int64, tail string) *countingBody {
	return &countingBody{r: io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, filler), strings.NewReader(tail))}
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// upload is a multipart form with the fields before (in order) a file of
// size bytes called name, and the fields after it.
func upload(before [][2]string, size int64, after [][2]string) (contentType string, body *countingBody) {
	var head, tail bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range before {
		_ = mw.WriteField(f[0], f[1])
	}
	_, _ = mw.CreateFormFile("file", "phones.csv")
	tw := multipart.NewWriter(&tail)
	_ = tw.SetBoundary(mw.Boundary())
	// The tail writer's first part starts with its boundary line, which
	// also ends the file.
	for _, f := range after {
		_ = tw.WriteField(f[0], f[1])
	}
	_ = tw.Close()
	t := tail.String()
	if len(after) == 0 {
		t = "\r\n--" + mw.Boundary() + "--\r\n"
	} else {
		t = "\r\n" + t
	}
	return mw.FormDataContentType(), newCountingBody(head.String(), size, t)
}

func sendAs(h http.Handler, as, method, target, contentType string, body io.Reader, length int64, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	r.ContentLength = length
	r.Header.Set("Content-Type", contentType)
	if p, ok := principals[as]; ok {
		r.AddCookie(&http.Cookie{Name: webauth.CookieName, Value: p.SessionID})
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestViewerUploadRefusedUnread: a viewer's 200 MB multipart upload is
// refused (403) having read at most the middleware's token scan of it, not
// the whole body (nor spooled it to disk) as before; so is a forged
// one whose token is not within the scan. An upload that says its size is
// over the route's limit is refused (413) with nothing read.
func TestViewerUploadRefusedUnread(t *testing.T) {
	e := newEnv(t)
	h := e.stack()
	const size = 200 << 20
	const most = webauth.MaxTokenScan + 64<<10 // the scan and the readers' buffers
	viewer := principals["viewer"]
	for _, c := range []struct {
		name          string
		as            string
		before, after [][2]string
		length        int64 // -1: chunked
		header        []string
		want          int
	}{
		{name: "viewer-token-first", as: "viewer", before: [][2]string{{"csrf", viewer.CSRF}}, length: -1, want: http.StatusForbidden},
		{name: "viewer-token-last", as: "viewer", after: [][2]string{{"csrf", viewer.CSRF}}, length: -1, want: http.StatusForbidden},
		{name: "viewer-token-in-header", as: "viewer", length: -1, header: []string{webauth.CSRFHeader, viewer.CSRF}, want: http.StatusForbidden},
		{name: "viewer-no-token", as: "viewer", length: -1, want: http.StatusForbidden},
		{name: "anonymous", as: "", before: [][2]string{{"csrf", "x"}}, length: -1, want: http.StatusSeeOther},
		{name: "declared-too-large", as: "viewer", before: [][2]string{{"csrf", viewer.CSRF}}, length: size + 200, want: http.StatusRequestEntityTooLarge},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct, body := upload(c.before, size, c.after)
			w := sendAs(h, c.as, http.MethodPost, "/import", ct, body, c.length, c.header...)
			if w.Code != c.want {
				t.Errorf("status %d, want %d; body %.300s", w.Code, c.want, w.Body)
			}
			if n := body.read.Load(); n > most {
				t.Errorf("read %d bytes of the %d MB upload before refusing it; want at most %d", n, size>>20, most)
			}
		})
	}
}

// TestBodiesBounded: the admin's own forms and imports still go through
// the scan (the token first, the body replayed whole to the handler); a
// form over the limit is 413, whether it says its size or not.
func TestBodiesBounded(t *testing.T) {
	e := newEnv(t)
	h := e.stack()
	admin := principals["admin"]

	// An import with the token first, as the page sends it: imported.
	csv := "Device Name,Description\nSEP0000000000A1,lobby\nSEP0000000000A2," + strings.Repeat("d", 100) + "\n"
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf", admin.CSRF)
	fw, _ := mw.CreateFormFile("file", "phones.csv")
	_, _ = io.WriteString(fw, csv)
	_ = mw.WriteField("import", "1")
	_ = mw.Close()
	w := sendAs(h, "admin", http.MethodPost, "/import", mw.FormDataContentType(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="import-created">2<`) {
		t.Fatalf("admin import: status %d; body %.2000s", w.Code, w.Body)
	}

	// A form whose token is past a long field: within the scan it is found
	// and the handler reads the whole form again.
	form := url.Values{"description": {strings.Repeat("a", 40<<10)}, "name": {"SEP0000000000B1"}, "csrf": {admin.CSRF}}.Encode()
	w = sendAs(h, "admin", http.MethodPost, "/phones/new", "application/x-www-form-urlencoded", strings.NewReader(form), int64(len(form)))
	if w.Code == http.StatusForbidden || w.Code == http.StatusRequestEntityTooLarge {
		t.Fatalf("a 40 KiB form with its token: status %d; body %.500s", w.Code, w.Body)
	}

	big := url.Values{"csrf": {admin.CSRF}, "description": {strings.Repeat("a", 300<<10)}}.Encode()
	for _, length := range []int64{int64(len(big)), -1} {
		t.Run(fmt.Sprintf("oversized-form/length=%d", length), func(t *testing.T) {
			body := newCountingBody(big, 0, "")
			w := sendAs(h, "admin", http.MethodPost, "/phones/new", "application/x-www-form-urlencoded", body, length)
			if w.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413; body %.300s", w.Code, w.Body)
			}
			if n := body.read.Load(); n > 256<<10+64<<10 {
				t.Errorf("read %d bytes of a %d-byte form", n, len(big))
			}
		})
	}
}
