package webui

import (
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/capf-server/capf/internal/account"
)

// backupPage explains the backup and, for an administrator, offers it.
func (u *ui) backupPage(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.Backups == nil {
		u.fail(w, r, p, notConfigured("Backup"))
		return
	}
	u.render(w, r, p, http.StatusOK, "backup.html", "Backup", "backup", nil)
}

// backupDownload makes an archive and sends it (administrators only: it
// may hold private keys; the service audits it before it is sent).
func (u *ui) backupDownload(w http.ResponseWriter, r *http.Request, p account.Principal) {
	if u.o.Backups == nil {
		u.fail(w, r, p, notConfigured("Backup"))
		return
	}
	name, size, body, err := u.o.Backups.Backup(r.Context(), p.Actor())
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Cache-Control", "no-store")
	if _, err := io.Copy(w, body); err != nil {
		u.log.Warn("backup download cut short", "actor", p.Actor().String(), "err", err)
	}
}
