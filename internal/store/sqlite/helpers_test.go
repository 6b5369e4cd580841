package sqlite

import (
	"github.com/capf-server/capf/internal/store/storetest"
)

// The contract suite's helpers, for this backend's own tests.
var (
	startAttempt  = storetest.StartAttempt
	importDevices = storetest.ImportDevices
)
