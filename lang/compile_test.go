package lang

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/funcs/mdfuncs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

// testCatalog serves the schemas of pxq's source tables.
type testCatalog struct{}

func (testCatalog) Relation(name string) (types.Relation, bool) {
	t, ok := tables.All[name]
	return t.Relation, ok
}

func (testCatalog) Tables() []string { return tables.Names() }

var testNow = time.Unix(1_700_000_000, 0)

func compile(t *testing.T, src string, opts Options) (*plan.Plan, error) {
	t.Helper()
	s, err := Parse("test.pxl", []byte(src))
	if err != nil {
		return nil, err
	}
	if opts.Catalog == nil {
		opts.Catalog = testCatalog{}
	}
	if opts.Now.IsZero() {
		opts.Now = testNow
	}
	return s.Compile(opts)
}

// TestCompileGolden compiles every script under testdata/compile and
// compares its plan with the .plan file beside it. Run with -update to
// rewrite the expected plans after checking them by eye.
func TestCompileGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/compile/*.pxl")
	if len(files) == 0 {
		t.Fatal("no test scripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := compile(t, string(src), Options{})
			var got string
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				got = plan.Format(p) + "\n" + relations(p)
			}
			golden := strings.TrimSuffix(f, ".pxl") + ".plan"
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan of %s:\n%s\nwant:\n%s", f, got, want)
			}
		})
	}
}

func relations(p *plan.Plan) string {
	var b strings.Builder
	for _, s := range p.Sinks {
		b.WriteString(s.Name + ": ")
		for i, c := range s.Relation() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(c.Name + " " + c.Type.String())
			if c.Semantic != types.STNone && c.Semantic != types.STUnspecified {
				b.WriteString(" " + c.Semantic.String())
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"import px\ndf = px.DataFrame(table='http_event')\npx.display(df)\n",
			`test.pxl:2:18: table "http_event" not found (did you mean "http_events"?)`},
		{"import px\ndf = px.DataFrame(table='http_events')\ndf = df[df.latncy > 5]\npx.display(df)\n",
			`test.pxl:3:11: column "latncy" not found (did you mean "latency"?); the DataFrame has columns: time_, upid`},
		{"import px\ndf = px.DataFrame(table='http_events')\ndf.x = px.contians(df.req_path, 'a')\npx.display(df)\n",
			`test.pxl:3:10: px has no function "contians" (did you mean "contains"?)`},
		{"import px\ndf = px.DataFrame(table='http_events')\ndf = df[df.req_path + 1]\npx.display(df)\n",
			`test.pxl:3:21: unsupported operand types for +: STRING and constant INT64`},
		{"import px\ndf = px.DataFrame(table='http_events')\ndf = df[df.latency]\npx.display(df)\n",
			`test.pxl:3:8: a filter needs a boolean expression, got INT64 latency`},
		{"import px\ndf = px.DataFrame(table='http_events')\ndf = df.groupby('req_path').agg(n=('latency', px.cnt))\npx.display(df)\n",
			`test.pxl:3:49: px has no function "cnt" (did you mean "count"?)`},
		{"import px\ndf = px.DataFrame(table='http_events')\nx = df.merge(df, how='sideways', left_on='upid', right_on='upid')\n",
			`test.pxl:3:13: merge: how must be`},
		{"import px\ndf = px.DataFrame(table='http_events')\n",
			`test.pxl: the script produces no output`},
		{"import px\ndf = px.DataFrame(table='http_events')\ndf.pod = df.ctx['podd']\npx.display(df)\n",
			`test.pxl:3:16: unknown ctx key "podd" (did you mean "pod"?)`},
		{"import px\ndf = px.DataFrame(table='http_events', start_time='yesterday')\n",
			`test.pxl:2:18: start_time "yesterday" is neither`},
		{"import px\ndef f(n: int):\n    return px.DataFrame(table='http_events').head(n)\n",
			`test.pxl: the script produces no output`},
	} {
		_, err := compile(t, tc.src, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("script:\n%s\nerror: %v\nwant prefix: %s", tc.src, err, tc.want)
		}
	}
}

func TestExecFuncs(t *testing.T) {
	src := `import px

def f(start_time: str, n: int, ratio: float, only_errors: bool, svc: px.Service):
    df = px.DataFrame(table='http_events', start_time=start_time)
    df = df[df.resp_status >= 400 or not only_errors]
    df.r = df.latency * ratio
    df.svc = svc
    return [df.head(n), df]
`
	p, err := compile(t, src, Options{Calls: []FuncCall{{Func: "f", Output: "out",
		Args: map[string]string{"start_time": "-5m", "n": "7", "ratio": "0.5", "only_errors": "Yes", "svc": "ns/svc"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sinks) != 2 || p.Sinks[0].Name != "out[0]" || p.Sinks[1].Name != "out[1]" {
		t.Fatalf("sinks = %v", p.Sinks)
	}
	got := plan.Format(p)
	for _, want := range []string{"Limit 7", "Filter greaterThanEqual(resp_status, 400)", "r=multiply(latency, 0.5)", `svc="ns/svc"`,
		"time=[1699999700000000000, 0)"} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	// With only_errors false the condition folds away to the whole frame.
	p, err = compile(t, src, Options{Calls: []FuncCall{{Func: "f", Output: "out",
		Args: map[string]string{"start_time": "-5m", "n": "7", "ratio": "0.5", "only_errors": "no", "svc": ""}}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan.Format(p), "Filter") {
		t.Errorf("a constant True condition should not filter:\n%s", plan.Format(p))
	}
	for args, want := range map[string]string{
		"n=x":           `argument n of f: "x" is not an integer`,
		"only_errors=2": `argument only_errors of f: "2" is not a boolean`,
		"bogus=1":       `function f has no parameter "bogus"`,
	} {
		k, v, _ := strings.Cut(args, "=")
		a := map[string]string{"start_time": "-5m", "n": "1", "ratio": "1", "only_errors": "t", "svc": ""}
		a[k] = v
		_, err := compile(t, src, Options{Calls: []FuncCall{{Func: "f", Args: a}}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("args %s: err = %v, want %q", args, err, want)
		}
	}
}

func TestVisModeIgnoresDisplay(t *testing.T) {
	src := "import px\npx.display(px.DataFrame(table='http_events'), 'top')\npx.debug(px.DataFrame(table='conn_stats'), 'dbg')\n" +
		"def g():\n    return px.DataFrame(table='process_stats')\n"
	p, err := compile(t, src, Options{Calls: []FuncCall{{Func: "g", Output: "procs"}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Sinks {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "_dbg,procs" {
		t.Errorf("sinks = %v, want _dbg and procs", names)
	}
}

// TestCtxKeysResolve compiles df.ctx[key] for every key the metadata
// functions declare, on a frame with a upid column and on one with a
// pod_id column.
func TestCtxKeysResolve(t *testing.T) {
	for _, col := range mdfuncs.CtxColumns {
		for _, key := range mdfuncs.CtxKeys(col) {
			fn, _ := mdfuncs.CtxKey(key, col)
			if fn == "" {
				continue
			}
			arg := map[string]types.DataType{"upid": types.UInt128, "pod_id": types.String}[col]
			if _, err := funcs.Resolve(fn, []types.DataType{arg}); err != nil {
				t.Errorf("ctx[%q] of %s uses %s: %v", key, col, fn, err)
			}
		}
	}
}
