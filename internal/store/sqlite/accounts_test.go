package sqlite

import (
	"testing"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/store/storetest"
)

func TestAccountsContract(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) account.Store {
		s, _ := openTemp(t)
		return s
	})
}
