package lang

import (
	"strings"
	"testing"
)

func TestPrepareKeepsPositions(t *testing.T) {
	src := "import px\n" +
		"def f(start_time: str, n: int = 5, svc: px.Service = '') -> px.DataFrame:\n" +
		"    '''doc'''\n" +
		"    return px.DataFrame(table='t', start_time=start_time)\n"
	p := prepare([]byte(src))
	if len(p.src) != len(src) {
		t.Fatalf("length changed: %d != %d", len(p.src), len(src))
	}
	for i := range src {
		if (src[i] == '\n') != (p.src[i] == '\n') {
			t.Fatalf("newline moved at %d", i)
		}
	}
	got := string(p.src)
	want := "         \n" +
		"def f(start_time     , n      = 5, svc             = '')                :\n"
	if !strings.HasPrefix(got, want) {
		t.Errorf("prepared:\n%q\nwant prefix:\n%q", got, want)
	}
	if len(p.imports) != 1 || p.imports[0].name != "px" || p.imports[0].line != 1 || p.imports[0].col != 8 {
		t.Errorf("imports = %+v", p.imports)
	}
	wantAnn := map[string]string{"start_time": "str", "n": "int", "svc": "px.Service"}
	for k, v := range wantAnn {
		if p.params["f"][k] != v {
			t.Errorf("annotation %s = %q, want %q", k, p.params["f"][k], v)
		}
	}
	if strings.Join(p.order["f"], ",") != "start_time,n,svc" {
		t.Errorf("order = %v", p.order["f"])
	}
}

func TestPrepareIgnoresStringsAndComments(t *testing.T) {
	src := "import px\nx = 'def g(a: int):'  # def h(b: str):\ns = \"\"\"\nimport foo\n\"\"\"\n"
	p := prepare([]byte(src))
	if _, ok := p.params["g"]; ok {
		t.Error("found a def inside a string")
	}
	if _, ok := p.params["h"]; ok {
		t.Error("found a def inside a comment")
	}
	if len(p.imports) != 1 {
		t.Errorf("imports = %+v, want only px", p.imports)
	}
	if !strings.Contains(string(p.src), "import foo") {
		t.Error("rewrote an import inside a string")
	}
}

func TestParseMissingComma(t *testing.T) {
	src := "import px\n" +
		"df = px.DataFrame(table='http_events'\n" +
		"                  start_time='-5m')\n" +
		"px.display(df)\n"
	if _, err := Parse("s.pxl", []byte(src)); err != nil {
		t.Fatalf("missing comma between lines not accepted: %v", err)
	}
	// A missing comma on one line is still an error, at its position.
	_, err := Parse("s.pxl", []byte("import px\nx = f(1 2)\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "s.pxl:2:") {
		t.Fatalf("err = %v, want a positioned error on line 2", err)
	}
}

func TestParseImports(t *testing.T) {
	for src, want := range map[string]string{
		"import os\n":                "s.pxl:1:8: unknown module \"os\"",
		"df = px.DataFrame('t')\n":   "s.pxl:1:1: the script uses px but does not import it",
		"import px\nx = = 1\n":       "s.pxl:2:5:",
		"import px\ny = undefined\n": "s.pxl:2:5: undefined: undefined",
	} {
		_, err := Parse("s.pxl", []byte(src))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want prefix %q", src, err, want)
		}
	}
}
