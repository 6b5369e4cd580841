package api

import (
	"context"
	"crypto/x509"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
)

// CASet is what the API needs of the CA set's administration
// (*caset.Admin): the same status and actions as capf ca.
type CASet interface {
	Status(ctx context.Context) (caset.Overview, error)
	Certificate(ctx context.Context, ref string) (*x509.Certificate, error)
	Regenerate(ctx context.Context, alg string, actor device.Actor) (caset.Record, ca.KeyAlgorithm, error)
	RegenerateInToken(ctx context.Context, ref string, actor device.Actor) (caset.Record, error)
	Activate(ctx context.Context, ref string, actor device.Actor) (activated, previous caset.Record, err error)
	Retire(ctx context.Context, ref string, force bool, actor device.Actor) (caset.Record, int, error)
	CAOffline
}

// CASetView is the CA set as GET /ca-set returns it: every CAPF
// certificate, as capf ca status --json lists them, and the trust file
// they were compared with.
type CASetView struct {
	CAs []caset.Row `json:"cas" doc:"every CAPF certificate, oldest first"`
	// TrustFile is the trust file serve keeps; "" when it keeps none.
	TrustFile string `json:"trust_file" doc:"the trust file serve keeps (empty when none); in_trust_file says whether it lists each CA"`
	// Issuing is the issuing CA below a CAPF certificate; nil when none.
	Issuing *caset.IssuingRow `json:"issuing" doc:"the issuing CA that signs LSCs below a CAPF certificate of the set; null when the active CAPF certificate signs them"`
	// Pending is the offline CA's pending key; nil when none waits.
	Pending *caset.Pending `json:"pending" doc:"the offline CA's pending key, waiting for the outside CA's certificate (POST /ca-set/install-signed); null when none"`
	// FormerIssuing are the issuing CAs taken out of place, still trusted
	// for their LSCs until capf ca issuer forget.
	FormerIssuing []caset.IssuingRow `json:"former_issuing" doc:"issuing CAs taken out of place (DELETE /ca-set/issuer) that stay LSC trust anchors and sign their LSCs' CRL until capf ca issuer forget, oldest removal first"`
}

type caSetOutput struct{ Body CASetView }

// caRegenerateBody is the optional body of POST /ca-set.
type caRegenerateBody struct {
	KeyAlgorithm string `json:"key_algorithm,omitempty" enum:"rsa2048,rsa3072,rsa4096,ec256,ec384" doc:"the new CA's key; default the capf_key parameter"`
	Key          string `json:"key,omitempty" maxLength:"4096" doc:"instead of a new key: a key pair in the node's PKCS #11 token, pkcs11:token=LABEL;object=NAME, which signs the new CAPF certificate there and never leaves it (the node needs pkcs11_module and pkcs11_pin_file)"`
}

type caRegenerateInput struct {
	Body *caRegenerateBody
}

type caActionInput struct {
	ID string `path:"id" maxLength:"128" doc:"the CA's id (or a unique prefix of 8 hex digits or more) or its serial, as capf ca status shows them"`
}

type caRetireInput struct {
	ID   string `path:"id" maxLength:"128" doc:"the CA's id (or a unique prefix of 8 hex digits or more) or its serial, as capf ca status shows them"`
	Body *caRetireBody
}

// caRetireBody is the optional body of POST /ca-set/{id}/retire.
type caRetireBody struct {
	Force bool `json:"force,omitempty" doc:"retire it even while phones hold a valid LSC from it (they no longer authenticate with it)"`
}

