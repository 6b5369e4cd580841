package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// CampaignStrings returns the strings of campaign id's devices still at
// the campaign's revision, and how many moved on or were removed, from
// one read transaction.
func (s *Store) CampaignStrings(ctx context.Context, id int64) ([]device.CampaignString, int, error) {
	what := fmt.Sprintf("campaign %d strings", id)
	var (
		out     []device.CampaignString
		skipped int
	)
	err := s.read(ctx, func(tx pgx.Tx) error {
		out, skipped = nil, 0
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM campaigns WHERE id = $1`, id).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return fault.NotFoundf("campaign %d not found", id)
		} else if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM campaign_devices cd
			WHERE cd.campaign = $1 AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.name = cd.device AND d.config_rev = cd.rev)`, id).Scan(&skipped); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		rows, err := tx.Query(ctx, `SELECT cd.device, d.auth_string FROM campaign_devices cd
			JOIN devices d ON d.name = cd.device AND d.config_rev = cd.rev
			WHERE cd.campaign = $1 AND d.auth_string <> '' ORDER BY cd.device COLLATE "C"`, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			var cs device.CampaignString
			if err := rows.Scan(&cs.Device, &cs.AuthString); err != nil {
				return fmt.Errorf("%s: scan: %w", what, err)
			}
			out = append(out, cs)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, skipped, nil
}
