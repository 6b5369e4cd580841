package overview

import (
	"context"
	"time"
)

// NoticeKind names what a notice is about.
type NoticeKind string

// The notices.
const (
	// NoticeDeactivated: the service is deactivated and refuses phones.
	NoticeDeactivated NoticeKind = "deactivated"
	// NoticeWindowClosed: no maintenance window is open, so phones with a
	// pending operation are told to retry later.
	NoticeWindowClosed NoticeKind = "window-closed"
)

// Notice is something about the whole service that stops phones from
// enrolling right now, as the dashboard and the phone list show it.
type Notice struct {
	Kind NoticeKind
	// NextOpen is, for NoticeWindowClosed, when the next window opens;
	// zero when none is known. In is how long until then.
	NextOpen time.Time
	In       time.Duration
}

// Text is the notice in words, times in loc.
func (n Notice) Text(loc *time.Location) string {
	switch n.Kind {
	case NoticeDeactivated:
		return "The CAPF service is deactivated: phones are refused until it is activated (Serviceability > Service Activation)."
	case NoticeWindowClosed:
		text := "No maintenance window is open: phones with a pending operation are told to retry later."
		if !n.NextOpen.IsZero() {
			text += " The next window opens " + n.NextOpen.In(loc).Format("Mon 2006-01-02 15:04 MST") + " (in " + n.In.Round(time.Minute).String() + ")."
		}
		return text
	}
	return string(n.Kind)
}

// Notices says what stops phones from enrolling right now: the service
// deactivated, or no maintenance window open (with when the next opens).
// A failure to read the activation is logged and gives no notice: the
// notices inform, they must not take a page down.
func (c *Composer) Notices(ctx context.Context) []Notice {
	return c.notices(ctx, c.o.Clock())
}

func (c *Composer) notices(ctx context.Context, now time.Time) []Notice {
	ns := []Notice{}
	if c.o.Activation != nil {
		a, err := c.o.Activation.Activation(ctx)
		if err != nil {
			c.log.Warn("overview: read the service activation for the notices", "err", err)
		} else if !a.Active {
			ns = append(ns, Notice{Kind: NoticeDeactivated})
		}
	}
	if c.o.Windows == nil {
		return ns
	}
	w := c.o.Windows()
	if w == nil || w.Open(now) {
		return ns
	}
	n := Notice{Kind: NoticeWindowClosed}
	if next := w.NextOpen(now); next.After(now) {
		n.NextOpen, n.In = next, next.Sub(now)
	}
	return append(ns, n)
}
