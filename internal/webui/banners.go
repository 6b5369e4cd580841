package webui

import (
	"context"

	"github.com/capf-server/capf/internal/overview"
)

// banner is a notice about the whole service shown above a page's content.
type banner struct {
	ID   string // the element's id
	Text string
}

// banners says what stops phones from enrolling right now (the notices
// of the composition), times in the UI's zone.
func (u *ui) banners(ctx context.Context) []banner {
	if u.compose == nil {
		return nil
	}
	return u.bannersOf(u.compose.Notices(ctx))
}

// bannersOf renders notices as banners.
func (u *ui) bannersOf(ns []overview.Notice) []banner {
	var bs []banner
	for _, n := range ns {
		id := "banner-" + string(n.Kind)
		if n.Kind == overview.NoticeWindowClosed {
			id = "banner-window"
		}
		bs = append(bs, banner{ID: id, Text: n.Text(u.loc)})
	}
	return bs
}
