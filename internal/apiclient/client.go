// Package apiclient is a small typed client of the CAPF REST API
// (/api/v1), for the CLI to drive a remote server: `capf --server
// https://HOST:8443 --token T device …`. It speaks the API's vocabulary,
// the internal/view types, and turns an application/problem+json answer
// back into a fault error of the matching kind, so that the CLI reports a
// remote failure exactly as a local one.
//
// Every answer is read through a size limit, every call has a deadline,
// and TLS is 1.2 or later, verified against the given roots (the admin CA's
// ca.pem) or the system's.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/fault"
)

// Limits on what the client reads and how long it waits.
const (
	// MaxJSONBytes bounds a JSON answer (a page of up to PageSize devices
	// with room to spare, or an audit listing).
	MaxJSONBytes = 64 << 20
	// MaxProblemBytes bounds an error answer.
	MaxProblemBytes = 64 << 10
	// MaxReportBytes bounds the CAPF report the server streams.
	MaxReportBytes = 1 << 30
	// PageSize is the page size the client asks for when it lists every
	// matching device: the API's maximum.
	PageSize = 1000
	// DefaultTimeout is the deadline of a JSON call.
	DefaultTimeout = 30 * time.Second
	// DefaultStreamTimeout is the deadline of an import or a report, which
	// move a whole fleet.
	DefaultStreamTimeout = 10 * time.Minute
)

// Options configures a [Client].
type Options struct {
	// Server is the admin listener's address, e.g. https://capf.example:8443.
	Server string
	// Token is the API token sent as "Authorization: Bearer".
	Token string
	// RootCAs verifies the server's certificate; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// Timeout is the deadline of a JSON call (DefaultTimeout if zero);
	// StreamTimeout that of an import or a report (DefaultStreamTimeout).
	Timeout, StreamTimeout time.Duration
	// MaxJSONBytes and MaxReportBytes bound a JSON answer and the report
	// (the package's constants if zero).
	MaxJSONBytes, MaxReportBytes int64
}

// Client calls one server's API. It is safe for concurrent use.
type Client struct {
	base          *url.URL // the server with /api/v1
	token         string
	http          *http.Client
	timeout       time.Duration
	streamTimeout time.Duration
	maxJSON       int64
	maxReport     int64
}

// New returns a client of the server o names. The server must be an https
// URL: the token is a secret.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fault.Invalidf("server %q: want an https address such as https://capf.example:8443", o.Server)
	}
	if o.Token == "" {
		return nil, fault.Invalidf("server %s: an API token is needed (capf admin token create NAME on the server)", u.Host)
	}
	if strings.ContainsAny(o.Token, "\r\n \t") {
		return nil, fault.Invalidf("the API token holds white space: it was not copied whole")
	}
	// The listener's address; an address given with the API's prefix works
	// too.
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v1") + "/api/v1"
	u.RawPath = ""
	c := &Client{base: u, token: o.Token, timeout: o.Timeout, streamTimeout: o.StreamTimeout, maxJSON: o.MaxJSONBytes, maxReport: o.MaxReportBytes}
	if c.maxJSON <= 0 {
		c.maxJSON = MaxJSONBytes
	}
	if c.maxReport <= 0 {
		c.maxReport = MaxReportBytes
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.streamTimeout <= 0 {
		c.streamTimeout = DefaultStreamTimeout
	}
	c.http = &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: c.streamTimeout,
			IdleConnTimeout:       30 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		// A redirect would carry the token somewhere not asked for.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// CertPool parses PEM certificates (the admin CA's ca.pem) into a pool for
// Options.RootCAs.
func CertPool(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fault.Invalidf("no PEM certificate in the server CA file")
	}
	return pool, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// request is one call: method, path under /api/v1, query, body.
type request struct {
	method, path string
	query        url.Values
	body         io.Reader
	contentType  string
	stream       bool // an import or a report: the longer deadline
}

// endpoint returns the URL of path (its segments already escaped) with q.
func (c *Client) endpoint(path string, q url.Values) string {
	s := c.base.String() + path
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// do sends r and returns the response of a 2xx answer; any other answer is
// the fault error it describes. The caller closes the body and calls
// cancel.
func (c *Client) do(ctx context.Context, r request) (*http.Response, context.CancelFunc, error) {
	timeout := c.timeout
	if r.stream {
		timeout = c.streamTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	req, err := http.NewRequestWithContext(ctx, r.method, c.endpoint(r.path, r.query), r.body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json, application/problem+json, text/csv")
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, nil, c.transportError(err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, cancel, nil
	}
	defer cancel()
	defer resp.Body.Close()
	return nil, nil, c.responseError(resp)
}

// transportError describes a call that got no answer.
func (c *Client) transportError(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fault.New(fault.Unavailable, "server %s: its certificate is not trusted (%v); give the admin CA with --server-ca", c.base.Host, certErr.Err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fault.New(fault.Unavailable, "server %s: no answer in time", c.base.Host)
	}
	return fault.New(fault.Unavailable, "server %s: %v", c.base.Host, err)
}

// problem is an RFC 9457 problem details body, with the validation errors
// huma adds.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

// kindOf maps an HTTP error status to the fault kind an edge gave it.
func kindOf(status int) fault.Kind {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return fault.Invalid
	case http.StatusUnauthorized:
		return fault.Unauthorized
	case http.StatusForbidden:
		return fault.Forbidden
	case http.StatusNotFound:
		return fault.NotFound
	case http.StatusConflict:
		return fault.Conflict
	case http.StatusTooManyRequests:
		return fault.Throttled
	case http.StatusServiceUnavailable:
		return fault.Unavailable
	}
	return fault.Internal
}

// responseError turns a non-2xx answer into the fault error it describes:
// the problem's detail as the message, the field its first validation
// error names.
func (c *Client) responseError(resp *http.Response) error {
	kind := kindOf(resp.StatusCode)
	if resp.StatusCode/100 == 3 {
		return fault.New(fault.Internal, "server %s redirected the call to %q: give that address with --server", c.base.Host, resp.Header.Get("Location"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxProblemBytes))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p problem
	if err != nil || (mt != "application/problem+json" && mt != "application/json") || json.Unmarshal(body, &p) != nil || (p.Detail == "" && p.Title == "") {
		return &fault.Error{Kind: kind, Msg: fmt.Sprintf("server %s answered %s", c.base.Host, resp.Status)}
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	e := &fault.Error{Kind: kind, Msg: msg}
	if len(p.Errors) > 0 {
		first := p.Errors[0]
		loc := first.Location
		if i := strings.LastIndexByte(loc, '.'); i >= 0 {
			loc = loc[i+1:]
		}
		e.Field = loc
		if first.Message != "" && !strings.Contains(msg, first.Message) {
			e.Msg = msg + ": " + first.Location + ": " + first.Message
		}
	}
	return e
}

// call sends r and decodes a JSON answer into out (nil: none expected).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, cancel, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxProblemBytes))
		return nil
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%s %s: the server answered %q, not JSON", r.method, r.path, resp.Header.Get("Content-Type"))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxJSON+1))
	if err != nil {
		return c.transportError(err)
	}
	if int64(len(data)) > c.maxJSON {
		return fmt.Errorf("%s %s: the answer is larger than the limit of %d bytes", r.method, r.path, c.maxJSON)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", r.method, r.path, err)
	}
	return nil
}

// jsonBody encodes v as a request body.
func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return bytes.NewReader(b), nil
}
