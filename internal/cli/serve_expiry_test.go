package cli

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestServeExportsExpiryMetrics: serve counts the expiring LSCs as it
// starts (the count time is set, not 0) and exports the renewal counters
// on /metrics.
func TestServeExportsExpiryMetrics(t *testing.T) {
	data := initData(t)
	out, stop := startServe(t, data, "--listen", "127.0.0.1:0", "--admin-listen", "", "--metrics-listen", "127.0.0.1:0")
	m := regexp.MustCompile(`metrics: +(http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no metrics address in:\n%s", out.String())
	}
	scrape := func() string {
		t.Helper()
		res, err := http.Get(m[1])
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	counted := regexp.MustCompile(`(?m)^capf_lscs_expiring_counted_timestamp_seconds [1-9]`)
	eventually(t, "serve counts the expiring LSCs at start", func() bool { return counted.MatchString(scrape()) })
	body := scrape()
	for _, want := range []string{`capf_lscs_expiring{within="30d"} 0`, `capf_lscs_expiring{within="7d"} 0`,
		"capf_lsc_renewals_armed_total 0", "capf_lsc_renewals_completed_total 0"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code := stop(); code != ExitOK {
		t.Fatalf("serve exit %d", code)
	}
}
