package phonesim

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsOnlyWire keeps the simulator independent of the server: its
// files (tests included) import the standard library and internal/wire only.
func TestImportsOnlyWire(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		ast, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if path != "github.com/capf-server/capf/internal/wire" && strings.Contains(first, ".") {
				t.Errorf("%s imports %s: phonesim may import only the standard library and internal/wire", f, path)
			}
		}
	}
}
