package api

import (
	"context"
	"crypto"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
)

// CAOffline (part of CASet) is what the API needs of the CA set's administration
// (*caset.Admin) for CAPF certificates made elsewhere, the offline CA and
// the issuing CA: the same actions as capf ca import, csr,
// install-signed, csr --discard and ca issuer.
type CAOffline interface {
	Import(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, key crypto.Signer, keyName string, actor device.Actor) (caset.Record, []*x509.Certificate, error)
	CSR(ctx context.Context, subject, alg string, actor device.Actor) ([]byte, caset.Pending, error)
	Pending(ctx context.Context) (*caset.Pending, error)
	InstallSigned(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, actor device.Actor) (caset.Record, []*x509.Certificate, error)
	DiscardPending(ctx context.Context, actor device.Actor) (caset.Pending, error)
	IssuerCreate(ctx context.Context, alg string, validity time.Duration, actor device.Actor) (caset.IssuingRecord, *x509.Certificate, error)
	IssuerCreateInToken(ctx context.Context, ref string, validity time.Duration, actor device.Actor) (caset.IssuingRecord, *x509.Certificate, error)
	IssuerImport(ctx context.Context, certs []*x509.Certificate, key crypto.Signer, keyName string, actor device.Actor) (caset.IssuingRecord, *x509.Certificate, error)
	IssuerImportInToken(ctx context.Context, certs []*x509.Certificate, ref string, actor device.Actor) (caset.IssuingRecord, *x509.Certificate, error)
	ImportInToken(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, ref string, actor device.Actor) (caset.Record, []*x509.Certificate, error)
	IssuerRemove(ctx context.Context, force bool, actor device.Actor) (caset.IssuingRecord, int, error)
	IssuerForget(ctx context.Context, id string, force bool, actor device.Actor) (caset.IssuingRecord, int, error)
}

// maxCABody bounds the body of the routes that take PEM: a certificate,
// a chain and a key of at most caset.MaxPEM each, with room for JSON.
const maxCABody = 3*caset.MaxPEM + 4<<10

// caImportBody is the body of POST /ca-set/import. The key is never
// logged, echoed nor audited.
type caImportBody struct {
	Certificate string `json:"certificate" maxLength:"65536" doc:"the CAPF certificate (PEM), optionally followed by its chain"`
	Key         string `json:"key" maxLength:"65536" doc:"its private key (PEM: PKCS #8, PKCS #1 or SEC 1), stored as every CA key is, never echoed nor logged; or a key pair in the node's PKCS #11 token, pkcs11:token=LABEL;object=NAME, whose reference alone is stored"`
	Chain       string `json:"chain,omitempty" maxLength:"65536" doc:"the certificates above it up to a root (PEM), in any order"`
}

type caImportInput struct{ Body caImportBody }

// caCSRBody is the optional body of POST /ca-set/csr.
type caCSRBody struct {
	Subject      string `json:"subject,omitempty" maxLength:"1024" doc:"the subject requested, e.g. CN=CAPF-cluster1,O=Example,OU=VOICE (default: a generated CN, O=CAPF, OU=VOICE)"`
	KeyAlgorithm string `json:"key_algorithm,omitempty" enum:"rsa2048,rsa3072,rsa4096,ec256,ec384" doc:"the pending key's algorithm; default the capf_key parameter"`
}

type caCSRInput struct{ Body *caCSRBody }

// CACSRView is the answer to POST /ca-set/csr.
type CACSRView struct {
	CSR     string        `json:"csr" doc:"the certificate signing request (PEM) for the outside CA to sign as a CA"`
	Pending caset.Pending `json:"pending"`
}

type caCSROutput struct{ Body CACSRView }

// caInstallBody is the body of POST /ca-set/install-signed.
type caInstallBody struct {
	Certificate string `json:"certificate" maxLength:"65536" doc:"the outside CA's certificate for the pending key (PEM), optionally followed by its chain"`
	Chain       string `json:"chain,omitempty" maxLength:"65536" doc:"the certificates above it up to a root (PEM), in any order"`
}

type caInstallInput struct{ Body caInstallBody }

// caIssuerCreateBody is the optional body of POST /ca-set/issuer.
type caIssuerCreateBody struct {
	KeyAlgorithm string `json:"key_algorithm,omitempty" enum:"rsa2048,rsa3072,rsa4096,ec256,ec384" doc:"the issuing CA's key; default the capf_key parameter"`
	ValidityDays int    `json:"validity_days,omitempty" minimum:"0" maximum:"36500" doc:"its lifetime in days (default 730, never beyond the CAPF certificate)"`
	Key          string `json:"key,omitempty" maxLength:"4096" doc:"instead of a new key: a key pair in the node's PKCS #11 token, pkcs11:token=LABEL;object=NAME, which never leaves it (the node needs pkcs11_module and pkcs11_pin_file)"`
}

