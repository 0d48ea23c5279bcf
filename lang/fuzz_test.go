package lang

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/metrics"
	"testing"
	"time"
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

// FuzzScriptBudget runs arbitrary scripts under tight limits (a 1 MB
// memory budget, 20,000 steps): compiling must never panic, every error
// must be a positioned *Error, and the bytes allocated while compiling
// must stay within what the limits allow (the budget, a bound per step,
// the parse of the source).
func FuzzScriptBudget(f *testing.F) {
	files, _ := filepath.Glob("testdata/hostile/*.pxl")
	more, _ := filepath.Glob("testdata/compile/*.pxl")
	for _, p := range append(files, more...) {
		src, _ := os.ReadFile(p)
		if len(src) < 4096 {
			f.Add(string(src))
		}
	}
	for _, s := range []string{
		"import px\ns = 'x' * 1000\nwhile True:\n  s += s\n",
		"import px\nl = [0]\nfor i in range(30):\n  l = l + l\n",
		"import px\nd = {}\nfor i in range(100):\n  d[i] = str(d)\n",
		"import px\nx = ('%s' * 100) % tuple(['y' * 100] * 100)\n",
		"import px\nt = (1,)\nfor i in range(50):\n  t = (t, t)\nx = {t: 1}\n",
	} {
		f.Add(s)
	}
	const budget = 1 << 20
	const steps = 20_000
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		metrics.Read(allocs)
		before := allocs[0].Value.Uint64()
		s, err := Parse("fuzz.pxl", []byte(src))
		if err != nil {
			checkErr(t, err)
			return
		}
		_, err = s.Compile(Options{Catalog: testCatalog{}, Now: testNow, MaxSteps: steps, MaxMemory: budget})
		if err != nil {
			checkErr(t, err)
		}
		metrics.Read(allocs)
		allocated := allocs[0].Value.Uint64() - before
		// Charged values may allocate up to twice their size on the way
		// (a builder's growth); a step adds at most a few hundred bytes;
		// parsing takes about a hundred bytes a byte of source.
		bound := uint64(4*budget + steps*512 + 200*len(src) + 8<<20)
		if allocated > bound {
			t.Fatalf("compiling allocated %d bytes, more than %d", allocated, bound)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("compiling took %v", d)
		}
	})
}
