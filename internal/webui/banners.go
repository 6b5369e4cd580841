package webui

import (
	"context"
	"time"
)

// banner is a notice about the whole service shown above a page's content.
type banner struct {
	ID   string // the element's id
	Text string
}

// banners says what stops phones from enrolling right now: the service
// deactivated, or no maintenance window open (with when the next opens).
// A failure to read the activation is logged and shows no banner.
func (u *ui) banners(ctx context.Context) []banner {
	var bs []banner
	if u.o.System != nil {
		a, err := u.o.System.Activation(ctx)
		if err != nil {
			u.log.Warn("webui: read the service activation for the banner", "err", err)
		} else if !a.Active {
			bs = append(bs, banner{ID: "banner-deactivated",
				Text: "The CAPF service is deactivated: phones are refused until it is activated (Serviceability > Service Activation)."})
		}
	}
	if u.o.Windows == nil {
		return bs
	}
	w := u.o.Windows()
	now := u.o.Devices.Now()
	if w == nil || w.Open(now) {
		return bs
	}
	text := "No maintenance window is open: phones with a pending operation are told to retry later."
	if next := w.NextOpen(now); next.After(now) {
		text += " The next window opens " + next.In(u.loc).Format("Mon 2006-01-02 15:04 MST") + " (in " + next.Sub(now).Round(time.Minute).String() + ")."
	}
	return append(bs, banner{ID: "banner-window", Text: text})
}
