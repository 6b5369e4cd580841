package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/capf-server/capf/internal/account"
	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/fault"
	"github.com/capf-server/capf/internal/webauth"
)

// liveStatus is what the live status stream sends of a device: its
// Operation Status, LSC and last contact, the read-only fields of Phone
// Configuration.
type liveStatus struct {
	Name           string `json:"name"`
	Status         string `json:"status"`
	StatusClass    string `json:"status_class"`
	Operation      string `json:"operation"`
	OperationLabel string `json:"operation_label"`
	LSCStatus      string `json:"lsc_status"`
	LSCSerial      string `json:"lsc_serial,omitempty"`
	LSCIssuer      string `json:"lsc_issuer,omitempty"`
	LSCValidUntil  string `json:"lsc_valid_until,omitempty"`
	// The phone's last contact, when one is on record.
	ContactAt      string `json:"contact_at,omitempty"`
	ContactRemote  string `json:"contact_remote,omitempty"`
	ContactOutcome string `json:"contact_outcome,omitempty"` // in words
	ContactClass   string `json:"contact_class,omitempty"`
	ContactReason  string `json:"contact_reason,omitempty"`
}

func (u *ui) liveOf(d device.Device) liveStatus {
	ls := liveStatus{
		Name: d.Name, Status: d.Status, StatusClass: statusClass(d.Status), Operation: string(d.Operation),
		OperationLabel: d.Operation.Label(), LSCStatus: d.LSCState(u.o.Devices.Now()),
	}
	if d.LSC != nil {
		ls.LSCSerial, ls.LSCIssuer, ls.LSCValidUntil = d.LSC.Serial, d.LSC.Issuer, u.when(d.LSC.NotAfter)
	}
	if c := d.LastContact; !c.IsZero() {
		ls.ContactAt, ls.ContactRemote, ls.ContactReason = u.when(c.At), c.Remote, c.Reason
		ls.ContactOutcome, ls.ContactClass = contactLabel(c.Outcome), contactClass(c.Outcome)
	}
	return ls
}

// phoneEvents is the live status of one phone as server-sent events: an
// event "status" at once and whenever the device's status or LSC changes.
// The server polls the device every EventInterval; the stream ends when
// the client goes, when the device is removed, when its session ends
// (checked every SessionRecheck), or after EventMaxAge (the browser's
// EventSource then reconnects and is authenticated again). A session
// holding StreamsPerSession streams, or the UI holding MaxStreams, is
// refused another with 429 (EventSource does not retry it).
func (u *ui) phoneEvents(w http.ResponseWriter, r *http.Request, p account.Principal) {
	ctx := r.Context()
	d, err := u.o.Devices.Get(ctx, r.PathValue("name"))
	if err != nil {
		u.fail(w, r, p, err)
		return
	}
	release, full := u.streams.acquire(p)
	if full != "" {
		msg := fmt.Sprintf("this session already has %d live status streams open: close a phone page", u.o.StreamsPerSession)
		if full == "total" {
			msg = fmt.Sprintf("the server already has %d live status streams open: try again later", u.o.MaxStreams)
		}
		w.Header().Set("Retry-After", "30")
		u.fail(w, r, p, fault.New(fault.Throttled, "%s", msg))
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(ls liveStatus) bool {
		b, err := json.Marshal(ls)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	last := u.liveOf(d)
	if _, err := fmt.Fprint(w, "retry: 3000\n\n"); err != nil || !send(last) {
		return
	}
	tick := time.NewTicker(u.o.EventInterval)
	defer tick.Stop()
	end := time.NewTimer(u.o.EventMaxAge)
	defer end.Stop()
	recheck := time.NewTicker(u.o.SessionRecheck)
	defer recheck.Stop()
	name, lastWrite := d.Name, time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-recheck.C:
			if u.o.Sessions == nil {
				continue
			}
			if err := webauth.Recheck(ctx, u.o.Sessions, r, p); err != nil {
				if ctx.Err() == nil {
					u.log.Debug("webui: live status ends with its session", "device", name, "account", p.Name, "err", err)
				}
				return
			}
			continue
		case <-tick.C:
		}
		d, err := u.o.Devices.Get(ctx, name)
		if err != nil {
			if ctx.Err() == nil {
				u.log.Debug("webui: live status ends", "device", name, "err", err)
			}
			return
		}
		cur := u.liveOf(d)
		switch {
		case cur != last:
			if !send(cur) {
				return
			}
			last, lastWrite = cur, time.Now()
		case time.Since(lastWrite) >= 15*time.Second:
			// A comment now and then finds a client that went away.
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			lastWrite = time.Now()
		}
	}
}
