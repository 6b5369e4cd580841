package dbdump

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	h := Header{Table: "t", Columns: []Column{{"i", Int}, {"s", Text}, {"b", Bytes}, {"ok", Bool}, {"j", JSON}}}
	rows := [][]any{
		{int64(-1 << 62), "héllo\n\"x\"", []byte{0, 1, 255}, true, `{"a":[1,2]}`},
		{nil, nil, nil, nil, nil},
		{int64(9007199254740993), "", []byte{}, false, `"2s"`}, // beyond float64's exact integers
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil || w.Rows() != 3 {
		t.Fatalf("close %v rows %d", err, w.Rows())
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if r.Header().Table != "t" || len(r.Header().Columns) != 5 || r.Header().Index("ok") != 3 || r.Header().Index("x") != -1 {
		t.Fatalf("header %+v", r.Header())
	}
	for i, want := range rows {
		got, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if g, w := got[j], want[j]; !equal(g, w) {
				t.Errorf("row %d col %d: %#v, want %#v", i, j, g, w)
			}
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last row: %v", err)
	}
}

func equal(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	return a == b
}

func TestWriteRefuses(t *testing.T) {
	cases := []struct {
		name string
		typ  Type
		v    any
	}{
		{"fail/string-as-int", Int, "1"},
		{"fail/int-as-text", Text, int64(1)},
		{"fail/float", Int, 1.5},
		{"fail/text-as-bool", Bool, "true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, err := NewWriter(io.Discard, Header{Table: "t", Columns: []Column{{"c", c.typ}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write([]any{c.v}); err == nil || !strings.Contains(err.Error(), "t.c") {
				t.Fatalf("Write(%#v as %s): %v; want an error naming t.c", c.v, c.typ, err)
			}
		})
	}
	if _, err := NewWriter(io.Discard, Header{Table: "t", Columns: []Column{{"c", "float"}}}); err == nil {
		t.Error("a header with an unknown type was accepted")
	}
}

func TestReadRefuses(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"fail/empty", "", "empty stream"},
		{"fail/not-a-header", "[1,2]\n", "not a table header"},
		{"fail/unknown-type", `{"table":"t","columns":[{"name":"c","type":"float"}]}` + "\n", "unknown type"},
		{"fail/short-row", `{"table":"t","columns":[{"name":"c","type":"int"},{"name":"d","type":"int"}]}` + "\n[1]\n", "row of 1 values, want 2"},
		{"fail/wrong-type", `{"table":"t","columns":[{"name":"c","type":"int"}]}` + "\n[\"x\"]\n", "t.c"},
		{"fail/bad-base64", `{"table":"t","columns":[{"name":"c","type":"bytes"}]}` + "\n[\"!!\"]\n", "t.c"},
		{"fail/fraction", `{"table":"t","columns":[{"name":"c","type":"int"}]}` + "\n[1.5]\n", "t.c"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(c.in))
			if err == nil {
				_, err = r.Next()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v; want %q", err, c.want)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	cases := []struct {
		name     string
		from, to Type
		in, want any
		fail     bool
	}{
		{"ok/same", Int, Int, int64(5), int64(5), false},
		{"ok/null", Int, Bool, nil, nil, false},
		{"ok/sqlite-bool-true", Int, Bool, int64(1), true, false},
		{"ok/sqlite-bool-false", Int, Bool, int64(0), false, false},
		{"ok/pg-bool", Bool, Int, true, int64(1), false},
		{"ok/json-text", JSON, Text, `{"a":1}`, `{"a":1}`, false},
		{"ok/text-json", Text, JSON, `"x"`, `"x"`, false},
		{"fail/text-int", Text, Int, "1", nil, true},
		{"fail/bytes-text", Bytes, Text, []byte("x"), nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Convert(c.from, c.to, c.in)
			if (err != nil) != c.fail || (!c.fail && got != c.want) {
				t.Fatalf("Convert(%s→%s, %#v) = %#v, %v", c.from, c.to, c.in, got, err)
			}
		})
	}
}

func TestTablesClassifiedOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, tb := range Tables {
		if seen[tb.Name] || tb.Why == "" {
			t.Errorf("table %q listed twice or without a reason", tb.Name)
		}
		seen[tb.Name] = true
	}
	if c, ok := Classify("nodes"); !ok || c != NodeLocal {
		t.Error("nodes is not node-local")
	}
	if _, ok := Classify("no_such_table"); ok {
		t.Error("an unknown table is classified")
	}
	if Rank("no_such_table") != len(Tables) || Rank("devices") != 0 {
		t.Error("rank")
	}
}
