package tablefuncs_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/types"
)

var update = flag.Bool("update", false, "rewrite the function reference in docs/language.md")

// functionReference renders the "Every function" tables of
// docs/language.md from the registry.
func functionReference() string {
	var b strings.Builder
	b.WriteString("### Scalar functions\n\n| function | signatures | what it does |\n|---|---|---|\n")
	for _, name := range funcs.ScalarNames() {
		f := funcs.Scalar(name)
		if strings.HasPrefix(name, "plannertest_") || strings.HasPrefix(name, "_test") {
			continue
		}
		var sigs []string
		if f.Variadic != nil {
			sigs = append(sigs, "(…) → string")
		}
		for _, o := range f.Overloads {
			sigs = append(sigs, signature(o.Args, o.Ret))
		}
		fmt.Fprintf(&b, "| `px.%s` | %s | %s |\n", name, joinSigs(sigs, 4), f.Doc)
	}
	b.WriteString("\n### Aggregates\n\n| function | signatures | what it does |\n|---|---|---|\n")
	for _, name := range funcs.AggNames() {
		f := funcs.Agg(name)
		var sigs []string
		for _, o := range f.Overloads {
			sigs = append(sigs, signature(o.Args, o.Ret))
		}
		fmt.Fprintf(&b, "| `px.%s` | %s | %s |\n", name, joinSigs(sigs, 0), f.Doc)
	}
	return b.String()
}

func signature(args []types.DataType, ret types.DataType) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = strings.ToLower(a.String())
	}
	return "(" + strings.Join(s, ", ") + ") → " + strings.ToLower(ret.String())
}

func joinSigs(s []string, max int) string {
	if max > 0 && len(s) > max {
		s = append(s[:max:max], "…")
	}
	return strings.Join(s, "<br>")
}

// TestFunctionReference: docs/language.md lists every registered function
// as the registry declares it (go test -update rewrites it).
func TestFunctionReference(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "language.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "### Scalar functions\n", "\n## "
	i := strings.Index(string(doc), start)
	if i < 0 {
		t.Fatalf("%s has no %q section", path, start)
	}
	j := strings.Index(string(doc)[i:], end)
	if j < 0 {
		j = len(doc) - i
	}
	cur := string(doc)[i : i+j]
	want := functionReference()
	if strings.TrimSpace(cur) == strings.TrimSpace(want) {
		return
	}
	if *update {
		out := string(doc)[:i] + want + string(doc)[i+j:]
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/language.md's function reference is out of date: run go test ./funcs/tablefuncs -run TestFunctionReference -update")
}