type caIssuerCreateInput struct{ Body *caIssuerCreateBody }

// caIssuerImportBody is the body of POST /ca-set/issuer/import.
type caIssuerImportBody struct {
	Certificate string `json:"certificate" maxLength:"65536" doc:"the issuing CA certificate (PEM), alone: signed by a CAPF certificate of the set"`
	Key         string `json:"key" maxLength:"65536" doc:"its private key (PEM), stored as every CA key is, never echoed nor logged; or a key pair in the node's PKCS #11 token, pkcs11:token=LABEL;object=NAME, whose reference alone is stored"`
}

type caIssuerImportInput struct{ Body caIssuerImportBody }

type caIssuerForgetInput struct {
	ID    string `path:"id" maxLength:"128" doc:"the former issuing CA's id, or a unique prefix of 8 hex digits or more, as former_issuing lists it"`
	Force bool   `query:"force" doc:"forget it even while phones hold a valid LSC from it (they no longer authenticate with it, nor get its CRL)"`
}

type caIssuerRemoveInput struct {
	Force bool `query:"force" doc:"no longer needed, and ignored: a removed issuing CA stays trusted for its LSCs (former_issuing) until capf ca issuer forget"`
}

func (s *server) registerCAOffline() {
	tags := []string{"security"}
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-import", Method: http.MethodPost, Path: "/ca-set/import", Tags: tags, MaxBodyBytes: maxCABody,
		Summary:     "Stage a CAPF certificate and key made elsewhere, with its chain up to a root",
		Description: "capf ca import. Refused, naming the field, for a certificate that is expired, no CA, without keyCertSign, for another key, or with a chain that does not lead up from it; nothing is stored then. The key is stored as every CA key is and never echoed, logged nor audited. Audited (ca.import) in the transaction that stores it.",
		Errors:      []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable},
	}, s.caImport)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-csr", Method: http.MethodPost, Path: "/ca-set/csr", Tags: tags,
		Summary:     "Make the offline CA's pending key and its certificate signing request",
		Description: "capf ca csr. One pending key at a time (409 naming it; DELETE /ca-set/pending discards it). Audited (ca.csr).",
		Errors:      []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, s.caCSR)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-install-signed", Method: http.MethodPost, Path: "/ca-set/install-signed", Tags: tags, MaxBodyBytes: maxCABody,
		Summary:     "Stage the outside CA's certificate for the pending key, with its chain",
		Description: "capf ca install-signed. A certificate for another key is refused naming both key ids; 404 when no key is pending. Audited (ca.install-signed).",
		Errors:      []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable},
	}, s.caInstallSigned)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-pending-discard", Method: http.MethodDelete, Path: "/ca-set/pending", Tags: tags,
		Summary:     "Discard the offline CA's pending key",
		Description: "capf ca csr --discard. 404 when no key is pending. Audited (ca.csr.discard).",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.caDiscardPending)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-issuer-create", Method: http.MethodPost, Path: "/ca-set/issuer", Tags: tags,
		Summary:     "Make an issuing CA signed by the active CAPF certificate; every node signs LSCs with it within seconds",
		Description: "capf ca issuer create. 409 while one is in place; 422 when the active CAPF certificate may not sign a CA (path length 0). Audited (ca.issuer).",
		Errors:      []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, s.caIssuerCreate)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-issuer-import", Method: http.MethodPost, Path: "/ca-set/issuer/import", Tags: tags, MaxBodyBytes: maxCABody,
		Summary:     "Put an issuing CA made elsewhere in place, signed by a CAPF certificate of the set",
		Description: "capf ca issuer import. The key is stored as every CA key is and never echoed, logged nor audited. Audited (ca.issuer).",
		Errors:      []int{http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable},
	}, s.caIssuerImport)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-issuer-remove", Method: http.MethodDelete, Path: "/ca-set/issuer", Tags: tags,
		Summary:     "Take the issuing CA out of place: every node signs with the active CAPF certificate within seconds",
		Description: "capf ca issuer remove. It becomes a former issuing CA (former_issuing): its LSCs keep authenticating and it keeps signing their CRL and OCSP answers until capf ca issuer forget. 404 when none is in place. Audited (ca.issuer.remove).",
		Errors:      []int{http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.caIssuerRemove)
	add(s, writeAccess, huma.Operation{
		OperationID: "ca-issuer-forget", Method: http.MethodDelete, Path: "/ca-set/issuer/former/{id}", Tags: tags,
		Summary:     "Drop a former issuing CA: its LSCs no longer authenticate nor get its CRL and OCSP answers",
		Description: "capf ca issuer forget ID. Every node stops trusting it within seconds and its key is deleted. 409, naming the count, while phones hold a valid LSC from it, unless force; 404 when there is no such former issuing CA. Audited (ca.issuer.forget).",
		Errors:      []int{http.StatusConflict, http.StatusNotFound, http.StatusServiceUnavailable},
	}, s.caIssuerForget)
}

