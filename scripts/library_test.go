package scripts_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/scripts"
)

// TestLibraryLayout checks that the library has at least 20 scripts, each
// a folder with a .pxl, a vis.json whose widgets call functions the
// script defines or global funcs it declares, and a manifest with short
// and long descriptions.
func TestLibraryLayout(t *testing.T) {
	all, err := scripts.NewLibrary().List()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 20 {
		t.Errorf("the library has %d scripts, want at least 20", len(all))
	}
	defRE := regexp.MustCompile(`(?m)^def (\w+)\(`)
	for _, s := range all {
		if s.Source != "library" {
			continue
		}
		if s.Vis == nil {
			t.Errorf("%s: no vis.json", s.Name)
			continue
		}
		if s.Short == "" || s.Long == "" {
			t.Errorf("%s: manifest.yaml lacks short or long", s.Name)
		}
		defs := map[string]bool{}
		for _, m := range defRE.FindAllStringSubmatch(string(s.PXL), -1) {
			defs[m[1]] = true
		}
		globals := map[string]bool{}
		for _, g := range s.Vis.GlobalFuncs {
			globals[g.OutputName] = true
			if !defs[g.Func.Name] {
				t.Errorf("%s: global func %s calls %s, which the script does not define", s.Name, g.OutputName, g.Func.Name)
			}
		}
		vars := map[string]bool{}
		for _, v := range s.Vis.Variables {
			vars[v.Name] = true
			if v.DefaultValue == nil {
				t.Errorf("%s: variable %s has no default", s.Name, v.Name)
			}
		}
		if len(s.Vis.Widgets) == 0 {
			t.Errorf("%s: no widgets", s.Name)
		}
		for _, w := range s.Vis.Widgets {
			if w.Position == nil || len(w.DisplaySpec) == 0 {
				t.Errorf("%s: widget %s lacks a position or a displaySpec", s.Name, w.Name)
			}
			switch {
			case w.Func != nil:
				if !defs[w.Func.Name] {
					t.Errorf("%s: widget %s calls %s, which the script does not define", s.Name, w.Name, w.Func.Name)
				}
				for _, a := range w.Func.Args {
					if a.Variable != "" && !vars[a.Variable] {
						t.Errorf("%s: widget %s uses undeclared variable %s", s.Name, w.Name, a.Variable)
					}
				}
			case !globals[w.GlobalFuncOutputName]:
				t.Errorf("%s: widget %s names no function", s.Name, w.Name)
			}
		}
	}
}

// TestLibraryCompiles compiles every script of the library with its
// default arguments.
func TestLibraryCompiles(t *testing.T) {
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := scripts.NewLibrary().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if _, err := engine.Compile(engine.Query{Script: s, Now: time.Now()}, eng.Catalog()); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}
}

// TestLibraryFunctionsDocumented checks that every px function a library
// script calls is described in docs/language.md.
func TestLibraryFunctionsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "language.md"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := scripts.NewLibrary().List()
	if err != nil {
		t.Fatal(err)
	}
	callRE := regexp.MustCompile(`\bpx\.(\w+)\b`)
	used := map[string][]string{}
	for _, s := range all {
		for _, m := range callRE.FindAllStringSubmatch(string(s.PXL), -1) {
			used[m[1]] = append(used[m[1]], s.Name)
		}
	}
	var missing []string
	for fn, by := range used {
		if !strings.Contains(string(doc), "px."+fn) {
			missing = append(missing, fn+" (used by "+by[0]+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("docs/language.md does not document px.%s", m)
	}
}

// TestUserFolders checks that a user's folders, given as arguments or in
// $PXQ_SCRIPTS, add scripts to the library and shadow its scripts of the
// same name.
func TestUserFolders(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("px/http_data/http_data.pxl", "import px\npx.display(px.GetTables(), 'mine')\n")
	write("px/http_data/manifest.yaml", "short: my own http_data\n")
	write("team/hello/hello.pxl", "import px\ndef hello(n: int):\n    return px.GetTables().head(n)\n")
	write("team/hello/vis.json", `{"variables": [{"name": "n", "type": "PX_INT64", "defaultValue": "2"}],
 "widgets": [{"name": "hello", "func": {"name": "hello", "args": [{"name": "n", "variable": "n"}]}, "displaySpec": {"@type": "types.px.dev/px.vispb.Table"}}]}`)

	check := func(t *testing.T, lib *scripts.Library) {
		s, err := lib.Get("px/http_data")
		if err != nil {
			t.Fatal(err)
		}
		if s.Source != dir || s.Short != "my own http_data" {
			t.Errorf("px/http_data came from %q (%q), want the user's folder", s.Source, s.Short)
		}
		all, err := lib.List()
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, s := range all {
			count[s.Name]++
		}
		if count["px/http_data"] != 1 || count["team/hello"] != 1 || count["px/http_request_stats"] != 1 {
			t.Errorf("listing: %v", count)
		}
		// Both run: the shadowing script and the new one.
		eng, err := engine.New(engine.Config{})
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"px/http_data": "mine", "team/hello": "hello"} {
			s, err := lib.Get(name)
			if err != nil {
				t.Fatal(err)
			}
			tables, err := eng.Collect(context.Background(), engine.Query{Script: s, Args: argsFor(name)})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(tables) != 1 || tables[0].Name != want || tables[0].Rows() == 0 {
				t.Errorf("%s: got %s", name, describe(tables))
			}
		}
	}
	t.Run("argument", func(t *testing.T) {
		t.Setenv(scripts.EnvDirs, "")
		check(t, scripts.NewLibrary(dir))
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(scripts.EnvDirs, "/nonexistent-is-skipped:"+dir)
		// A missing folder in $PXQ_SCRIPTS must not hide the others.
		check(t, scripts.NewLibrary())
	})
	t.Run("environment only", func(t *testing.T) {
		t.Setenv(scripts.EnvDirs, dir)
		check(t, scripts.NewLibrary())
	})
}

func argsFor(name string) map[string]string {
	if name == "team/hello" {
		return map[string]string{"n": "3"}
	}
	return nil
}

func describe(tables []*format.Table) string {
	var s []string
	for _, t := range tables {
		s = append(s, t.Name)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// A compile error in a user's script points at the user's file.
func TestUserScriptErrorPosition(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "me", "bad"), 0o755)
	os.WriteFile(filepath.Join(dir, "me", "bad", "bad.pxl"), []byte("import px\n\ndf = px.DataFrame(table='http_events')\ndf = df[df.nope == 1]\npx.display(df)\n"), 0o644)
	s, err := scripts.NewLibrary(dir).Get("me/bad")
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := engine.New(engine.Config{})
	_, err = engine.Compile(engine.Query{Script: s}, eng.Catalog())
	le, ok := err.(*lang.Error)
	if !ok {
		t.Fatalf("want a *lang.Error, got %T %v", err, err)
	}
	if !strings.Contains(le.Error(), filepath.Join(dir, "me", "bad", "bad.pxl")+":4:") {
		t.Errorf("error %q does not point at bad.pxl line 4", le.Error())
	}
}
