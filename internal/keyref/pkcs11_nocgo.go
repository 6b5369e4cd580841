//go:build !cgo

package keyref

import (
	"context"

	"github.com/capf-server/capf/internal/fault"
)

// loadPKCS11 refuses: PKCS #11 modules are C libraries, loaded through cgo.
func loadPKCS11(_ context.Context, ref Ref, _ Options, _ string) (*Key, error) {
	return nil, fail(ErrNoPKCS11, fault.Invalid, "key %s is in a PKCS #11 token, but this capf was built with CGO_ENABLED=0: rebuild it with cgo", ref)
}
