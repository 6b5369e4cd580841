package webui

import (
	"context"
	"crypto"
	"crypto/x509"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// CAOffline (part of CASet) is what Security > CAPF Certificate needs of
// the CA set's administration (*caset.Admin) for CAPF certificates made
// elsewhere, the offline CA and the issuing CA: the same actions as capf
// ca import, csr, install-signed, csr --discard and ca issuer.
type CAOffline interface {
	Import(ctx context.Context, leaf *x509.Certificate, more []*x509.Certificate, key crypto.Signer, keyName string, actor device.Actor) (caset.Record, []*x509.Certificate, error)
	CSR(ctx context.Context, subject, alg string, actor device.Actor) ([]byte, caset.Pending, error)
	Pending(ctx context.Context) (*caset.Pending, error)
	PendingRequest(ctx context.Context) ([]byte, error)
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

// csrPage is the page that shows a new certificate signing request.
type csrPage struct {
	Pending caset.Pending
	CSR     string
}

// caChange is a form that changes the CA set: change's error is shown
// on the error page; on success the browser goes back to the certificate
// page, which shows the set as it is now.
func (u *ui) caChange(change func(r *http.Request, actor device.Actor) error) handler {
	return func(w http.ResponseWriter, r *http.Request, p account.Principal) {
		if !u.caSetOr(w, r, p) {
			return
		}
		if err := change(r, p.Actor()); err != nil {
			u.fail(w, r, p, err)
			return
		}
		http.Redirect(w, r, "/security/certificate", http.StatusSeeOther)
	}
}

// caImport stages the certificate and key of the form. The key is never
// shown back, logged nor audited.
func (u *ui) caImport(r *http.Request, actor device.Actor) error {
	leaf, more, err := caset.ParseChainFields([]byte(r.PostFormValue("certificate")), []byte(r.PostFormValue("chain")))
	if err != nil {
		return err
	}
	if k := r.PostFormValue("key"); caset.IsTokenRef(k) {
		_, _, err = u.o.CASet.ImportInToken(r.Context(), leaf, more, k, actor)
		return err
	}
	key, err := caset.ParseKeyField("key", []byte(r.PostFormValue("key")))
	if err != nil {
		return err
	}
	_, _, err = u.o.CASet.Import(r.Context(), leaf, more, key, "the key given", actor)
	return err
}

// caCSR makes the offline CA's pending key and shows its request to copy
// or download.
func (u *ui) caCSR(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if !u.caSetOr(w, r, p) {
		return
	}
	der, pending, err := u.o.CASet.CSR(r.Context(), r.PostFormValue("subject"), r.PostFormValue("key_algorithm"), p.Actor())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	u.render(w, r, p, http.StatusOK, "ca_csr.html", "Certificate Signing Request", "certificate", csrPage{Pending: pending, CSR: string(caset.CSRPEM(der))})
}

// caPendingCSR downloads the pending key's request again. Only for those
// who may write: it signs with the pending key.
func (u *ui) caPendingCSR(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if err := p.RequireWrite(); err != nil {
		u.fail(w, r, p, err)
		return
	}
	if !u.caSetOr(w, r, p) {
		return
	}
	der, err := u.o.CASet.PendingRequest(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	w.Header().Set("Content-Type", "application/pkcs10")
	w.Header().Set("Content-Disposition", `attachment; filename="capf.csr"`)
	_, _ = w.Write(caset.CSRPEM(der))
}

// caInstallSigned stages the outside CA's certificate of the form for the
// pending key.
func (u *ui) caInstallSigned(r *http.Request, actor device.Actor) error {
	leaf, more, err := caset.ParseChainFields([]byte(r.PostFormValue("certificate")), []byte(r.PostFormValue("chain")))
	if err != nil {
		return err
	}
	_, _, err = u.o.CASet.InstallSigned(r.Context(), leaf, more, actor)
	return err
}

// caDiscardPending discards the pending key.
func (u *ui) caDiscardPending(r *http.Request, actor device.Actor) error {
	_, err := u.o.CASet.DiscardPending(r.Context(), actor)
	return err
}

// maxValidityDays bounds the issuing CA's lifetime a form asks for.
const maxValidityDays = 36500

// caIssuerCreate makes an issuing CA below the active CAPF certificate.
func (u *ui) caIssuerCreate(r *http.Request, actor device.Actor) error {
	days := 0
	if s := r.PostFormValue("validity_days"); s != "" {
		var err error
		if days, err = strconv.Atoi(s); err != nil || days < 0 || days > maxValidityDays {
			return fault.InvalidField("validity_days", "the validity is a number of days from 0 (the default, 730) to %d", maxValidityDays)
		}
	}
	alg, key := r.PostFormValue("key_algorithm"), strings.TrimSpace(r.PostFormValue("key"))
	validity := time.Duration(days) * 24 * time.Hour
	if err := caset.CheckKeyChoice(alg, key); err != nil {
		return err
	}
	if key != "" {
		_, _, err := u.o.CASet.IssuerCreateInToken(r.Context(), key, validity, actor)
		return err
	}
	_, _, err := u.o.CASet.IssuerCreate(r.Context(), alg, validity, actor)
	return err
}

// caIssuerImport puts the issuing CA of the form in place. The key is
// never shown back, logged nor audited.
func (u *ui) caIssuerImport(r *http.Request, actor device.Actor) error {
	certs, err := caset.ParseCertificatesField("certificate", []byte(r.PostFormValue("certificate")), true)
	if err != nil {
		return err
	}
	if k := r.PostFormValue("key"); caset.IsTokenRef(k) {
		_, _, err = u.o.CASet.IssuerImportInToken(r.Context(), certs, k, actor)
		return err
	}
	key, err := caset.ParseKeyField("key", []byte(r.PostFormValue("key")))
	if err != nil {
		return err
	}
	_, _, err = u.o.CASet.IssuerImport(r.Context(), certs, key, "the key given", actor)
	return err
}

// caIssuerRemove removes the issuing CA (force: even while phones hold
// its LSCs).
func (u *ui) caIssuerRemove(r *http.Request, actor device.Actor) error {
	_, _, err := u.o.CASet.IssuerRemove(r.Context(), r.PostFormValue("force") == "yes", actor)
	return err
}

// caIssuerForget drops the former issuing CA of the form.
func (u *ui) caIssuerForget(r *http.Request, actor device.Actor) error {
	id := strings.TrimSpace(r.PostFormValue("id"))
	if id == "" || len(id) > 128 {
		return fault.InvalidField("id", "which former issuing CA? give its id")
	}
	_, _, err := u.o.CASet.IssuerForget(r.Context(), id, r.PostFormValue("force") == "yes", actor)
	return err
}
