package api

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/view"
)

// issued records LSC serial of device name, valid a year from testNow.
func (e *env) issued(name, serial string) {
	e.t.Helper()
	ctx := e.t.Context()
	if _, err := e.store.GetDevice(ctx, name); err != nil {
		if err := e.store.CreateDevice(ctx, device.Device{Name: name, SecurityProfile: "p", AuthMode: device.AuthNull,
			Operation: device.OpNone, Key: "ec256", Status: device.StatusNone}, device.AuditEvent{}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.store.RecordIssuance(ctx, device.Issuance{Serial: serial, Device: name, Issuer: "CN=CAPF", IssuerKeyID: "ab",
		IssuedAt: testNow, NotBefore: testNow, NotAfter: testNow.Add(365 * 24 * time.Hour), DER: []byte{0x30, 0}}); err != nil {
		e.t.Fatal(err)
	}
}

func TestCertificates(t *testing.T) {
	e := newEnv(t)
	e.issued("SEP00000000000A", "0A01")
	e.issued("SEP00000000000B", "0B01")

	all := decode[[]view.Certificate](t, e.do(asViewer, http.MethodGet, Prefix+"/certificates", nil), http.StatusOK)
	if len(all) != 2 || all[0].Status != "valid" || all[0].PEM != "" {
		t.Fatalf("GET /certificates = %+v", all)
	}
	one := decode[view.Certificate](t, e.do(asViewer, http.MethodGet, Prefix+"/certificates/0a:01", nil), http.StatusOK)
	if one.Serial != "0A01" || one.Device != "SEP00000000000A" || one.PEM == "" || one.IssuerKeyID != "ab" {
		t.Errorf("GET /certificates/0a:01 = %+v", one)
	}

	// A viewer may look, not revoke.
	problem(t, e.do(asViewer, http.MethodPost, Prefix+"/certificates/0A01/revoke", map[string]any{"reason": "keyCompromise"}), http.StatusForbidden)
	got := decode[view.Certificate](t, e.do(asAdmin, http.MethodPost, Prefix+"/certificates/0A01/revoke", map[string]any{"reason": "keyCompromise"}), http.StatusOK)
	if got.Status != "revoked" || got.Reason != "keyCompromise" || got.RevokedAt == nil || got.RevokedBy == "" {
		t.Errorf("revoke = %+v", got)
	}
	problem(t, e.do(asAdmin, http.MethodPost, Prefix+"/certificates/0A01/revoke", map[string]any{"reason": "superseded"}), http.StatusConflict)

	revoked := decode[[]view.Certificate](t, e.do(asViewer, http.MethodGet, Prefix+"/certificates?status=revoked", nil), http.StatusOK)
	if len(revoked) != 1 || revoked[0].Serial != "0A01" {
		t.Errorf("?status=revoked = %+v", revoked)
	}
	byDevice := decode[[]view.Certificate](t, e.do(asViewer, http.MethodGet, Prefix+"/certificates?device=sep00000000000b", nil), http.StatusOK)
	if len(byDevice) != 1 || byDevice[0].Serial != "0B01" {
		t.Errorf("?device = %+v", byDevice)
	}

	for _, c := range []struct {
		name, method, path string
		body               any
		want               int
		loc                string
	}{
		{"fail/not-hex", http.MethodGet, "/certificates/XYZ", nil, http.StatusUnprocessableEntity, "path.serial"},
		{"fail/unknown", http.MethodGet, "/certificates/7E57", nil, http.StatusNotFound, ""},
		{"fail/bad-device", http.MethodGet, "/certificates?device=nophone", nil, http.StatusUnprocessableEntity, "query.device"},
		{"fail/bad-status", http.MethodGet, "/certificates?status=gone", nil, http.StatusUnprocessableEntity, "query.status"},
		{"fail/bad-reason", http.MethodPost, "/certificates/0B01/revoke", map[string]any{"reason": "certificateHold"}, http.StatusUnprocessableEntity, "body.reason"},
		{"fail/revoke-unknown", http.MethodPost, "/certificates/7E57/revoke", map[string]any{"reason": "keyCompromise"}, http.StatusNotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := problem(t, e.do(asAdmin, c.method, Prefix+c.path, c.body), c.want)
			if c.loc != "" && !slices.Contains(p.locations(), c.loc) {
				t.Errorf("locations %v, want %s", p.locations(), c.loc)
			}
		})
	}
	if c := decode[view.Certificate](t, e.do(asViewer, http.MethodGet, Prefix+"/certificates/0B01", nil), http.StatusOK); c.Status != "valid" {
		t.Errorf("a refused revocation changed 0B01: %+v", c)
	}
}
