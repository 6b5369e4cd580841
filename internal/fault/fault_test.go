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