// caOffline returns the actor of a write and the administration, or the
// error of their absence.
func (s *server) caOffline(ctx context.Context) (device.Actor, CAOffline, error) {
	actor, err := writer(ctx)
	if err != nil {
		return device.Actor{}, nil, s.fail(ctx, err, "")
	}
	if s.o.CASet == nil {
		return device.Actor{}, nil, s.fail(ctx, unavailable("the CA set is"), "")
	}
	return actor, s.o.CASet, nil
}

func (s *server) caImport(ctx context.Context, in *caImportInput) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	leaf, more, err := caset.ParseChainFields([]byte(in.Body.Certificate), []byte(in.Body.Chain))
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	if caset.IsTokenRef(in.Body.Key) {
		_, _, err = a.ImportInToken(ctx, leaf, more, in.Body.Key, actor)
	} else {
		var key crypto.Signer
		if key, err = caset.ParseKeyField("key", []byte(in.Body.Key)); err == nil {
			_, _, err = a.Import(ctx, leaf, more, key, "the key given", actor)
		}
	}
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return s.caSetView(ctx)
}

func (s *server) caCSR(ctx context.Context, in *caCSRInput) (*caCSROutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	var subject, alg string
	if in.Body != nil {
		subject, alg = in.Body.Subject, in.Body.KeyAlgorithm
	}
	der, p, err := a.CSR(ctx, subject, alg, actor)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return &caCSROutput{Body: CACSRView{CSR: string(caset.CSRPEM(der)), Pending: p}}, nil
}

func (s *server) caInstallSigned(ctx context.Context, in *caInstallInput) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	leaf, more, err := caset.ParseChainFields([]byte(in.Body.Certificate), []byte(in.Body.Chain))
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	if _, _, err := a.InstallSigned(ctx, leaf, more, actor); err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return s.caSetView(ctx)
}

func (s *server) caDiscardPending(ctx context.Context, _ *struct{}) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := a.DiscardPending(ctx, actor); err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return s.caSetView(ctx)
}

func (s *server) caIssuerCreate(ctx context.Context, in *caIssuerCreateInput) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	var body caIssuerCreateBody
	if in.Body != nil {
		body = *in.Body
	}
	validity := time.Duration(body.ValidityDays) * 24 * time.Hour
	switch err = caset.CheckKeyChoice(body.KeyAlgorithm, body.Key); {
	case err != nil:
	case body.Key != "":
		_, _, err = a.IssuerCreateInToken(ctx, body.Key, validity, actor)
	default:
		_, _, err = a.IssuerCreate(ctx, body.KeyAlgorithm, validity, actor)
	}
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return s.caSetView(ctx)
}

func (s *server) caIssuerImport(ctx context.Context, in *caIssuerImportInput) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	certs, err := caset.ParseCertificatesField("certificate", []byte(in.Body.Certificate), true)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	if caset.IsTokenRef(in.Body.Key) {
		_, _, err = a.IssuerImportInToken(ctx, certs, in.Body.Key, actor)
	} else {
		var key crypto.Signer
		if key, err = caset.ParseKeyField("key", []byte(in.Body.Key)); err == nil {
			_, _, err = a.IssuerImport(ctx, certs, key, "the key given", actor)
		}
	}
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return s.caSetView(ctx)
}

func (s *server) caIssuerRemove(ctx context.Context, in *caIssuerRemoveInput) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := a.IssuerRemove(ctx, in.Force, actor); err != nil {
		return nil, s.fail(ctx, err, "query")
	}
	return s.caSetView(ctx)
}

func (s *server) caIssuerForget(ctx context.Context, in *caIssuerForgetInput) (*caSetOutput, error) {
	actor, a, err := s.caOffline(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := a.IssuerForget(ctx, in.ID, in.Force, actor); err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return s.caSetView(ctx)
}
