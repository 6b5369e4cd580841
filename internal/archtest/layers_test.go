package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/capf-server/capf/internal/"

// allowed lists, for each package, the internal packages it may import
// directly. A package not listed here fails the test, so a new package must
// take a stand.
var allowed = map[string][]string{
	"wire":           {},
	"fault":          {},
	"config":         {"capflist", "fault", "schedule"},
	"capflist":       {"fault"},
	"datadir":        {"ca", "config", "fault"},
	"schedule":       {},
	"telemetry":      {"session", "device"},
	"adminhttp":      {"fault", "ratelog"},
	"bench":          {"*"},
	"device":         {"capflist", "fault", "safetext"},
	"ca":             {"fault", "atomicfile", "certserial", "keyref"},
	"certserial":     {},
	"atomicfile":     {"fault"},
	"auth":           {"wire", "device", "fault"},
	"session":        {"wire", "device", "ca", "auth", "fault", "safetext"},
	"server":         {"session", "wire", "safetext", "ratelog"},
	"ratelog":        {},
	"safetext":       {},
	"notify":         {"fault", "safetext"},
	"fdlimit":        {},
	"tcpbind":        {},
	"sdnotify":       {},
	"contact":        {"device"},
	"store":          {"account", "caset", "cluster", "datadir", "dbdump", "device", "fault", "keys", "lease", "lsc", "store/postgres", "store/sqlite", "system"},
	"store/sqlite":   {"account", "caset", "cluster", "dbdump", "device", "fault", "keys", "lease", "lsc", "system"},
	"store/postgres": {"account", "caset", "cluster", "dbdump", "device", "fault", "keys", "lease", "lsc", "system"},
	"dbdump":         {},
	"backup":         {"dbdump", "fault"},
	// Only tests import pgtest (see TestBackendsBehindTheSeam).
	"store/postgres/pgtest": {},
	"store/storetest":       {"account", "ca", "caset", "cluster", "device", "fault", "kek", "keys", "lease", "lsc", "system"},
	"kek":                   {"fault"},
	"keys":                  {"device", "fault", "kek"},
	"caset":                 {"ca", "device", "fault", "keys"},
	// Only tests import casettest (in-memory CA key storage for the edges).
	"caset/casettest": {"ca", "caset", "device", "fault"},
	"lease":           {"fault"},
	"lsc":             {"device", "fault"},
	"revocation":      {"fault", "lsc", "atomicfile"},
	"cluster":         {"device", "fault", "lease"},
	"report":          {"device", "fault"},
	"capfd":           {"device", "fault", "safetext"},
	"phonesim":        {"wire"},
	"trust":           {"fault", "atomicfile", "certserial", "keyref"},
	"trustfile":       {"atomicfile", "config", "device", "fault", "trust"},
	"cli":             {"*"},
	"apiclient":       {"device", "fault", "lsc", "system", "view"},
	"e2e":             {"*"},
	"archtest":        {},
	"view":            {"device", "lsc"},
	"overview":        {"capflist", "device", "fault", "lsc", "system"},
	"account":         {"device", "fault", "ratelog"},
	"webauth":         {"account", "device", "fault", "ratelog", "safetext"},
	"system":          {"device", "fault", "config", "atomicfile"},
	"admintls":        {"fault", "atomicfile", "certserial", "keyref"},
	"api":             {"account", "ca", "caset", "device", "fault", "lsc", "overview", "report", "system", "trustfile", "view", "webauth"},
	"webui":           {"account", "ca", "caset", "device", "fault", "lsc", "overview", "report", "safetext", "system", "trustfile", "webauth"},

	// Key references: files and PKCS #11 tokens. Only tests import
	// keyreftest (a SoftHSM2 token for them).
	"keyref":            {"fault"},
	"keyref/keyreftest": {},
}

// backends are the packages of the database backends: only the seam,
// store, opens them, so nothing above it names a backend (tests and the
// benchmark harness may).
var backends = []string{"store/sqlite", "store/postgres", "store/postgres/pgtest"}

// backendUsers lists the packages whose production code may import a
// backend.
var backendUsers = map[string]bool{"store": true, "bench": true}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func TestLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "github.com/capf-server/capf/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ImportPath, module) {
			continue
		}
		seen++
		name := strings.TrimPrefix(p.ImportPath, module)
		rule, ok := allowed[name]
		if !ok {
			t.Errorf("package %s has no layering rule in allowed", name)
			continue
		}
		if !backendUsers[name] && !strings.HasPrefix(name, "store/") {
			for _, imp := range p.Imports {
				for _, b := range backends {
					if imp == module+b {
						t.Errorf("%s imports the backend %s: open the database through internal/store", name, b)
					}
				}
			}
		}
		if len(rule) == 1 && rule[0] == "*" {
			continue
		}
		ok2 := map[string]bool{}
		for _, r := range rule {
			ok2[r] = true
		}
		var bad []string
		// Test files may use more (storetest, fakes); production imports
		// must follow the rule.
		for _, imp := range p.Imports {
			if dep, internal := strings.CutPrefix(imp, module); internal && !ok2[dep] {
				bad = append(bad, dep)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s imports %v; allowed: %v", name, bad, rule)
		}
	}
	if seen < 10 {
		t.Fatalf("only %d packages listed", seen)
	}
}
