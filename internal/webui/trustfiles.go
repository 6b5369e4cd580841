package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/trustfile"
)

// TrustFiles is what Security > Trust File needs of the trust-file
// service; *trustfile.Service implements it.
type TrustFiles interface {
	// Current reads the trust file serve keeps and checks it against the
	// CAPF certificates; trustfile.ErrNoServedFile when it keeps none.
	Current(ctx context.Context) (trustfile.Served, error)
	// Signers describes the SAST signing identities.
	Signers(ctx context.Context) ([]trustfile.Signer, error)
	// Sync rebuilds and signs the served file (always, when force),
	// auditing it for actor before it is written.
	Sync(ctx context.Context, actor device.Actor, force bool) (trustfile.Rewrite, error)
}

// trustData is the Security > Trust File page's content.
type trustData struct {
	Configured bool // serve keeps a trust file
	Served     trustfile.Served
	Problems   []string
	Signers    []trustfile.Signer
	SignersErr string
	Rewritten  string // the rebuild just done, for the admin who asked
	Error      string
}

func (u *ui) trustPage(w http.ResponseWriter, r *http.Request, p account.Principal) {
	u.renderTrust(w, r, p, http.StatusOK, "", "")
}

// renderTrust shows the page with a note of a rebuild just done, or the
// error of one refused.
func (u *ui) renderTrust(w http.ResponseWriter, r *http.Request, p account.Principal, status int, done, failed string) {
	if u.o.TrustFiles == nil {
		u.fail(w, r, p, notConfigured("the trust file"))
		return
	}
	d := trustData{Configured: true, Rewritten: done, Error: failed}
	served, err := u.o.TrustFiles.Current(r.Context())
	switch {
	case errors.Is(err, trustfile.ErrNoServedFile):
		d.Configured = false
	case err != nil:
		u.fail(w, r, p, err)
		return
	default:
		d.Served, d.Problems = served, served.Problems()
	}
	if d.Signers, err = u.o.TrustFiles.Signers(r.Context()); err != nil {
		// The file is still worth showing without its signers (a
		// cluster's keys may be unreadable on this node).
		if fault.KindOf(err) == fault.NotFound {
			d.SignersErr = "There are no SAST signers yet: the first capf trust command creates them, as serve does when trust_file_dir is set."
		} else {
			u.log.Warn("webui: SAST signers", "err", err)
			d.SignersErr = "The SAST signers could not be read; see the server log."
		}
	}
	u.render(w, r, p, status, "trust_file.html", "Trust File (ITL)", "trust", d)
}

// trustDownload hands out the served file as it is on disk, as phones get
// it: it holds only certificates and a signature.
func (u *ui) trustDownload(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.TrustFiles == nil {
		u.fail(w, r, p, notConfigured("the trust file"))
		return
	}
	served, err := u.o.TrustFiles.Current(r.Context())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	if served.View == nil {
		u.fail(w, r, p, trustfile.ErrNoServedFile)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", trustfile.ServedName))
	w.Header().Set("Content-Length", strconv.Itoa(len(served.Raw)))
	_, _ = w.Write(served.Raw)
}

// trustRebuild builds and signs the served file again now, with the
// primary SAST key: administrators only, audited before it is written.
func (u *ui) trustRebuild(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.TrustFiles == nil {
		u.fail(w, r, p, notConfigured("the trust file"))
		return
	}
	rw, err := u.o.TrustFiles.Sync(r.Context(), p.Actor(), true)
	if err != nil {
		pr := fault.ProblemOf(err)
		if pr.Status >= 500 {
			u.log.Error("webui: rebuild the trust file", "err", err)
		}
		u.renderTrust(w, r, p, pr.Status, "", "The trust file was not rebuilt: "+pr.Detail)
		return
	}
	u.renderTrust(w, r, p, http.StatusOK, fmt.Sprintf("Rebuilt and signed by the primary SAST: %d records, %d bytes, SHA-256 %s.", rw.Records, rw.Bytes, rw.SHA256), "")
}
