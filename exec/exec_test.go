package exec

import (
	"context"
	"errors"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

func scanT(st interface{}) *plan.Scan { return plantest.Scan("t", testRel()) }

// TestPartialFinalMatchesFull splits a table by time into fragments that
// aggregate partially and send their states over a bridge, merges them
// in a final aggregate, and compares with a full aggregate.
func TestPartialFinalMatchesFull(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for trial := 0; trial < 60; trial++ {
		st, _ := testData(r, r.Intn(4000))
		g := &planGen{r: r}
		full := g.agg(scanT(st), plan.AggFull)
		bridge := NewLocalBridge()
		cuts := []int64{0, 1000 + int64(r.Intn(4000)), 0}
		for i := 0; i+1 < len(cuts); i++ {
			s := scanT(st)
			s.Start, s.End = cuts[i], cuts[i+1]
			part := &plan.Aggregate{Input: s, Groups: full.Groups, Aggs: full.Aggs, Mode: plan.AggPartial}
			if err := ExecuteFragment(context.Background(), []plan.Node{&plan.BridgeSink{Input: part, ID: 1}}, 0, Options{Store: st, Bridge: bridge}, nil); err != nil {
				t.Fatal(err)
			}
		}
		partRel := (&plan.Aggregate{Input: scanT(st), Groups: full.Groups, Aggs: full.Aggs, Mode: plan.AggPartial}).Relation()
		final := &plan.Aggregate{Input: &plan.BridgeSource{ID: 1, Rel: partRel}, Groups: full.Groups, Aggs: full.Aggs, Mode: plan.AggFinal}
		got, err := Collect(context.Background(), &plan.Plan{Sinks: []*plan.Sink{{Input: final, Name: "o"}}}, Options{Bridge: bridge, MaxRowsPerTable: -1})
		if err != nil {
			t.Fatal(err)
		}
		want, err := Collect(context.Background(), &plan.Plan{Sinks: []*plan.Sink{{Input: full, Name: "o"}}}, Options{Store: st, MaxRowsPerTable: -1})
		if err != nil {
			t.Fatal(err)
		}
		if err := plantest.SameRows(sortRows(rowsOf(got)), sortRows(rowsOf(want))); err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, full.Describe())
		}
	}
}

func sortRows(rows [][]any) [][]any {
	keys := make([]string, len(rows))
	for i, r := range rows {
		keys[i] = keyOf(r)
	}
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	out := make([][]any, len(rows))
	for i, k := range idx {
		out[i] = rows[k]
	}
	return out
}

func sinkPlan(n plan.Node) *plan.Plan {
	return &plan.Plan{Sinks: []*plan.Sink{{Input: n, Name: "out"}}}
}

func TestMemoryLimit(t *testing.T) {
	st, _ := testData(rand.New(rand.NewSource(6)), 20000)
	rel := testRel()
	agg := &plan.Aggregate{Input: scanT(st), Groups: []string{"v"}, Mode: plan.AggFull, Pos: plan.Pos{File: "s.pxl", Line: 3, Col: 7},
		Aggs: []plan.AggExpr{{Name: "q", Func: "quantiles", Args: []plan.Expr{plantest.Col(rel, "f")}, T: types.String}}}
	_, err := Collect(context.Background(), sinkPlan(agg), Options{Store: st, MemoryLimit: 1 << 20})
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "Aggregate(full) at s.pxl:3:7") {
		t.Fatalf("err = %v", err)
	}
	join := &plan.Join{Left: testDScan(), Right: scanT(st), LeftOn: []string{"k1"}, RightOn: []string{"k1"},
		Output: []plan.JoinColumn{{Side: 1, Name: "k2", As: "k2"}}}
	_, err = Collect(context.Background(), sinkPlan(join), Options{Store: st, MemoryLimit: 100 << 10})
	if !errors.Is(err, ErrMemoryLimit) || !strings.Contains(err.Error(), "Join(inner)") {
		t.Fatalf("err = %v", err)
	}
	// The same queries pass with the default limit.
	if _, err := Collect(context.Background(), sinkPlan(agg), Options{Store: st}); err != nil {
		t.Fatal(err)
	}
}

func testDScan() *plan.Scan { return plantest.Scan("d", testDRel()) }

