package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// CampaignStrings returns the strings of campaign id's devices still at
// the campaign's revision, and how many moved on or were removed, from
// one read transaction.
func (s *Store) CampaignStrings(ctx context.Context, id int64) ([]device.CampaignString, int, error) {
	what := fmt.Sprintf("campaign %d strings", id)
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM campaigns WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fault.NotFoundf("campaign %d not found", id)
	} else if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	var skipped int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM campaign_devices cd
		WHERE cd.campaign = ? AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.name = cd.device AND d.config_rev = cd.rev)`, id).Scan(&skipped); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT cd.device, d.auth_string FROM campaign_devices cd
		JOIN devices d ON d.name = cd.device AND d.config_rev = cd.rev
		WHERE cd.campaign = ? AND d.auth_string <> '' ORDER BY cd.device`, id)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []device.CampaignString
	for rows.Next() {
		var cs device.CampaignString
		if err := rows.Scan(&cs.Device, &cs.AuthString); err != nil {
			return nil, 0, fmt.Errorf("%s: scan: %w", what, err)
		}
		out = append(out, cs)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", what, err)
	}
	return out, skipped, nil
}
