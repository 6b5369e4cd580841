package device

import (
	"context"
	"time"
)

// AddressGuesses keeps the authentication-string guesses of each source
// address in the database, so that the per-address budget
// (auth_failures_per_address) holds for every node sharing it. Every
// backend implements it and passes store/storetest (RunAddressGuesses).
//
// Every method is safe for concurrent use by any number of nodes, honours
// ctx, takes no closure (nothing of the caller's runs twice) and is one
// statement. Times are the caller's, stored at microsecond precision.
// Addresses are stored as given (the caller bounds them: an IP address).
type AddressGuesses interface {
	// RecordAddressGuess records a guess from address at at and returns
	// its id.
	RecordAddressGuess(ctx context.Context, address string, at time.Time) (int64, error)
	// NthAddressGuess returns the time of the n-th newest guess of
	// address recorded after since (n >= 1), or the zero time when there
	// are fewer than n.
	NthAddressGuess(ctx context.Context, address string, since time.Time, n int) (time.Time, error)
	// DeleteAddressGuess removes the guess id (a right guess is
	// refunded); an unknown id is no error.
	DeleteAddressGuess(ctx context.Context, id int64) error
	// PruneAddressGuesses removes the guesses recorded at or before
	// before, and returns how many.
	PruneAddressGuesses(ctx context.Context, before time.Time) (int, error)
}
