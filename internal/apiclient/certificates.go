package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/view"
)

// Certificates returns the issued LSCs q selects, newest first (q.Now is
// the server's); a Limit of 0 asks for lsc.MaxList, the most the API
// gives.
func (c *Client) Certificates(ctx context.Context, q lsc.Query) ([]view.Certificate, error) {
	limit := q.Limit
	if limit <= 0 || limit > lsc.MaxList {
		limit = lsc.MaxList
	}
	v := url.Values{"limit": {strconv.Itoa(limit)}}
	if q.Device != "" {
		v.Set("device", q.Device)
	}
	if q.Status != "" {
		v.Set("status", string(q.Status))
	}
	cs := []view.Certificate{}
	err := c.call(ctx, request{method: http.MethodGet, path: "/certificates", query: v}, &cs)
	return cs, err
}

// Certificate returns the issued LSC with the serial given (hex, as
// openssl x509 -serial prints it), with its PEM.
func (c *Client) Certificate(ctx context.Context, serial string) (view.Certificate, error) {
	var cert view.Certificate
	err := c.call(ctx, request{method: http.MethodGet, path: "/certificates/" + url.PathEscape(serial)}, &cert)
	return cert, err
}

// RevokeCertificate revokes the issued LSC with the serial given, for the
// RFC 5280 reason named; the server records the token's name as the actor.
func (c *Client) RevokeCertificate(ctx context.Context, serial, reason string) (view.Certificate, error) {
	body, err := jsonBody(struct {
		Reason string `json:"reason"`
	}{reason})
	if err != nil {
		return view.Certificate{}, err
	}
	var cert view.Certificate
	err = c.call(ctx, request{method: http.MethodPost, path: "/certificates/" + url.PathEscape(serial) + "/revoke", body: body, contentType: "application/json"}, &cert)
	return cert, err
}
