package webauth

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// MaxTokenScan is how much of a form body the middleware reads, at most,
// looking for the CSRF field of a browser session's write that has no
// X-CSRF-Token header. The UI's forms carry the field first; a request
// whose token is not within the first MaxTokenScan bytes is refused (403).
// A 200 MB upload is thus never read, or spooled to disk, before the
// request is known to be the session's own.
const MaxTokenScan = 64 << 10

// maxTokenLen bounds the CSRF field's value as read from a form.
const maxTokenLen = 256

// LimitBodies bounds every request body before anything reads it (the
// middleware's CSRF check included): limit(r) bytes at most. A request
// whose Content-Length says more is refused at once, unread, with 413; a
// body that turns out longer (chunked) fails the read that crosses the
// limit with *http.MaxBytesError, which the reader answers with 413.
func LimitBodies(limit func(*http.Request) int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			n := limit(r)
			if r.ContentLength > n {
				w.Header().Set("Connection", "close") // the body stays unread
				problem(w, http.StatusRequestEntityTooLarge, "the request body is "+strconv.FormatInt(r.ContentLength, 10)+
					" bytes; this route accepts at most "+strconv.FormatInt(n, 10))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// formToken returns the CSRF field of r's form body, looked for in the
// first MaxTokenScan bytes only, and puts back what it read so that the
// handler reads the whole body as sent. It returns "" for a body that is
// not a form or has no such field there, and the read error (an
// *http.MaxBytesError when the body is over the route's limit).
func formToken(r *http.Request) (string, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return "", nil
	}
	var seen bytes.Buffer
	in := io.TeeReader(io.LimitReader(r.Body, MaxTokenScan), &seen)
	defer func() {
		r.Body = replayBody{Reader: io.MultiReader(bytes.NewReader(seen.Bytes()), r.Body), Closer: r.Body}
	}()
	switch mt {
	case "application/x-www-form-urlencoded":
		return urlencodedToken(in)
	case "multipart/form-data":
		if params["boundary"] == "" {
			return "", nil
		}
		return multipartToken(multipart.NewReader(in, params["boundary"]))
	}
	return "", nil
}

// replayBody is a body partly read already: what was read, then the rest.
type replayBody struct {
	io.Reader
	io.Closer
}

// urlencodedToken finds the CSRF field in (at most MaxTokenScan bytes of)
// an urlencoded form; a pair cut off at the end of the scan is ignored.
func urlencodedToken(in io.Reader) (string, error) {
	b, err := io.ReadAll(in)
	if err != nil {
		return "", err
	}
	form := string(b)
	if len(b) == MaxTokenScan { // the scan cut the body: drop the last, perhaps partial, pair
		i := strings.LastIndexByte(form, '&')
		if i < 0 {
			return "", nil
		}
		form = form[:i]
	}
	for pair := range strings.SplitSeq(form, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != CSRFField {
			continue
		}
		tok, err := url.QueryUnescape(v)
		if err != nil || len(tok) > maxTokenLen {
			return "", nil
		}
		return tok, nil
	}
	return "", nil
}

// multipartToken finds the CSRF field among the parts that begin within
// the scan; a file part is skipped unread beyond the scan.
func multipartToken(mr *multipart.Reader) (string, error) {
	for {
		part, err := mr.NextPart()
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return "", err
			}
			return "", nil // the end of the form, or of the scan
		}
		if part.FormName() != CSRFField || part.FileName() != "" {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(part, maxTokenLen+1))
		if err != nil || len(v) > maxTokenLen {
			return "", nil
		}
		return string(v), nil
	}
}
