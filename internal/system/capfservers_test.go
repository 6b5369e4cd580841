package system_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/system"
)

// TestCAPFServersParameter: capf_servers, set from the web UI's
// one-per-line form, is a fleet parameter stored with its audit event; a
// bad list is refused naming capf_servers and the entry, and changes and
// audits nothing.
func TestCAPFServersParameter(t *testing.T) {
	svc, st, _ := newService(t)
	web := device.Actor{Kind: device.ActorWeb, Name: "alice"}
	p := byName(mustParams(t, svc))["capf_servers"]
	if p.Type != system.TypeList || p.Restart || !reflect.DeepEqual(p.Value, []string{}) {
		t.Fatalf("capf_servers %+v: want an empty list, a fleet parameter", p)
	}
	v, err := system.ParseParamValue(p, "capf1.example:3804\r\ncapf2.example\n\n")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := svc.UpdateParameters(t.Context(), web, map[string]any{"capf_servers": v})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"capf1.example:3804", "capf2.example"}
	if got := byName(ps)["capf_servers"].Value; !reflect.DeepEqual(got, want) {
		t.Fatalf("capf_servers = %#v, want %q", got, want)
	}
	evs, err := st.ListAudit(t.Context(), device.AuditQuery{Target: system.AuditTargetParameters})
	if err != nil || len(evs) != 1 || evs[0].Actor != web || len(evs[0].Changes) != 1 ||
		evs[0].Changes[0].Field != "capf_servers" || evs[0].Changes[0].New != `["capf1.example:3804","capf2.example"]` {
		t.Fatalf("audit %+v, %v", evs, err)
	}

	for _, c := range []struct {
		name  string
		value any
		want  string
	}{
		{"six", []string{"a", "b", "c", "d", "e", "f"}, "capf_servers: 6 servers"},
		{"duplicate", []string{"a.example:1", "A.EXAMPLE:1"}, `capf_servers: entry 2 "A.EXAMPLE:1": the same server as entry 1`},
		{"bad-host", []string{"a.example", "a b"}, `capf_servers: entry 2 "a b"`},
		{"bad-port", []string{"a.example:70000"}, `port "70000": want a port number from 1 to 65535`},
	} {
		t.Run("fail/"+c.name, func(t *testing.T) {
			_, err := svc.UpdateParameters(t.Context(), web, map[string]any{"capf_servers": c.value})
			if fault.KindOf(err) != fault.Invalid || fault.FieldOf(err) != "capf_servers" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v (field %q), want Invalid on capf_servers with %q", err, fault.FieldOf(err), c.want)
			}
		})
	}
	if got := byName(mustParams(t, svc))["capf_servers"].Value; !reflect.DeepEqual(got, want) {
		t.Errorf("a refused change changed capf_servers to %#v", got)
	}
	if evs, _ := st.ListAudit(t.Context(), device.AuditQuery{Target: system.AuditTargetParameters}); len(evs) != 1 {
		t.Errorf("%d audit events after refused changes, want 1", len(evs))
	}
}

func mustParams(t *testing.T, svc *system.Service) []system.Parameter {
	t.Helper()
	ps, err := svc.Parameters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
