package webui

import (
	"context"
	"crypto/x509"
	"net/http"
	"strings"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/ca"
	"github.com/capf-server/capf/internal/caset"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// CASet is what Security > CAPF Certificate needs of the CA set's
// administration (*caset.Admin): the same status and actions as capf ca.
type CASet interface {
	Status(ctx context.Context) (caset.Overview, error)
	Certificate(ctx context.Context, ref string) (*x509.Certificate, error)
	Regenerate(ctx context.Context, alg string, actor device.Actor) (caset.Record, ca.KeyAlgorithm, error)
	RegenerateInToken(ctx context.Context, ref string, actor device.Actor) (caset.Record, error)
	// TokensAvailable reports whether the node opens keys in a PKCS #11
	// token: the forms then offer a key reference.
	TokensAvailable() bool
	Activate(ctx context.Context, ref string, actor device.Actor) (activated, previous caset.Record, err error)
	Retire(ctx context.Context, ref string, force bool, actor device.Actor) (caset.Record, int, error)
	CAOffline
}

// caRow is one CA of the set as the page shows it.
type caRow struct {
	caset.Row
	// TrustFile is "listed", "not listed", or "-" when serve keeps no
	// trust file.
	TrustFile string
}

// certificatePage is Security > CAPF Certificate: the active certificate
// in detail, and the whole set when there is one.
type certificatePage struct {
	ca.Description
	HasSet     bool
	Set        []caRow
	TrustPath  string
	Algorithms []ca.KeyAlgorithm
	// Tokens reports whether the forms offer a key pair in the node's
	// PKCS #11 token instead of a new key.
	Tokens bool
	// Issuing is the issuing CA below a CAPF certificate; nil when none.
	Issuing *caset.IssuingRow
	// FormerIssuing are the issuing CAs taken out of place, still trusted
	// for their LSCs.
	FormerIssuing []caset.IssuingRow
	// Pending is the offline CA's pending key; nil when none waits.
	Pending *caset.Pending
}

// capfCert returns the CAPF certificate ref names (the active one when
// ref is empty): from the live set when there is one, else the one serve
// started with.
func (u *ui) capfCert(ctx context.Context, ref string) (*x509.Certificate, error) {
	if u.o.CASet != nil {
		return u.o.CASet.Certificate(ctx, ref)
	}
	if u.o.Certificate == nil {
		return nil, notConfigured("the CAPF certificate")
	}
	if ref != "" {
		return nil, notConfigured("the CA set")
	}
	return u.o.Certificate, nil
}

func (u *ui) certificate(w http.ResponseWriter, r *http.Request, p account.Principal) {
	c, err := u.capfCert(r.Context(), "")
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	desc, err := ca.Describe(c)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := certificatePage{Description: desc}
	if u.o.CASet != nil {
		ov, err := u.o.CASet.Status(r.Context())
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		d.HasSet, d.TrustPath, d.Algorithms, d.Issuing = true, ov.TrustFile, caset.KeyAlgorithms, ov.Issuing
		d.Tokens = u.o.CASet.TokensAvailable()
		d.FormerIssuing = ov.FormerIssuing
		if d.Pending, err = u.o.CASet.Pending(r.Context()); err != nil {
			u.fail(w, r, p, err)
			return
		}
		for _, row := range ov.CAs {
			in := "-"
			if row.InTrustFile != nil {
				in = map[bool]string{true: "listed", false: "not listed"}[*row.InTrustFile]
			}
			d.Set = append(d.Set, caRow{Row: row, TrustFile: in})
		}
	}
	u.render(w, r, p, http.StatusOK, "certificate.html", "CAPF Certificate", "certificate", d)
}

// caSetOr fails the request when the UI has no CA set.
func (u *ui) caSetOr(w http.ResponseWriter, r *http.Request, p account.Principal) bool {
	if u.o.CASet == nil {
		u.fail(w, r, p, notConfigured("the CA set"))
		return false
	}
	return true
}

// caRegenerate stages a new CA with the key algorithm of the form.
func (u *ui) caRegenerate(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if !u.caSetOr(w, r, p) {
		return
	}
	alg, key := r.PostFormValue("key_algorithm"), strings.TrimSpace(r.PostFormValue("key"))
	err := caset.CheckKeyChoice(alg, key)
	switch {
	case err != nil:
	case key != "":
		_, err = u.o.CASet.RegenerateInToken(r.Context(), key, p.Actor())
	default:
		_, _, err = u.o.CASet.Regenerate(r.Context(), alg, p.Actor())
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/security/certificate", http.StatusSeeOther)
}

// caActivate makes the staged CA of the form the active one.
func (u *ui) caActivate(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if !u.caSetOr(w, r, p) {
		return
	}
	ref, err := caRef(r)
	if err == nil {
		_, _, err = u.o.CASet.Activate(r.Context(), ref, p.Actor())
	}
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/security/certificate", http.StatusSeeOther)
}

// caRetireConfirm is the retire confirmation page's content.
type caRetireConfirm struct {
	caRow
	Force bool
}

// caRetire retires the CA of the form once confirmed: the first post
// shows what retiring it does (and how many phones hold its LSCs), the
// second, with confirm=yes, retires it.
func (u *ui) caRetire(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if !u.caSetOr(w, r, p) {
		return
	}
	ref, err := caRef(r)
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	force := r.PostFormValue("force") == "yes"
	if r.PostFormValue("confirm") != "yes" {
		ov, err := u.o.CASet.Status(r.Context())
		if err != nil {
			u.fail(w, r, p, err)
			return
		}
		if ref == "" {
			u.fail(w, r, p, fault.InvalidField("id", "no CA id given"))
			return
		}
		for _, row := range ov.CAs {
			if row.ID == ref {
				u.render(w, r, p, http.StatusOK, "confirm_ca_retire.html", "Retire a CAPF Certificate", "certificate", caRetireConfirm{caRow: caRow{Row: row}, Force: force})
				return
			}
		}
		u.fail(w, r, p, fault.NotFoundf("no CAPF certificate with id %s", ref))
		return
	}
	if _, _, err := u.o.CASet.Retire(r.Context(), ref, force, p.Actor()); err != nil {
		u.fail(w, r, p, err)
		return
	}
	http.Redirect(w, r, "/security/certificate", http.StatusSeeOther)
}

// maxCARef bounds the CA id (or serial) a form names.
const maxCARef = 128

// caRef is the CA id of a form; one longer than any id or serial is
// refused.
func caRef(r *http.Request) (string, error) {
	ref := r.PostFormValue("id")
	if len(ref) > maxCARef {
		return "", fault.InvalidField("id", "the CA id is longer than %d characters", maxCARef)
	}
	return ref, nil
}
