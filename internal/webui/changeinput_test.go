package webui_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
)

// TestPhoneFormMarksEveryBadField: the one parser of device changes names
// every wrong field, and the phone page shows each message next to its own
// field (from the error's field, not its text), changing nothing.
func TestPhoneFormMarksEveryBadField(t *testing.T) {
	e := newEnv(t)
	e.add(device.Device{Name: "SEP000000000001", Description: "lobby"})
	d, _ := e.devices.Get(context.Background(), "SEP000000000001")
	f := phoneForm(d)
	f.Set("description", "changed")
	f.Set("auth_string", "12")
	f.Set("key", "rsa9")
	f.Set("deadline", "tomorrow")
	w := e.post("/phones/SEP000000000001", "admin", f)
	wantStatus(t, w, http.StatusUnprocessableEntity)
	body := w.Body.String()
	fields := strings.Split(body, `<div class="field">`)
	for id, msg := range map[string]string{
		"auth_string": "must be 4 to 10 digits",
		"key":         "want rsa512",
		"deadline":    "want a date and time",
	} {
		// The message is in the field's own block, which is marked invalid.
		found := false
		for _, block := range fields {
			if strings.Contains(block, `id="`+id+`"`) {
				found = true
				re := regexp.MustCompile(`(?s)id="` + id + `"[^>]*aria-invalid="true".*<p class="field-error" role="alert">[^<]*` + regexp.QuoteMeta(msg))
				if !re.MatchString(block) {
					t.Errorf("no message %q next to %s:\n%s", msg, id, block)
				}
			}
		}
		if !found {
			t.Errorf("no field %s:\n%s", id, body)
		}
	}
	if got, _ := e.devices.Get(context.Background(), "SEP000000000001"); got.Description != "lobby" {
		t.Errorf("a refused save changed the device: %+v", got)
	}
}
