package lang

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCompile feeds arbitrary scripts to the front end: it must never
// panic, and every failure must be a positioned *Error.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("testdata/compile/*.pxl")
	for _, p := range files {
		src, _ := os.ReadFile(p)
		f.Add(string(src))
	}
	for _, s := range []string{
		"import px\npx.display(px.DataFrame('http_events').head(3))\n",
		"import px\ndef f(a: int) -> px.DataFrame:\n  return px.DataFrame('conn_stats')\n",
		"import px\ndf = px.DataFrame(table='http_events'\n  start_time='-5m')\n",
		"import px\nx = [i for i in range(10) if i > 3]\npx.display(px.DataFrame('process_stats')[px.DataFrame('process_stats').rss_bytes > x[0]])\n",
		"import px\ndf = px.DataFrame('http_events')\ndf.a += 1\n",
		"import px\nwhile True:\n  pass\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse("fuzz.pxl", []byte(src))
		if err != nil {
			checkErr(t, err)
			return
		}
		for _, vis := range []bool{false, true} {
			_, err := s.Compile(Options{Catalog: testCatalog{}, Now: testNow, VisMode: vis, MaxSteps: 100000})
			if err != nil {
				checkErr(t, err)
			}
		}
	})
}

func checkErr(t *testing.T, err error) {
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("error is not a *lang.Error: %T %v", err, err)
	}
	if le.File != "fuzz.pxl" {
		t.Fatalf("error names file %q: %v", le.File, err)
	}
}
