package sqlite

import (
	"strings"
	"time"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
)

// hasLSC is the condition for a device that holds an LSC.
const hasLSC = `lsc_serial IS NOT NULL`

// lscRevoked is the condition for a device whose current LSC is on the
// revocation records (device.LSCRevoked); the issuance is found by its
// primary key.
const lscRevoked = `EXISTS (SELECT 1 FROM issuances r WHERE r.serial = devices.lsc_serial AND r.revoked_at IS NOT NULL)`

// buildWhere returns the WHERE clause (with a leading space, or "") and its
// arguments for validated filters, evaluated at now. Column names come from
// textColumns only; every value is a placeholder argument.
func buildWhere(filters []device.Filter, now time.Time) (string, []any, error) {
	var (
		conds []string
		args  []any
	)
	for _, f := range filters {
		if col, ok := textColumns[f.Field]; ok {
			switch f.Match {
			case device.MatchEmpty:
				conds = append(conds, "("+col+" IS NULL OR "+col+" = '')")
			case device.MatchNotEmpty:
				conds = append(conds, "("+col+" IS NOT NULL AND "+col+" <> '')")
			default:
				pattern := likeEscaper.Replace(f.Value)
				switch f.Match {
				case device.MatchBeginsWith:
					pattern += "%"
				case device.MatchContains:
					pattern = "%" + pattern + "%"
				case device.MatchEndsWith:
					pattern = "%" + pattern
				case device.MatchEquals:
				default:
					return "", nil, fault.Invalidf("filter on %s: match %q is not supported", f.Field, f.Match)
				}
				conds = append(conds, col+` LIKE ? ESCAPE '\'`)
				args = append(args, pattern)
			}
			continue
		}
		switch f.Field {
		case device.FieldLSCStatus:
			switch f.Value {
			case device.LSCNone:
				conds = append(conds, "lsc_serial IS NULL")
			case device.LSCExpired:
				conds = append(conds, "("+hasLSC+" AND (lsc_not_after IS NULL OR lsc_not_after < ?) AND NOT "+lscRevoked+")")
				args = append(args, now.UnixMicro())
			case device.LSCValid:
				conds = append(conds, "("+hasLSC+" AND lsc_not_after >= ? AND NOT "+lscRevoked+")")
				args = append(args, now.UnixMicro())
			case device.LSCRevoked:
				conds = append(conds, "("+hasLSC+" AND "+lscRevoked+")")
			default:
				return "", nil, fault.Invalidf("filter on %s: value %q is not supported", f.Field, f.Value)
			}
		case device.FieldLSCExpires:
			if f.Match == device.MatchEmpty || f.Match == device.MatchNotEmpty {
				if f.Match == device.MatchEmpty {
					conds = append(conds, "lsc_serial IS NULL")
				} else {
					conds = append(conds, hasLSC)
				}
				continue
			}
			t, err := time.Parse(time.RFC3339, f.Value)
			if err != nil {
				return "", nil, fault.Invalidf("filter on %s: value %q is not an RFC 3339 time", f.Field, f.Value)
			}
			switch f.Match {
			case device.MatchBefore:
				conds = append(conds, "("+hasLSC+" AND lsc_not_after < ?)")
			case device.MatchAfter:
				conds = append(conds, "("+hasLSC+" AND lsc_not_after > ?)")
			default:
				return "", nil, fault.Invalidf("filter on %s: match %q is not supported", f.Field, f.Match)
			}
			args = append(args, t.UnixMicro())
		default:
			return "", nil, fault.Invalidf("filter: unknown field %q", f.Field)
		}
	}
	if len(conds) == 0 {
		return "", nil, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, nil
}
