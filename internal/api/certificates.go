package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/lsc"
	"github.com/capf-server/capf/internal/view"
)

// Certificates is what the API needs of the issued-LSC service
// (lsc.Service).
type Certificates interface {
	Now() time.Time
	List(ctx context.Context, q lsc.Query) ([]lsc.Record, error)
	Get(ctx context.Context, serial string) (lsc.Record, error)
	Revoke(ctx context.Context, actor device.Actor, serial, reason string) (lsc.Record, error)
}

type certificatesInput struct {
	Device string `query:"device" maxLength:"64" doc:"only the LSCs issued to this device"`
	Status string `query:"status" enum:"valid,revoked,expired,superseded" doc:"only the LSCs in this state"`
	Limit  int    `query:"limit" default:"1000" minimum:"1" maximum:"10000" doc:"at most this many, newest first"`
}

type certificatesOutput struct{ Body []view.Certificate }

type lscInput struct {
	Serial string `path:"serial" maxLength:"128" doc:"the serial in hex, as openssl x509 -serial prints it (case and colons ignored)"`
}

type lscOutput struct{ Body view.Certificate }

type revokeInput struct {
	Serial string `path:"serial" maxLength:"128" doc:"the serial in hex, as openssl x509 -serial prints it (case and colons ignored)"`
	Body   struct {
		Reason string `json:"reason" enum:"unspecified,keyCompromise,affiliationChanged,superseded,cessationOfOperation,privilegeWithdrawn" doc:"the RFC 5280 CRLReason"`
	}
}

func (s *server) registerCertificates() {
	add(s, readAccess, huma.Operation{
		OperationID: "list-certificates", Method: http.MethodGet, Path: "/certificates", Tags: []string{"certificates"},
		Summary: "Every LSC ever issued, newest first, with its device, issuer, validity, state and revocation",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.certificates)
	add(s, readAccess, huma.Operation{
		OperationID: "get-certificate", Method: http.MethodGet, Path: "/certificates/{serial}", Tags: []string{"certificates"},
		Summary: "One issued LSC, with its PEM",
		Errors:  []int{http.StatusServiceUnavailable},
	}, s.lscCertificate)
	add(s, writeAccess, huma.Operation{
		OperationID: "revoke-certificate", Method: http.MethodPost, Path: "/certificates/{serial}/revoke", Tags: []string{"certificates"},
		Summary:     "Revoke an issued LSC: it goes on its CA's CRL and OCSP answers revoked",
		Description: "Audited in the same transaction. 409 when it is revoked already.",
		Errors:      []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, s.revokeCertificate)
}

func (s *server) certificates(ctx context.Context, in *certificatesInput) (*certificatesOutput, error) {
	if s.o.Certificates == nil {
		return nil, s.fail(ctx, unavailable("issued certificates are"), "")
	}
	q := lsc.Query{Device: in.Device, Status: lsc.Status(in.Status), Limit: in.Limit}
	rs, err := s.o.Certificates.List(ctx, q)
	if err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	return &certificatesOutput{Body: view.Certificates(rs, s.o.Certificates.Now())}, nil
}

func (s *server) lscCertificate(ctx context.Context, in *lscInput) (*lscOutput, error) {
	if s.o.Certificates == nil {
		return nil, s.fail(ctx, unavailable("issued certificates are"), "")
	}
	r, err := s.o.Certificates.Get(ctx, in.Serial)
	if err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return &lscOutput{Body: view.CertificateOf(r, s.o.Certificates.Now(), true)}, nil
}

func (s *server) revokeCertificate(ctx context.Context, in *revokeInput) (*lscOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.Certificates == nil {
		return nil, s.fail(ctx, unavailable("issued certificates are"), "")
	}
	r, err := s.o.Certificates.Revoke(ctx, actor, in.Serial, in.Body.Reason)
	if err != nil {
		loc := "path"
		if fault.FieldOf(err) == "reason" {
			loc = "body"
		}
		return nil, s.fail(ctx, err, loc)
	}
	return &lscOutput{Body: view.CertificateOf(r, s.o.Certificates.Now(), false)}, nil
}
