package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/webauth"
)

type accountsOutput struct{ Body []account.Account }

type accountOutput struct{ Body account.Account }

type newAccountInput struct {
	Body struct {
		Name     string `json:"name" minLength:"1" maxLength:"64" doc:"the login name"`
		Role     string `json:"role" maxLength:"16" doc:"admin or viewer"`
		Password string `json:"password" minLength:"1" maxLength:"1024" doc:"the password"`
	}
}

// AccountName is the account a request names in its path.
type AccountName struct {
	Name string `path:"name" maxLength:"64" doc:"account name"`
}

type patchAccountInput struct {
	AccountName
	Body struct {
		Password *string `json:"password,omitempty" minLength:"1" maxLength:"1024" doc:"a new password; also ends the account's sessions"`
		Role     *string `json:"role,omitempty" maxLength:"16" doc:"admin or viewer"`
		Disabled *bool   `json:"disabled,omitempty" doc:"true disables the account (no login, its sessions end, the API tokens it owns stop working; the last enabled admin cannot be disabled); false enables it again"`
	}
}

type tokensOutput struct{ Body []account.Token }

type newTokenInput struct {
	Body struct {
		Name    string `json:"name" minLength:"1" maxLength:"64" doc:"the token's name, as the audit shows it"`
		Role    string `json:"role" maxLength:"16" doc:"admin or viewer"`
		Expires string `json:"expires" maxLength:"32" doc:"lifetime such as 90d or 12h; 0 never expires"`
	}
}

// NewToken is a token just created: its secret is shown this once.
type NewToken struct {
	Token     string     `json:"token" doc:"the secret, for Authorization: Bearer; shown only now"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at,omitempty" doc:"absent: never expires"`
}

type newTokenOutput struct{ Body NewToken }

type tokenNameInput struct {
	Name string `path:"name" maxLength:"64" doc:"token name"`
}

func (s *server) registerAccounts() {
	tags := []string{"accounts"}
	add(s, adminAccess, huma.Operation{
		OperationID: "list-accounts", Method: http.MethodGet, Path: "/accounts", Tags: tags,
		Summary: "The accounts that log in to the web UI",
	}, s.accounts)
	add(s, adminAccess, huma.Operation{
		OperationID: "create-account", Method: http.MethodPost, Path: "/accounts", Tags: tags, DefaultStatus: http.StatusCreated,
		Summary: "Add an account", Errors: []int{http.StatusConflict},
	}, s.createAccount)
	add(s, adminAccess, huma.Operation{
		OperationID: "update-account", Method: http.MethodPatch, Path: "/accounts/{name}", Tags: tags,
		Summary: "Change an account's password or role, or disable or enable it",
	}, s.updateAccount)
	add(s, adminAccess, huma.Operation{
		OperationID: "delete-account", Method: http.MethodDelete, Path: "/accounts/{name}", Tags: tags, DefaultStatus: http.StatusNoContent,
		Summary: "Remove an account", Description: "The last admin cannot be removed.",
	}, s.deleteAccount)
	add(s, adminAccess, huma.Operation{
		OperationID: "list-tokens", Method: http.MethodGet, Path: "/tokens", Tags: tags,
		Summary: "The API tokens (never their secrets)",
	}, s.tokens)
	add(s, adminAccess, huma.Operation{
		OperationID: "create-token", Method: http.MethodPost, Path: "/tokens", Tags: tags, DefaultStatus: http.StatusCreated,
		Summary: "Create an API token; the response holds its secret, shown only once", Errors: []int{http.StatusConflict},
	}, s.createToken)
	add(s, adminAccess, huma.Operation{
		OperationID: "delete-token", Method: http.MethodDelete, Path: "/tokens/{name}", Tags: tags, DefaultStatus: http.StatusNoContent,
		Summary: "Revoke an API token",
	}, s.revokeToken)
}

