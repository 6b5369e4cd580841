package postgres

import (
	"context"
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/store/postgres/pgtest"
	"github.com/capf-server/capf/internal/store/storetest"
)

// openTemp opens a store on a new schema of the test cluster. The caller
// closes it.
func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, dsn
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) device.Store {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestAccountsContract(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) account.Store {
		s, _ := openTemp(t, Options{})
		return s
	})
}

func TestSystemContract(t *testing.T) {
	storetest.RunSystem(t, func(t *testing.T) storetest.SystemStore {
		s, _ := openTemp(t, Options{})
		return s
	})
}
