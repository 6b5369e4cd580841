package webui_test

import (
	"encoding/xml"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/capf-server/capf/internal/device"
	"github.com/capf-server/capf/internal/webui"
)

// snippetOf returns the configuration snippet of a phone page, unescaped.
func snippetOf(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<pre id="phone-config" class="mono">(.*?)</pre>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no snippet on the phone page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

// TestPhonePageCAPFServers: with capf_servers set, the phone page's
// snippet lists every server in order, each without a port at the port
// this node listens on, and says which servers phones try.
func TestPhonePageCAPFServers(t *testing.T) {
	servers := []string{"capf1.example.net:3804", "capf2.example.net", "192.0.2.3:5061"}
	e := newEnv(t, func(o *webui.Options) {
		o.Phones = func() (string, string) { return "this-node.example.net", "13804" }
		o.Servers = func() []string { return servers }
	})
	e.add(device.Device{Name: "SEP001122334455", SecurityProfile: device.Authenticated, AuthMode: device.AuthLSC})
	body := e.get("/phones/SEP001122334455", "viewer").Body.String()
	var dev struct {
		List []struct {
			Port string `xml:"phonePort"`
			Host string `xml:"processNodeName"`
		} `xml:"capfList>capf"`
	}
	snippet := snippetOf(t, body)
	if err := xml.Unmarshal([]byte("<device>"+snippet+"</device>"), &dev); err != nil {
		t.Fatalf("the snippet inside <device> is not well-formed: %v\n%s", err, snippet)
	}
	want := [][2]string{{"capf1.example.net", "3804"}, {"capf2.example.net", "13804"}, {"192.0.2.3", "5061"}}
	if len(dev.List) != len(want) {
		t.Fatalf("capfList %+v, want %v", dev.List, want)
	}
	for i, w := range want {
		if dev.List[i].Host != w[0] || dev.List[i].Port != w[1] {
			t.Errorf("capf %d = %+v, want %v", i+1, dev.List[i], w)
		}
	}
	if strings.Contains(snippet, "this-node.example.net") {
		t.Error("the snippet names this node although capf_servers lists the servers")
	}
	if !strings.Contains(body, `Phones try, in order: <code>capf1.example.net:3804</code>, <code>capf2.example.net:13804</code>, <code>192.0.2.3:5061</code>`) {
		t.Error("the page does not say which servers phones try, in order")
	}

	// An entry without a port that lands on another entry's port is the
	// same server twice: the page says so instead of a snippet.
	servers = []string{"capf1.example.net:13804", "capf1.example.net"}
	body = e.get("/phones/SEP001122334455", "viewer").Body.String()
	if strings.Contains(body, `id="phone-config"`) || !strings.Contains(body, "capf_servers: entry 2") {
		t.Errorf("a duplicate after the default port is not explained:\n%s", body)
	}

	// Empty: this node alone, as before.
	servers = nil
	snippet = snippetOf(t, e.get("/phones/SEP001122334455", "viewer").Body.String())
	if !strings.Contains(snippet, "<processNodeName>this-node.example.net</processNodeName>") || strings.Count(snippet, "<capf>") != 1 {
		t.Errorf("without capf_servers the snippet is not this node alone:\n%s", snippet)
	}
}
