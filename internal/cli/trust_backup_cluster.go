package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/keys"
	"github.com/capf-server/capf/internal/trust"
)

// exportClusterBackup writes the cluster's backup SAST key and
// certificate to out, reads the file back, and only then removes the
// private key from the database, audited in the removal's transaction.
// The certificate stays, so trust files keep listing the backup signer.
// A node that is serving keeps the key it opened at start until it
// restarts.
func (g *globals) exportClusterBackup(ctx context.Context, ks *trust.Keystore, out string) error {
	if err := ks.ExportBackup(out, false); err != nil {
		return err
	}
	back, err := trust.ReadSigning(out)
	if err != nil || !bytes.Equal(back.Cert.Raw, ks.Backup.Cert.Raw) {
		return fmt.Errorf("export backup: %s does not read back; the key was not removed from the database: %v", out, err)
	}
	st, err := g.openStore(ctx, readWrite)
	if err != nil {
		return err
	}
	defer st.Close()
	recs, err := st.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	var chain []byte
	for _, r := range recs {
		if r.ID == keys.IDSASTBackup {
			chain = r.Chain
		}
	}
	if leaf, err := x509.ParseCertificates(chain); err != nil || len(leaf) == 0 || !leaf[0].Equal(ks.Backup.Cert) {
		return fault.Conflictf("the database's backup SAST key changed since it was read: %s holds the old one; nothing was removed", out)
	}
	ev := device.AuditEvent{At: time.Now().UTC(), Actor: g.actor(), Action: keys.ActionRemovePrivate, Target: "keys",
		Detail: fmt.Sprintf("%s: private key removed from the database after its export to %s", keys.IDSASTBackup, out)}
	if err := st.RemovePrivateKey(ctx, keys.IDSASTBackup, chain, ev); err != nil {
		return fmt.Errorf("remove the backup SAST key from the database (%s holds it): %w", out, err)
	}
	ks.Backup.Key = nil
	return nil
}
