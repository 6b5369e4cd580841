package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"22:00", "HH:MM-HH:MM"},
		{"Funday 01:00-02:00", `day "funday"`},
		{"Mon-Xyz 01:00-02:00", `day "xyz"`},
		{"25:00-26:00", "not a time of day"},
		{"1:00-2:00", "want HH:MM"},
		{"Mon Tue 01:00-02:00", "want [DAYS ]HH:MM-HH:MM"},
		{"24:00-01:00", "not a time of day"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := Parse([]string{tt.spec}, time.UTC)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) = %v, want error containing %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	// 2026-11-23 is a Monday.
	at := func(day int, hhmm string) time.Time {
		tm, _ := time.Parse("15:04", hhmm)
		return time.Date(2026, 11, 22+day, tm.Hour(), tm.Minute(), 0, 0, time.UTC)
	}
	tests := []struct {
		name  string
		specs []string
		t     time.Time
		open  bool
	}{
		{"no-windows-always-open", nil, at(1, "12:00"), true},
		{"daily-inside", []string{"01:00-05:00"}, at(3, "03:00"), true},
		{"daily-end-excluded", []string{"01:00-05:00"}, at(3, "05:00"), false},
		{"weekday-night-starts-monday", []string{"Mon-Fri 22:00-06:00"}, at(1, "23:30"), true},
		{"weekday-night-runs-into-tuesday", []string{"Mon-Fri 22:00-06:00"}, at(2, "05:59"), true},
		{"weekday-night-not-sunday-evening", []string{"Mon-Fri 22:00-06:00"}, at(0, "23:00"), false},
		{"weekday-night-saturday-morning", []string{"Mon-Fri 22:00-06:00"}, at(6, "02:00"), true},
		{"weekday-night-sunday-morning-closed", []string{"Mon-Fri 22:00-06:00"}, at(7, "02:00"), false},
		{"weekend-whole-day", []string{"Sat,Sun 00:00-24:00"}, at(6, "13:00"), true},
		{"weekend-not-monday", []string{"Sat,Sun 00:00-24:00"}, at(1, "13:00"), false},
		{"wrapping-range-fri-mon", []string{"Fri-Mon 12:00-13:00"}, at(7, "12:30"), true},
		{"several-windows", []string{"Mon 01:00-02:00", "Wed 01:00-02:00"}, at(3, "01:30"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, err := Parse(tt.specs, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if got := ws.Open(tt.t); got != tt.open {
				t.Errorf("Open(%s) = %v, want %v", tt.t.Format("Mon 15:04"), got, tt.open)
			}
		})
	}
}

func TestNextOpenAndZone(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tz data:", err)
	}
	ws, err := Parse([]string{"daily 02:00-04:00"}, berlin)
	if err != nil {
		t.Fatal(err)
	}
	// 00:30 UTC is 01:30 in Berlin in November: opens at 01:00 UTC.
	now := time.Date(2026, 11, 25, 0, 30, 0, 0, time.UTC)
	if ws.Open(now) {
		t.Fatal("open at 01:30 Berlin time")
	}
	if got := ws.NextOpen(now); !got.Equal(time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("NextOpen = %s", got.UTC())
	}
	var none *Windows
	if !none.Open(now) || !none.NextOpen(now).Equal(now) || none.String() != "always" {
		t.Error("a nil set must always be open")
	}
}
