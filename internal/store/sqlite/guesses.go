package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/capf-server/capf/internal/device"
)

var _ device.AddressGuesses = (*Store)(nil)

// RecordAddressGuess implements device.AddressGuesses.
func (s *Store) RecordAddressGuess(ctx context.Context, address string, at time.Time) (int64, error) {
	var id int64
	err := s.submit(ctx, "record address guess", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO address_guesses (address, at) VALUES (?, ?)`, address, at.UnixMicro())
		if err != nil {
			return fmt.Errorf("record address guess: %w", err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// NthAddressGuess implements device.AddressGuesses.
func (s *Store) NthAddressGuess(ctx context.Context, address string, since time.Time, n int) (time.Time, error) {
	if n < 1 {
		return time.Time{}, nil
	}
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT at FROM address_guesses WHERE address = ? AND at > ?
		ORDER BY at DESC, id DESC LIMIT 1 OFFSET ?`, address, since.UnixMicro(), n-1).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read address guesses: %w", err)
	}
	return time.UnixMicro(at).UTC(), nil
}

// DeleteAddressGuess implements device.AddressGuesses.
func (s *Store) DeleteAddressGuess(ctx context.Context, id int64) error {
	return s.submit(ctx, "refund address guess", func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM address_guesses WHERE id = ?`, id); err != nil {
			return fmt.Errorf("refund address guess: %w", err)
		}
		return nil
	})
}

// PruneAddressGuesses implements device.AddressGuesses.
func (s *Store) PruneAddressGuesses(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.submit(ctx, "prune address guesses", func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM address_guesses WHERE at <= ?`, before.UnixMicro())
		if err != nil {
			return fmt.Errorf("prune address guesses: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
