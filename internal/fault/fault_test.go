package fault

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"plain-error-is-internal", errors.New("boom"), Internal},
		{"direct", NotFoundf("device %q", "SEP1"), NotFound},
		{"wrapped", fmt.Errorf("load: %w", Invalidf("bad")), Invalid},
		{"nil-is-internal", nil, Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFieldOf(t *testing.T) {
	err := fmt.Errorf("change device X: %w", InvalidField("auth_string", "want 4 to 10 digits"))
	if got := FieldOf(err); got != "auth_string" {
		t.Errorf("FieldOf = %q, want auth_string", got)
	}
	if p := ProblemOf(err); p.Field != "auth_string" || p.Status != 422 {
		t.Errorf("ProblemOf = %+v, want field auth_string and 422", p)
	}
	if got := FieldOf(Invalidf("no field")); got != "" {
		t.Errorf("FieldOf(no field) = %q", got)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Error("a field error is not Invalid")
	}
}

func TestIsMatchesKind(t *testing.T) {
	err := fmt.Errorf("ctx: %w", Conflictf("device exists"))
	if !errors.Is(err, ErrConflict) {
		t.Error("errors.Is(conflict, ErrConflict) = false")
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("errors.Is(conflict, ErrNotFound) = true")
	}
	if got := err.Error(); got != "ctx: device exists" {
		t.Errorf("message = %q", got)
	}
}

func TestProblemOf(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantDetail string
	}{
		{"invalid", fmt.Errorf("change device X: %w", Invalidf("key %q: want rsa2048", "x")), 422, `key "x": want rsa2048`},
		{"stacked-chain-says-the-rule-once", fmt.Errorf(`change device X: update device "X": %w`,
			InvalidField("auth_mode", "a phone in authenticated security mode cannot use By Authentication String")), 422,
			"a phone in authenticated security mode cannot use By Authentication String"},
		{"not-found", NotFoundf("device SEP1 not found"), 404, "device SEP1 not found"},
		{"conflict", Conflictf("exists"), 409, "exists"},
		{"unauthorized", New(Unauthorized, "bad token"), 401, "bad token"},
		{"unavailable", New(Unavailable, "busy"), 503, "busy"},
		{"forbidden", New(Forbidden, "viewer role"), 403, "viewer role"},
		{"throttled", New(Throttled, "wait 30s"), 429, "wait 30s"},
		{"internal-hidden", fmt.Errorf("disk /var/lib/capf/capf.db: I/O error"), 500, "internal error; see the server log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ProblemOf(tt.err)
			if p.Status != tt.wantStatus || p.Detail != tt.wantDetail || p.Title == "" {
				t.Errorf("ProblemOf = %+v, want %d %q", p, tt.wantStatus, tt.wantDetail)
			}
		})
	}
}

func TestMessageAndChained(t *testing.T) {
	rule := InvalidField("auth_string", "must be 4 to 10 digits")
	tests := []struct {
		name    string
		err     error
		want    string
		chained bool
	}{
		{"nil", nil, "", false},
		{"bare-rule", rule, "must be 4 to 10 digits", false},
		{"wrapped-twice", fmt.Errorf("change device X: %w", fmt.Errorf(`update device "X": %w`, rule)), "must be 4 to 10 digits", true},
		{"joined", errors.Join(errors.New("context"), rule), "must be 4 to 10 digits", true},
		{"no-kind", fmt.Errorf("open db: %w", errors.New("locked")), "open db: locked", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Message(tt.err); got != tt.want {
				t.Errorf("Message = %q, want %q", got, tt.want)
			}
			if got := Chained(tt.err); got != tt.chained {
				t.Errorf("Chained = %v, want %v", got, tt.chained)
			}
		})
	}
}
