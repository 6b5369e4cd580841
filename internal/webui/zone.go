package webui

import "time"

// zoneName names the zone every time of a page is shown in, and every
// date and time a form takes is read in: its IANA name ("Europe/Berlin",
// "UTC"), or, for a server whose zone has no name Go knows ("Local"), its
// abbreviation and offset now: "CET, UTC+01:00" ("UTC" when that is
// what it is).
func (u *ui) zoneName() string {
	if n := u.loc.String(); n != "Local" {
		return n
	}
	now := time.Now()
	if u.o.Devices != nil {
		now = u.o.Devices.Now()
	}
	abbr, off := now.In(u.loc).Zone()
	if abbr == "UTC" && off == 0 {
		return "UTC"
	}
	return abbr + ", UTC" + now.In(u.loc).Format("-07:00")
}
