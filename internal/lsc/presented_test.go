package lsc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

type getter map[string]Record

func (g getter) GetCertificate(_ context.Context, serial string) (Record, error) {
	if serial == "DEAD" {
		return Record{}, errors.New("database is locked")
	}
	r, ok := g[serial]
	if !ok {
		return Record{}, fault.NotFoundf("certificate %s not found", serial)
	}
	return r, nil
}

// TestRevocationsLSCRevoked: a revocation on record, whatever its reason,
// is reported with its reason, time and author; an unrevoked, unknown or
// other CA's serial is not; a read failure is an error, never "valid".
func TestRevocationsLSCRevoked(t *testing.T) {
	at := time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC)
	rec := func(kid string, revoked bool, why Reason, by string) Record {
		r := Record{Issuance: device.Issuance{IssuerKeyID: kid}, Reason: why, RevokedBy: by}
		if revoked {
			r.RevokedAt = at
		}
		return r
	}
	g := getter{
		"0A": rec("aa01", true, ReasonKeyCompromise, "admin:alice"),
		"0B": rec("aa01", true, ReasonSuperseded, SupersededBy("0C", 7)),
		"0C": rec("aa01", false, 0, ""),
		"0D": rec("", true, ReasonCessationOfOperation, DeletedBy(8)),
	}
	tests := []struct {
		serial, kid string
		want        string
		revoked     bool
		err         bool
	}{
		{"0A", "AA01", "keyCompromise since 2026-12-04T05:00:00Z (admin:alice)", true, false},
		{"0B", "aa01", "superseded since 2026-12-04T05:00:00Z (superseded by LSC 0C (attempt 7))", true, false},
		{"0C", "aa01", "", false, false},
		{"0D", "bb02", "cessationOfOperation since 2026-12-04T05:00:00Z (deleted from the phone (attempt 8))", true, false},
		{"0A", "bb02", "", false, false}, // another CA's certificate with the same serial
		{"0E", "aa01", "", false, false}, // not in the inventory
		{"DEAD", "aa01", "", false, true},
	}
	for _, tt := range tests {
		why, revoked, err := Revocations{Store: g}.LSCRevoked(context.Background(), tt.serial, tt.kid)
		if why != tt.want || revoked != tt.revoked || (err != nil) != tt.err {
			t.Errorf("LSCRevoked(%s, %s) = %q, %v, %v; want %q, %v, error %v", tt.serial, tt.kid, why, revoked, err, tt.want, tt.revoked, tt.err)
		}
	}
}
