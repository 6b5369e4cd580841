package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/trustfile"
)

// TrustFiles is what the API needs of the trust-file service
// (*trustfile.Service): the file serve keeps, checked against the CAPF
// certificates.
type TrustFiles interface {
	// Current reads the trust file serve keeps; trustfile.ErrNoServedFile
	// (NotFound) when it keeps none.
	Current(ctx context.Context) (trustfile.Served, error)
}

// CAPFListing is how the served trust file lists one CAPF certificate of
// the service.
type CAPFListing struct {
	Subject string   `json:"subject"`
	SHA256  string   `json:"sha256"`
	Roles   []string `json:"roles" doc:"the roles the file lists it with; empty: not in the file"`
	Listed  bool     `json:"listed" doc:"listed with the CAPF role, as phones need it"`
}

// ServedTrustFile is the trust file (ITL) serve keeps in trust_file_dir,
// as Security > Trust File shows it.
type ServedTrustFile struct {
	Path     string              `json:"path"`
	File     *trustfile.FileView `json:"file,omitempty" doc:"the file as capf trust show --json prints it; absent when it is missing or does not parse"`
	CAPF     []CAPFListing       `json:"capf" doc:"how it lists each current CAPF certificate"`
	Problems []string            `json:"problems" doc:"what keeps phones from trusting this CAPF with the file; empty: none"`
}

type trustFileOutput struct{ Body ServedTrustFile }

func (s *server) registerTrustFile() {
	add(s, readAccess, huma.Operation{
		OperationID: "get-trust-file", Method: http.MethodGet, Path: "/trust-file", Tags: []string{"security"},
		Summary: "The trust file (ITL) serve keeps: its records, signer, signature and whether it lists the current CAPF certificate with the CAPF role",
		Errors:  []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.trustFile)
}

func (s *server) trustFile(ctx context.Context, _ *struct{}) (*trustFileOutput, error) {
	if s.o.TrustFiles == nil {
		return nil, s.fail(ctx, unavailable("the trust file is"), "")
	}
	served, err := s.o.TrustFiles.Current(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := ServedTrustFile{Path: served.Path, File: served.View, CAPF: []CAPFListing{}, Problems: served.Problems()}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	for _, l := range served.CAPF {
		roles := l.Roles
		if roles == nil {
			roles = []string{}
		}
		out.CAPF = append(out.CAPF, CAPFListing{Subject: l.Subject, SHA256: l.SHA256, Roles: roles, Listed: l.Listed})
	}
	return &trustFileOutput{Body: out}, nil
}
