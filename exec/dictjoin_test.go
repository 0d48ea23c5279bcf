package exec

import (
	"context"
	"math/rand"
	"testing"

	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
)

// TestCodedJoinKeys: an aggregate over a join on a string key of a file
// scan (passed through a map and under a filter, with rows in memory
// too) joins on codes, and gives the reference's rows: inner and left
// joins, the string key alone and with an integer key, one goroutine or
// several. A join that outputs the probe key joins on strings.
func TestCodedJoinKeys(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	r := rand.New(rand.NewSource(10))
	_, db := testData(r, 3000)
	st, ft := fileStore(t, t.TempDir(), db, 2, 400, 500, false)
	defer ft.Close()
	rel, drel := testRel(), testDRel()
	for _, how := range []plan.JoinType{plan.InnerJoin, plan.LeftJoin} {
		for _, keys := range [][]string{{"key"}, {"k1", "key"}} {
			for _, outKey := range []bool{false, true} {
				s := plantest.Scan("t", rel, "k1", "k2", "v")
				m := &plan.Map{Input: s, Exprs: []plan.NamedExpr{{Name: "key", Expr: plantest.Col(rel, "k2")}, {Name: "k1", Expr: plantest.Col(rel, "k1")},
					{Name: "v", Expr: plantest.Col(rel, "v")}}}
				f := plantest.Filter(m, plantest.Call("greaterThan", plantest.Col(m.Relation(), "v"), plantest.Lit(int64(-500000))))
				right := []string{"k2"}
				if len(keys) == 2 {
					right = []string{"k1", "k2"}
				}
				out := []plan.JoinColumn{{Side: 0, Name: "v", As: "v"}, {Side: 1, Name: "name", As: "name"}}
				if outKey {
					out = append(out, plan.JoinColumn{Side: 0, Name: "key", As: "key"})
				}
				j := &plan.Join{Left: f, Right: plantest.Scan("d", drel, "k1", "k2", "name"), How: how,
					LeftOn: keys, RightOn: right, Output: out}
				agg := &plan.Aggregate{Input: j, Mode: plan.AggFull, Groups: []string{"name"},
					Aggs: []plan.AggExpr{plantest.Agg("n", "count", plantest.Col(j.Relation(), "v")), plantest.Agg("s", "sum", plantest.Col(j.Relation(), "v"))}}
				p := &plan.Plan{Sinks: []*plan.Sink{{Input: agg, Name: "out"}}}
				for _, par := range []int{1, 3} {
					q := newQuery(0, Options{Store: st, Parallelism: par})
					q.countParents(p.Sinks[0])
					op, err := q.buildNode(agg)
					if err != nil {
						t.Fatal(err)
					}
					op.close()
					if coded := len(q.joinCodes) > 0; coded == outKey {
						t.Errorf("%v join on %v (key output %v): coded %v", how, keys, outKey, coded)
					}
					res, err := Collect(context.Background(), p, Options{Store: st, MaxRowsPerTable: -1, Parallelism: par})
					if err != nil {
						t.Fatal(err)
					}
					if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, agg)); err != nil {
						t.Fatalf("%v join on %v, parallelism %d: %v", how, keys, par, err)
					}
				}
			}
		}
	}
}
