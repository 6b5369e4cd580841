package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capf-server/capf/internal/device"
)

var _ device.AddressGuesses = (*Store)(nil)

// RecordAddressGuess implements device.AddressGuesses: one insert.
func (s *Store) RecordAddressGuess(ctx context.Context, address string, at time.Time) (int64, error) {
	var id int64
	err := s.writeRowCAS(ctx, "record address guess", func(ctx context.Context, tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO address_guesses (address, at) VALUES ($1, $2) RETURNING id`, address, at.UnixMicro()).Scan(&id); err != nil {
			return fmt.Errorf("record address guess: %w", err)
		}
		return nil
	})
	return id, err
}

// NthAddressGuess implements device.AddressGuesses.
func (s *Store) NthAddressGuess(ctx context.Context, address string, since time.Time, n int) (time.Time, error) {
	if n < 1 {
		return time.Time{}, nil
	}
	var at int64
	err := s.pool.QueryRow(ctx, `SELECT at FROM address_guesses WHERE address = $1 AND at > $2
		ORDER BY at DESC, id DESC LIMIT 1 OFFSET $3`, address, since.UnixMicro(), n-1).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read address guesses: %w", err)
	}
	return time.UnixMicro(at).UTC(), nil
}

// DeleteAddressGuess implements device.AddressGuesses: one delete.
func (s *Store) DeleteAddressGuess(ctx context.Context, id int64) error {
	return s.writeRowCAS(ctx, "refund address guess", func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM address_guesses WHERE id = $1`, id); err != nil {
			return fmt.Errorf("refund address guess: %w", err)
		}
		return nil
	})
}

// PruneAddressGuesses implements device.AddressGuesses: one delete.
func (s *Store) PruneAddressGuesses(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.writeRowCAS(ctx, "prune address guesses", func(ctx context.Context, tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM address_guesses WHERE at <= $1`, before.UnixMicro())
		if err != nil {
			return fmt.Errorf("prune address guesses: %w", err)
		}
		n = tag.RowsAffected()
		return nil
	})
	return int(n), err
}
