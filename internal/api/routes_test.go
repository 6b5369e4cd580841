package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// samplePath fills a route's path parameters with values that exist in no
// store, so that a request reaches the route (never a 404 of the router).
func samplePath(path string) string {
	r := strings.NewReplacer("{name}", "SEP00000000FFFF", "{index}", "0", "{id}", "1")
	return Prefix + r.Replace(path)
}

// sampleBody is a syntactically valid body for a route, so that the
// authorization, not the body's validation, decides.
func sampleBody(rt route) (any, []string) {
	switch rt.Method + " " + rt.Path {
	case "POST /devices":
		return map[string]any{"name": "SEP00000000FFFF"}, nil
	case "PATCH /devices/{name}":
		return map[string]any{"description": "x"}, nil
	case "POST /bulk":
		return map[string]any{"criteria": map[string]any{"name": "SEP"}, "change": map[string]any{"operation": "install"}}, nil
	case "POST /devices/reset":
		return map[string]any{"criteria": map[string]any{"name": "SEP"}}, nil
	case "POST /import":
		return "Device Name\nSEP00000000FFFF\n", []string{"text/csv"}
	case "PATCH /parameters":
		return map[string]any{"values": map[string]any{"certificate_validity_days": 30}}, nil
	case "PUT /service":
		return map[string]any{"active": false}, nil
	case "POST /accounts":
		return map[string]any{"name": "eve", "role": "admin", "password": "correct horse"}, nil
	case "PATCH /accounts/{name}":
		return map[string]any{"role": "admin"}, nil
	case "POST /tokens":
		return map[string]any{"name": "ci", "role": "admin", "expires": "90d"}, nil
	}
	return nil, nil
}