func TestCancel(t *testing.T) {
	st, _ := testData(rand.New(rand.NewSource(7)), 1000)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Collect(ctx, sinkPlan(scanT(st)), Options{Store: st})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestPanicBecomesError(t *testing.T) {
	funcs.RegisterScalar(&funcs.ScalarFunc{Name: "_test_panic", Volatility: funcs.PlaceBound, Overloads: []funcs.Overload{{
		Args: []types.DataType{types.Int64}, Ret: types.Int64,
		Kernel: func(*funcs.Context, []funcs.Value, int) (funcs.Value, error) { panic("boom") },
	}}})
	st, _ := testData(rand.New(rand.NewSource(8)), 100)
	rel := testRel()
	m := &plan.Map{Input: scanT(st), Exprs: []plan.NamedExpr{{Name: "x", Expr: &plan.Call{Func: "_test_panic", Args: []plan.Expr{plantest.Col(rel, "k1")}, T: types.Int64}}},
		Pos: plan.Pos{File: "f.pxl", Line: 2, Col: 1}}
	_, err := Collect(context.Background(), sinkPlan(m), Options{Store: st})
	if err == nil || !strings.Contains(err.Error(), "Map at f.pxl:2:1: panic: boom") {
		t.Fatalf("err = %v", err)
	}
}

func TestMaxRowsPerTable(t *testing.T) {
	st, _ := testData(rand.New(rand.NewSource(9)), 500)
	res, err := Collect(context.Background(), sinkPlan(scanT(st)), Options{Store: st, MaxRowsPerTable: 123})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].NumRows() != 123 || !res[0].Truncated {
		t.Fatalf("rows %d truncated %v", res[0].NumRows(), res[0].Truncated)
	}
	res, err = Collect(context.Background(), sinkPlan(scanT(st)), Options{Store: st, MaxRowsPerTable: 500})
	if err != nil || res[0].NumRows() != 500 || res[0].Truncated {
		t.Fatalf("exact fit: %v rows, truncated %v, %v", res[0].NumRows(), res[0].Truncated, err)
	}
}

// countingBridge serves endless batches and counts how many were read.
type countingBridge struct{ reads int }

func (c *countingBridge) Source(int) (BatchReader, error) { return c, nil }
func (c *countingBridge) Send(int, arrow.Record) error    { return nil }
func (c *countingBridge) CloseSend(int) error             { return nil }
func (c *countingBridge) Next(ctx context.Context) (arrow.Record, error) {
	c.reads++
	a := funcs.NewInt64Array(make([]int64, 100))
	rel := types.Relation{{Name: "x", Type: types.Int64}}
	return newRecord(rel.ArrowSchema(), []arrow.Array{a}, 100), nil
}

func TestLimitStopsUpstream(t *testing.T) {
	b := &countingBridge{}
	rel := types.Relation{{Name: "x", Type: types.Int64}}
	lim := &plan.Limit{Input: &plan.Filter{Input: &plan.BridgeSource{ID: 1, Rel: rel}, Cond: plantest.Lit(true)}, N: 250}
	res, err := Collect(context.Background(), sinkPlan(lim), Options{Bridge: b})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].NumRows() != 250 || b.reads != 3 {
		t.Fatalf("rows %d after %d reads", res[0].NumRows(), b.reads)
	}
}

func TestSharedNodeFeedsTwoSinks(t *testing.T) {
	st, db := testData(rand.New(rand.NewSource(10)), 3000)
	rel := testRel()
	f := &plan.Filter{Input: scanT(st), Cond: plantest.Call("lessThan", plantest.Col(rel, "k1"), plantest.Lit(5))}
	agg := &plan.Aggregate{Input: f, Groups: []string{"k2"}, Aggs: []plan.AggExpr{{Name: "n", Func: "count", Args: []plan.Expr{plantest.Col(rel, "v")}, T: types.Int64}}}
	lim := &plan.Limit{Input: f, N: 10}
	p := &plan.Plan{Sinks: []*plan.Sink{{Input: lim, Name: "head"}, {Input: agg, Name: "agg"}, {Input: f, Name: "all"}}}
	res, err := Collect(context.Background(), p, Options{Store: st, MaxRowsPerTable: -1})
	if err != nil {
		t.Fatal(err)
	}
	want := plantest.EvalPlan(t, db, p)
	for i, s := range p.Sinks {
		if err := plantest.SameRows(rowsOf(res[i:i+1]), want[i]); err != nil {
			t.Fatalf("sink %s: %v", s.Name, err)
		}
	}
}

func TestTableFuncs(t *testing.T) {
	st, _ := testData(rand.New(rand.NewSource(11)), 10)
	for name := range map[string]bool{"GetTables": true, "GetSchemas": true, "GetUDFList": true, "GetUDAList": true, "GetUDTFList": true, "GetAgentStatus": true, "_DebugTableInfo": true, "Version": true} {
		tf := &plan.TableFunc{Func: name, Rel: tableFuncRel(name)}
		res, err := Collect(context.Background(), sinkPlan(tf), Options{Store: st, MaxRowsPerTable: -1})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res[0].NumRows() == 0 {
			t.Errorf("%s: no rows", name)
		}
	}
	res, _ := Collect(context.Background(), sinkPlan(&plan.TableFunc{Func: "GetSchemas", Rel: tableFuncRel("GetSchemas")}), Options{Store: st})
	if rows := rowsOf(res); len(rows) != 11 || rows[0][0] != "d" || rows[0][2] != "INT64" {
		t.Errorf("GetSchemas = %v", rows)
	}
}