func (s *server) registerCASet() {
	add(s, readAccess, huma.Operation{
		OperationID: "ca-set", Method: http.MethodGet, Path: "/ca-set", Tags: []string{"security"},
		Summary:     "Every CAPF certificate of the CA set: state, validity, phones holding its LSCs, listed in the trust file",
		Description: "The same as capf ca status --json. GET /capf-certificate/file?id=ID downloads each.",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.caSetStatus)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-regenerate", Method: http.MethodPost, Path: "/ca-set", Tags: []string{"security"},
		Summary:     "Create a new CAPF key and certificate, staged: listed in trust files at once, presented to phones once activated",
		Description: "capf ca regenerate. Audited (ca.regenerate) in the transaction that stores it.",
		Errors:      []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, s.caRegenerate)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-activate", Method: http.MethodPost, Path: "/ca-set/{id}/activate", Tags: []string{"security"},
		Summary:     "Make a staged CAPF certificate the active one; the active one becomes retiring",
		Description: "capf ca activate. Every node presents it within seconds. Audited (ca.activate). 409 when the CA is not staged.",
		Errors:      []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, s.caActivate)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-retire", Method: http.MethodPost, Path: "/ca-set/{id}/retire", Tags: []string{"security"},
		Summary:     "Retire a CAPF certificate: it leaves trust files and LSC authentication",
		Description: "capf ca retire. 409 for the active CA, a retired one, or, without force, one from which phones hold a valid LSC (the detail names their count). Audited (ca.retire).",
		Errors:      []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, s.caRetire)
}

// caSetView reads the set as it is now.
func (s *server) caSetView(ctx context.Context) (*caSetOutput, error) {
	ov, err := s.o.CASet.Status(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if ov.CAs == nil {
		ov.CAs = []caset.Row{}
	}
	p, err := s.o.CASet.Pending(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	former := ov.FormerIssuing
	if former == nil {
		former = []caset.IssuingRow{}
	}
	return &caSetOutput{Body: CASetView{CAs: ov.CAs, TrustFile: ov.TrustFile, Issuing: ov.Issuing, Pending: p, FormerIssuing: former}}, nil
}

func (s *server) caSetStatus(ctx context.Context, _ *struct{}) (*caSetOutput, error) {
	if s.o.CASet == nil {
		return nil, s.fail(ctx, unavailable("the CA set is"), "")
	}
	return s.caSetView(ctx)
}

func (s *server) caRegenerate(ctx context.Context, in *caRegenerateInput) (*caSetOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.CASet == nil {
		return nil, s.fail(ctx, unavailable("the CA set is"), "")
	}
	var body caRegenerateBody
	if in.Body != nil {
		body = *in.Body
	}
	switch err = caset.CheckKeyChoice(body.KeyAlgorithm, body.Key); {
	case err != nil:
	case body.Key != "":
		_, err = s.o.CASet.RegenerateInToken(ctx, body.Key, actor)
	default:
		_, _, err = s.o.CASet.Regenerate(ctx, body.KeyAlgorithm, actor)
	}
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return s.caSetView(ctx)
}

func (s *server) caActivate(ctx context.Context, in *caActionInput) (*caSetOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.CASet == nil {
		return nil, s.fail(ctx, unavailable("the CA set is"), "")
	}
	if _, _, err := s.o.CASet.Activate(ctx, in.ID, actor); err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return s.caSetView(ctx)
}

func (s *server) caRetire(ctx context.Context, in *caRetireInput) (*caSetOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.CASet == nil {
		return nil, s.fail(ctx, unavailable("the CA set is"), "")
	}
	force := in.Body != nil && in.Body.Force
	if _, _, err := s.o.CASet.Retire(ctx, in.ID, force, actor); err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return s.caSetView(ctx)
}

// capfCertificate returns the CAPF certificate ref names (the active one
// when ref is empty): from the live CA set when there is one, else the
// certificate serve started with.
func (s *server) capfCertificate(ctx context.Context, ref string) (*x509.Certificate, error) {
	if s.o.CASet != nil {
		c, err := s.o.CASet.Certificate(ctx, ref)
		if err != nil {
			return nil, s.fail(ctx, err, "query")
		}
		return c, nil
	}
	if s.o.Certificate == nil {
		return nil, s.fail(ctx, unavailable("the CAPF certificate is"), "")
	}
	if ref != "" {
		return nil, s.fail(ctx, unavailable("the CA set is"), "")
	}
	return s.o.Certificate, nil
}
