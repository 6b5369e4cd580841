// Package schedule parses and evaluates maintenance windows: the weekly
// times in which CAPF may start certificate operations, because many
// simultaneous operations disrupt call processing.
//
// A window is written "[DAYS ]HH:MM-HH:MM": DAYS is "daily" (the default),
// a day ("Mon"), a range ("Mon-Fri") or a list ("Sat,Sun"); the times are
// in the configured time zone; an end at or before the start runs past
// midnight into the next day ("Mon-Fri 22:00-06:00" opens Monday 22:00 and
// closes Tuesday 06:00); "24:00" is the end of the day.
package schedule

import (
	"fmt"
	"strings"
	"time"
)

// Window is one weekly interval.
type Window struct {
	Days  [7]bool // indexed by time.Weekday of the start
	Start int     // minutes after midnight
	End   int     // minutes after midnight; <= Start wraps to the next day
	Text  string
}

// Windows is a set of windows in one time zone. A nil or empty set is
// always open.
type Windows struct {
	loc     *time.Location
	windows []Window
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Parse reads windows written as described in the package comment. loc is
// the time zone they are in.
func Parse(specs []string, loc *time.Location) (*Windows, error) {
	if loc == nil {
		loc = time.Local
	}
	ws := &Windows{loc: loc}
	for _, spec := range specs {
		w, err := parseOne(spec)
		if err != nil {
			return nil, fmt.Errorf("window %q: %w", spec, err)
		}
		ws.windows = append(ws.windows, w)
	}
	return ws, nil
}

// Always reports whether the set places no restriction.
func (ws *Windows) Always() bool { return ws == nil || len(ws.windows) == 0 }

// String lists the windows and their time zone.
func (ws *Windows) String() string {
	if ws.Always() {
		return "always"
	}
	parts := make([]string, len(ws.windows))
	for i, w := range ws.windows {
		parts[i] = w.Text
	}
	return strings.Join(parts, ", ") + " (" + ws.loc.String() + ")"
}

func parseOne(spec string) (Window, error) {
	w := Window{Text: strings.TrimSpace(spec)}
	fields := strings.Fields(w.Text)
	var days, times string
	switch len(fields) {
	case 1:
		days, times = "daily", fields[0]
	case 2:
		days, times = fields[0], fields[1]
	default:
		return w, fmt.Errorf("want [DAYS ]HH:MM-HH:MM")
	}
	if err := parseDays(strings.ToLower(days), &w.Days); err != nil {
		return w, err
	}
	start, end, ok := strings.Cut(times, "-")
	if !ok {
		return w, fmt.Errorf("times %q: want HH:MM-HH:MM", times)
	}
	var err error
	if w.Start, err = parseClock(start, false); err != nil {
		return w, err
	}
	if w.End, err = parseClock(end, true); err != nil {
		return w, err
	}
	return w, nil
}

func parseDays(s string, days *[7]bool) error {
	if s == "daily" || s == "*" {
		for i := range days {
			days[i] = true
		}
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := dayNames[from]
		if !ok {
			return fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun or daily", from)
		}
		if !isRange {
			days[a] = true
			continue
		}
		b, ok := dayNames[to]
		if !ok {
			return fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun", to)
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func parseClock(s string, end bool) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); n != 2 || err != nil || len(s) != 5 {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	if h == 24 && m == 0 && end {
		return 24 * 60, nil
	}
	if h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("time %q is not a time of day", s)
	}
	return h*60 + m, nil
}

// Open reports whether t falls in a window; with no windows it is always
// open.
func (ws *Windows) Open(t time.Time) bool {
	if ws.Always() {
		return true
	}
	t = t.In(ws.loc)
	mins := t.Hour()*60 + t.Minute()
	today, yesterday := t.Weekday(), (t.Weekday()+6)%7
	for _, w := range ws.windows {
		if w.End > w.Start {
			if w.Days[today] && mins >= w.Start && mins < w.End {
				return true
			}
			continue
		}
		// Runs past midnight: the start day's evening or the next morning.
		if w.Days[today] && mins >= w.Start || w.Days[yesterday] && mins < w.End {
			return true
		}
	}
	return false
}

// NextOpen returns the first minute at or after t at which a window is
// open, searching a week ahead; t itself when open now.
func (ws *Windows) NextOpen(t time.Time) time.Time {
	if ws.Open(t) {
		return t
	}
	c := t.Truncate(time.Minute).Add(time.Minute)
	for end := t.Add(8 * 24 * time.Hour); c.Before(end); c = c.Add(time.Minute) {
		if ws.Open(c) {
			return c
		}
	}
	return t.Add(24 * time.Hour)
}
