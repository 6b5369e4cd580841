package webauth

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestFormTokenScan: the middleware finds a form's token within the scan
// and hands the handler the whole body, byte for byte; a token past the
// scan is not found (403) and the body beyond it is never read.
func TestFormTokenScan(t *testing.T) {
	multipartBody := func(fields ...string) (string, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "file" {
				fw, _ := mw.CreateFormFile("file", "a.csv")
				io.WriteString(fw, fields[i+1])
				continue
			}
			mw.WriteField(fields[i], fields[i+1])
		}
		mw.Close()
		return mw.FormDataContentType(), b.String()
	}
	long := strings.Repeat("z", MaxTokenScan)
	mpFirstCT, mpFirst := multipartBody(CSRFField, goodCSRF, "file", long+long)
	mpLastCT, mpLast := multipartBody("file", long, CSRFField, goodCSRF)
	mpNoneCT, mpNone := multipartBody("file", "Device Name\nSEP1\n")
	const form = "application/x-www-form-urlencoded"
	for _, c := range []struct {
		name, contentType, body string
		want                    int
	}{
		{"urlencoded-first", form, CSRFField + "=" + goodCSRF + "&description=" + long, 200},
		{"urlencoded-within", form, "description=" + long[:MaxTokenScan/2] + "&" + CSRFField + "=" + url.QueryEscape(goodCSRF), 200},
		{"urlencoded-past-scan", form, "description=" + long + "&" + CSRFField + "=" + goodCSRF, 403},
		{"urlencoded-cut-token", form, "description=" + long[:MaxTokenScan-10-len("description=&")] + "&" + CSRFField + "=" + goodCSRF + "&more=1", 403},
		{"urlencoded-wrong", form, CSRFField + "=forged", 403},
		{"urlencoded-none", form, "name=SEP1", 403},
		{"multipart-first", mpFirstCT, mpFirst, 200},
		{"multipart-past-scan", mpLastCT, mpLast, 403},
		{"multipart-none", mpNoneCT, mpNone, 403},
		{"multipart-no-boundary", "multipart/form-data", mpFirst, 403},
		{"json-body", "application/json", `{"csrf":"` + goodCSRF + `"}`, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []byte
			h := Middleware(fakeSessions{}, slog.New(slog.DiscardHandler))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = io.ReadAll(r.Body)
			}))
			src := &countReader{r: strings.NewReader(c.body)}
			r := httptest.NewRequest(http.MethodPost, "https://capf.example:8443/phones", src)
			r.TLS = &tls.ConnectionState{}
			r.Header.Set("Content-Type", c.contentType)
			r.AddCookie(&http.Cookie{Name: CookieName, Value: goodSession})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d; body %s", w.Code, c.want, w.Body)
			}
			if c.want == 200 && string(got) != c.body {
				t.Errorf("the handler read %d bytes, not the %d sent", len(got), len(c.body))
			}
			if c.want == 403 && src.n > MaxTokenScan {
				t.Errorf("read %d bytes of a refused body; the scan is %d", src.n, MaxTokenScan)
			}
		})
	}
}

type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestLimitBodies: a declared size over the limit is 413 unread; a body
// that turns out longer fails its reader at the limit; a body within, and
// a request without one, pass untouched.
func TestLimitBodies(t *testing.T) {
	var readErr error
	var read int
	h := LimitBodies(func(r *http.Request) int64 {
		if r.URL.Path == "/import" {
			return 1000
		}
		return 100
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		read, readErr = len(b), err
	}))
	for _, c := range []struct {
		name, path string
		size       int
		declared   bool
		want       int
		wantErr    bool
	}{
		{"form-within", "/phones", 100, true, 200, false},
		{"form-declared-over", "/phones", 101, true, 413, false},
		{"form-chunked-over", "/phones", 5000, false, 200, true},
		{"import-within", "/import", 1000, true, 200, false},
		{"import-declared-over", "/import", 1001, true, 413, false},
		{"no-body", "/phones", 0, true, 200, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			readErr, read = nil, -1
			src := &countReader{r: strings.NewReader(strings.Repeat("a", c.size))}
			var body io.Reader = src
			if c.size == 0 {
				body = nil
			}
			r := httptest.NewRequest(http.MethodPost, c.path, body)
			r.ContentLength = int64(c.size)
			if !c.declared {
				r.ContentLength = -1
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d", w.Code, c.want)
			}
			if c.want == 413 && (src.n != 0 || read != -1) {
				t.Errorf("a body declared too large was read: %d bytes", src.n)
			}
			var mbe *http.MaxBytesError
			if c.wantErr != errors.As(readErr, &mbe) {
				t.Errorf("read error %v, want a MaxBytesError: %v", readErr, c.wantErr)
			}
			if c.wantErr && read > 1000 {
				t.Errorf("read %d bytes past the limit", read)
			}
		})
	}
}

// TestTokenScanOverLimit: a chunked form that runs over the route's limit
// before its token is found is 413, not 403, and is read no further.
func TestTokenScanOverLimit(t *testing.T) {
	h := LimitBodies(func(*http.Request) int64 { return 1000 })(Middleware(fakeSessions{}, slog.New(slog.DiscardHandler))(echo))
	src := &countReader{r: strings.NewReader("description=" + strings.Repeat("a", 5000) + "&" + CSRFField + "=" + goodCSRF)}
	r := httptest.NewRequest(http.MethodPost, "https://capf.example:8443/phones", src)
	r.ContentLength = -1
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: CookieName, Value: goodSession})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413; body %s", w.Code, w.Body)
	}
	if src.n > 1000+512 {
		t.Errorf("read %d bytes past a limit of 1000", src.n)
	}
}