// The document lists exactly the routes the API registers, and each of
// them is served.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	e := newEnv(t)
	w := e.do(asNobody, http.MethodGet, OpenAPIPath, nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/openapi+json" {
		t.Fatalf("GET %s: %d %q", OpenAPIPath, w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			SecuritySchemes map[string]any `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != Prefix {
		t.Errorf("servers %+v, want one at %s", doc.Servers, Prefix)
	}
	if len(doc.Components.SecuritySchemes) != 2 {
		t.Errorf("security schemes %v, want bearer and session", doc.Components.SecuritySchemes)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	registered := map[string]bool{}
	for _, rt := range e.srv.routes {
		key := rt.Method + " " + rt.Path
		registered[key] = true
		if !documented[key] {
			t.Errorf("route %s is served but not in the document", key)
		}
	}
	for key := range documented {
		if !registered[key] {
			t.Errorf("the document lists %s, which is not registered", key)
		}
	}
	checkRefs(t, w.Body.Bytes())
	// Every route of the design is there.
	for _, key := range []string{
		"GET /devices", "POST /devices", "GET /devices/{name}", "PATCH /devices/{name}", "DELETE /devices/{name}",
		"GET /devices/{name}/history", "GET /devices/{name}/certificates", "GET /devices/{name}/certificates/{index}",
		"POST /bulk", "GET /campaigns", "GET /campaigns/{id}", "POST /campaigns/{id}/cancel", "POST /import", "GET /report",
		"GET /capf-certificate", "GET /capf-certificate/file", "GET /parameters", "PATCH /parameters",
		"GET /service", "PUT /service", "GET /accounts", "POST /accounts", "PATCH /accounts/{name}",
		"DELETE /accounts/{name}", "GET /tokens", "POST /tokens", "DELETE /tokens/{name}", "GET /audit", "GET /dashboard",
		"GET /certificates", "GET /certificates/{serial}", "POST /certificates/{serial}/revoke",
		"POST /devices/{name}/reset", "POST /devices/reset",
		"GET /devices/{name}/phone-config", "GET /trust-file",
		"GET /ca-set", "POST /ca-set", "POST /ca-set/{id}/activate", "POST /ca-set/{id}/retire",
	} {
		if !registered[key] {
			t.Errorf("route %s is missing", key)
		}
	}
	if len(registered) != 48 {
		t.Errorf("%d routes registered, want the design's 48", len(registered))
	}
	// Something the API does not serve is a problem too.
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/nothing", http.StatusNotFound, ""},
		{"GET", "/devices/SEP001122334455/nothing", http.StatusNotFound, ""},
		{"PUT", "/devices", http.StatusMethodNotAllowed, "GET, POST"},
		{"POST", "/devices/SEP001122334455", http.StatusMethodNotAllowed, "GET, PATCH, DELETE"},
	} {
		w := e.do(asAdmin, tt.method, Prefix+tt.path, nil)
		problem(t, w, tt.status)
		if got := w.Header().Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}

// Without a principal every route is 401, with a Bearer challenge, and
// changes nothing.
func TestEveryRouteNeedsAPrincipal(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.srv.routes {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			body, ct := sampleBody(rt)
			w := e.do(asNobody, rt.Method, samplePath(rt.Path), body, ct...)
			problem(t, w, http.StatusUnauthorized)
			if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
			}
		})
	}
	if len(e.accounts.calls) != 0 || len(e.system.actors) != 0 || len(e.campaigns.changes) != 0 {
		t.Errorf("an anonymous request reached a service: %v %v %v", e.accounts.calls, e.system.actors, e.campaigns.changes)
	}
	if _, err := e.devices.Get(t.Context(), "SEP00000000FFFF"); err == nil {
		t.Error("an anonymous POST /devices or import created a device")
	}
}

// A viewer gets 403 on every write and on accounts and tokens, and may
// read everything else.
func TestViewerReadsOnly(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.srv.routes {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			body, ct := sampleBody(rt)
			w := e.do(asViewer, rt.Method, samplePath(rt.Path), body, ct...)
			if rt.Access == readAccess {
				if w.Code == http.StatusForbidden || w.Code == http.StatusUnauthorized {
					t.Errorf("a viewer may read %s: got %d %s", rt.Path, w.Code, w.Body)
				}
				return
			}
			p := problem(t, w, http.StatusForbidden)
			if !strings.Contains(p.Detail, "watcher") || !strings.Contains(p.Detail, "viewer") {
				t.Errorf("detail %q does not say who and which role", p.Detail)
			}
		})
	}
	if len(e.accounts.calls) != 0 || len(e.system.actors) != 0 || len(e.campaigns.changes) != 0 {
		t.Errorf("a viewer's write reached a service: %v %v %v", e.accounts.calls, e.system.actors, e.campaigns.changes)
	}
	if _, err := e.devices.Get(t.Context(), "SEP00000000FFFF"); err == nil {
		t.Error("a viewer's POST /devices or import created a device")
	}
}

// Every write route is one a viewer may not use: the access of each route
// is what its method implies, and accounts and tokens are admin-only.
func TestRouteAccess(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.srv.routes {
		want := readAccess
		if rt.Method != http.MethodGet {
			want = writeAccess
		}
		if strings.HasPrefix(rt.Path, "/accounts") || strings.HasPrefix(rt.Path, "/tokens") {
			want = adminAccess
		}
		if rt.Access != want {
			t.Errorf("%s %s: access %v, want %v", rt.Method, rt.Path, rt.Access, want)
		}
	}
}

// checkRefs fails unless every $ref of the document points at a schema it
// defines, and every operation has an id, a summary and responses.
func checkRefs(t *testing.T, doc []byte) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatal(err)
	}
	schemas, _ := raw["components"].(map[string]any)["schemas"].(map[string]any)
	var walk func(v any)
	refs := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				refs++
				name, found := strings.CutPrefix(ref, "#/components/schemas/")
				if !found || schemas[name] == nil {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)
	if refs == 0 {
		t.Error("the document has no $ref at all")
	}
	ids := map[string]bool{}
	for path, ops := range raw["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			o := op.(map[string]any)
			id, _ := o["operationId"].(string)
			if id == "" || ids[id] || o["summary"] == nil || o["responses"] == nil {
				t.Errorf("%s %s: operationId %q (duplicate: %v), summary %v", method, path, id, ids[id], o["summary"])
			}
			ids[id] = true
		}
	}
}
