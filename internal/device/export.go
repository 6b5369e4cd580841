package device

import (
	"context"
	"fmt"
)

// AuditCAExport is the audit action of an export or download of the CAPF
// certificate.
const AuditCAExport = "ca.export"

// CAExportTarget is the audit target of AuditCAExport events.
const CAExportTarget = "capf-certificate"

// RecordCAExport appends to the audit stream that actor exported the CAPF
// certificate; detail says how (format, destination, fingerprint). The
// certificate is public (every trust file lists it), so the caller decides
// whether a failure to record it refuses the export: the admin listener
// refuses, `capf ca export` on a read-only data directory warns.
func (s *Service) RecordCAExport(ctx context.Context, actor Actor, detail string) error {
	ev := AuditEvent{At: s.now().UTC(), Actor: actor, Action: AuditCAExport, Target: CAExportTarget, Detail: detail}
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("audit the CAPF certificate export: %w", err)
	}
	return nil
}
