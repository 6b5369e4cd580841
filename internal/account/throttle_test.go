package account

import (
	"fmt"
	"testing"
	"time"
)

func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                "192.0.2.1",
		"192.0.2.1:443":            "192.0.2.1",
		"[2001:db8:1:2:3::4]:8443": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9":     "2001:db8:1:2::/64",
		"::ffff:192.0.2.1":         "192.0.2.1",
		"not an address":           "not an address",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestThrottleTablesStayBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var a addrThrottle
	var g ghostThrottle
	for i := range maxAddrEntries + 500 {
		a.reserve(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
		g.reserve(fmt.Sprintf("name%d", i), now)
	}
	if len(a.fail) > maxAddrEntries || len(g.m) > maxAddrEntries {
		t.Errorf("tables hold %d and %d entries, want at most %d", len(a.fail), len(g.m), maxAddrEntries)
	}
	// A key at its budget stays refused while new keys come and go.
	for range AddrFailures {
		a.reserve("192.0.2.1", now)
	}
	if _, ok := a.reserve("192.0.2.1", now.Add(time.Minute)); ok {
		t.Error("a key past its budget was let through")
	}
	if _, ok := a.reserve("192.0.2.1", now.Add(AddrWindow+time.Second)); !ok {
		t.Error("a key was still refused after its window")
	}
}
