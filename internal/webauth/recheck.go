package webauth

import (
	"context"
	"net/http"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/fault"
)

// Recheck reports whether the credential that authenticated p for r still
// does, with p's role: the browser session p.SessionID (it ends on logout,
// on expiry, when the account's password changes and when the account is
// removed) or, for a token's principal, the bearer token r carries. It asks
// s, the store every node shares, so a logout on another node counts too.
// A response that outlives its request's authentication (a live status
// stream) calls it now and then and ends once it returns an error, an
// Unauthorized one when the credential no longer holds.
func Recheck(ctx context.Context, s Sessions, r *http.Request, p account.Principal) error {
	var role account.Role
	switch {
	case p.SessionID != "":
		sess, err := s.Session(ctx, p.SessionID)
		if err != nil {
			return err
		}
		role = sess.Role
	default:
		bearer, ok := bearerToken(r)
		if !ok {
			return fault.New(fault.Unauthorized, "no credential to check again")
		}
		t, err := s.Authenticate(ctx, bearer)
		if err != nil {
			return err
		}
		role = t.Role
	}
	if role != p.Role {
		return fault.New(fault.Unauthorized, "the role changed from %s to %s: authenticate again", p.Role, role)
	}
	return nil
}
