package telemetry_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/capf-server/capf/internal/telemetry"
)

// alertRulesFile is docs/prometheus-alerts.yml, from this package.
const alertRulesFile = "../../docs/prometheus-alerts.yml"

// ruleFile is the shape of a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// names records the metric names registered on it.
type names map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (n names) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			n[m[1]] = true
		}
	}
	return nil
}
func (n names) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = n.Register(c)
	}
}
func (n names) Unregister(prometheus.Collector) bool { return false }

var capfMetric = regexp.MustCompile(`\bcapf_[a-z0-9_]+`)

// TestAlertRules parses the shipped alert rules strictly and checks each
// rule is complete and names only metrics capf exports (a renamed metric
// would leave an alert that never fires); promtool checks them too when
// it is installed.
func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	exported := names{}
	telemetry.New(exported)
	var alerts, used []string
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: a name and rules are required", g.Name)
		}
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: alert, expr and a summary are required", r.Alert)
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"info", "warning", "critical"}, s) {
				t.Errorf("rule %s: severity %q", r.Alert, s)
			}
			for _, m := range capfMetric.FindAllString(r.Expr, -1) {
				base := m
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suffix); ok && exported[b] {
						base = b
					}
				}
				if !exported[base] {
					t.Errorf("rule %s uses %s, which capf does not export", r.Alert, m)
				}
				used = append(used, base)
			}
		}
	}
	for _, want := range []string{"capf_lscs_expiring", "capf_lsc_renewals_armed_total", "capf_lsc_renewals_completed_total", "capf_sessions_total"} {
		if !slices.Contains(used, want) {
			t.Errorf("no rule uses %s", want)
		}
	}
	if len(alerts) != len(slices.Compact(slices.Sorted(slices.Values(alerts)))) {
		t.Errorf("alert names repeat: %v", alerts)
	}
	if path, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(path, "check", "rules", alertRulesFile).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	}
}
