package account_test

import (
	"testing"

	"github.com/capf-server/capf/internal/account"
)

func TestEffectiveRole(t *testing.T) {
	const admin, viewer = account.RoleAdmin, account.RoleViewer
	tests := []struct {
		name string
		tok  account.Token
		want account.Role
	}{
		{"service/admin", account.Token{Role: admin, Service: true}, admin},
		{"service/viewer", account.Token{Role: viewer, Service: true}, viewer},
		{"owned/admin-by-admin", account.Token{Role: admin, Owner: "alice", OwnerRole: admin}, admin},
		{"owned/admin-by-viewer", account.Token{Role: admin, Owner: "alice", OwnerRole: viewer}, viewer},
		{"owned/viewer-by-admin", account.Token{Role: viewer, Owner: "alice", OwnerRole: admin}, viewer},
		{"owned/viewer-by-viewer", account.Token{Role: viewer, Owner: "alice", OwnerRole: viewer}, viewer},
		{"owned/owner-gone", account.Token{Role: admin, Owner: "alice"}, ""},
		{"owned/unknown-role", account.Token{Role: "root", Owner: "alice", OwnerRole: admin}, ""},
		{"owned/unknown-owner-role", account.Token{Role: admin, Owner: "alice", OwnerRole: "root"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.EffectiveRole(); got != tt.want {
				t.Errorf("EffectiveRole() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (account.Token{}).OwnerLabel(); got != account.ServiceOwner {
		t.Errorf("OwnerLabel of a service token = %q", got)
	}
}

func TestCapped(t *testing.T) {
	const admin, viewer = account.RoleAdmin, account.RoleViewer
	for _, tt := range []struct {
		tok  account.Token
		want string
	}{
		{account.Token{Role: admin, Service: true}, ""},
		{account.Token{Role: admin, Owner: "alice", OwnerRole: admin}, ""},
		{account.Token{Role: admin, Owner: "alice", OwnerRole: viewer}, "acts as viewer"},
		{account.Token{Role: viewer, Owner: "alice", OwnerRole: admin}, ""},
		{account.Token{Role: admin, Owner: "alice"}, "acts with no role: its owner is disabled"},
	} {
		if got := tt.tok.Capped(); got != tt.want {
			t.Errorf("%+v: Capped() = %q, want %q", tt.tok, got, tt.want)
		}
	}
}