// accountsService returns the account service, or the error of its
// absence.
func (s *server) accountsService() (Accounts, error) {
	if s.o.Accounts == nil {
		return nil, unavailable("accounts are")
	}
	return s.o.Accounts, nil
}

func (s *server) accounts(ctx context.Context, _ *struct{}) (*accountsOutput, error) {
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	list, err := as.Accounts(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &accountsOutput{Body: nonNil(list)}, nil
}

func (s *server) createAccount(ctx context.Context, in *newAccountInput) (*accountOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	role, err := account.ParseRole(in.Body.Role)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	a, err := as.AddAccount(ctx, actor, in.Body.Name, role, in.Body.Password)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	return &accountOutput{Body: a}, nil
}

func (s *server) updateAccount(ctx context.Context, in *patchAccountInput) (*accountOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	b := in.Body
	if b.Password == nil && b.Role == nil && b.Disabled == nil {
		return nil, s.fail(ctx, fault.Invalidf("give a new password, a new role or disabled (true or false)"), "body")
	}
	var role account.Role
	if b.Role != nil { // parse before changing anything
		if role, err = account.ParseRole(*b.Role); err != nil {
			return nil, s.fail(ctx, err, "body")
		}
	}
	if b.Password != nil {
		if err := as.SetPassword(ctx, actor, in.Name, *b.Password); err != nil {
			return nil, s.fail(ctx, blame("password", err), "body")
		}
	}
	if b.Role != nil {
		a, err := as.SetRole(ctx, actor, in.Name, role)
		if err != nil {
			return nil, s.fail(ctx, blame("role", err), "body")
		}
		if b.Disabled == nil {
			return &accountOutput{Body: a}, nil
		}
	}
	if b.Disabled != nil {
		change := as.EnableAccount
		if *b.Disabled {
			change = as.DisableAccount
		}
		a, err := change(ctx, actor, in.Name)
		if err != nil {
			return nil, s.fail(ctx, blame("disabled", err), "body")
		}
		return &accountOutput{Body: a}, nil
	}
	list, err := as.Accounts(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	for _, a := range list {
		if a.Name == in.Name {
			return &accountOutput{Body: a}, nil
		}
	}
	return nil, s.fail(ctx, fault.NotFoundf("account %s not found", in.Name), "path")
}

func (s *server) deleteAccount(ctx context.Context, in *AccountName) (*struct{}, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if err := as.RemoveAccount(ctx, actor, in.Name); err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return nil, nil
}

func (s *server) tokens(ctx context.Context, _ *struct{}) (*tokensOutput, error) {
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	list, err := as.Tokens(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	return &tokensOutput{Body: nonNil(list)}, nil
}

func (s *server) createToken(ctx context.Context, in *newTokenInput) (*newTokenOutput, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if s.o.ParseTTL == nil {
		return nil, s.fail(ctx, unavailable("tokens are"), "")
	}
	role, err := account.ParseRole(in.Body.Role)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	ttl, err := s.o.ParseTTL(in.Body.Expires)
	if err != nil {
		return nil, s.fail(ctx, blame("expires", err), "body") // ParseTTL is injected; it may not name the field
	}
	// The token belongs to the account behind the request: it is capped at
	// that account's role and revoked with it.
	p, _ := webauth.PrincipalFrom(ctx)
	secret, t, err := as.CreateToken(ctx, actor, p.Owner, in.Body.Name, role, ttl)
	if err != nil {
		return nil, s.fail(ctx, err, "body")
	}
	out := NewToken{Token: secret, Name: t.Name, Role: string(t.Role)}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt
		out.ExpiresAt = &e
	}
	return &newTokenOutput{Body: out}, nil
}

func (s *server) revokeToken(ctx context.Context, in *tokenNameInput) (*struct{}, error) {
	actor, err := writer(ctx)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	as, err := s.accountsService()
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	if err := as.RevokeToken(ctx, actor, in.Name); err != nil {
		return nil, s.fail(ctx, err, "path")
	}
	return nil, nil
}
