package exec

import (
	"context"
	"math/rand"
	"testing"

	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
)

// TestRandomPlansInMemoryParts: tables held in memory only run in parts
// on several goroutines too (parts of a few batches here); random plans
// give the reference's rows with 1 to 4 goroutines, and an aggregate over
// a filter does run per part.
func TestRandomPlansInMemoryParts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	defer func(n int64) { memPartRows = n }(memPartRows)
	memPartRows = 200
	r := rand.New(rand.NewSource(22))
	for trial := 0; trial < 200; trial++ {
		st, db := testData(r, r.Intn(3000))
		g := &planGen{r: r}
		root := g.node(1 + r.Intn(3))
		p := &plan.Plan{Sinks: []*plan.Sink{{Input: root, Name: "out"}}}
		opts := Options{Store: st, MaxRowsPerTable: -1, BatchSize: 1 + r.Intn(2000), Parallelism: 1 + r.Intn(4)}
		res, err := Collect(context.Background(), p, opts)
		if err != nil {
			t.Fatalf("trial %d: %v\n%s", trial, err, plan.Format(p))
		}
		if err := plantest.SameRows(rowsOf(res), plantest.Eval(t, db, root)); err != nil {
			t.Fatalf("trial %d (parallelism %d): %v\n%s", trial, opts.Parallelism, err, plan.Format(p))
		}
	}
	st, _ := testData(r, 3000)
	rel := testRel()
	f := plantest.Filter(plantest.Scan("t", rel, "k1", "v"), plantest.Call("greaterThan", plantest.Col(rel, "v"), plantest.Lit(int64(0))))
	agg := &plan.Aggregate{Input: f, Mode: plan.AggFull, Groups: []string{"k1"},
		Aggs: []plan.AggExpr{plantest.Agg("n", "count", plantest.Col(rel, "v"))}}
	q := newQuery(0, Options{Store: st, Parallelism: 3})
	q.countParents(&plan.Sink{Input: agg, Name: "out"})
	op, err := q.buildNode(agg)
	if err != nil {
		t.Fatal(err)
	}
	defer op.close()
	if a, ok := op.(*guard).op.(*aggregateOp); !ok || a.node.Mode != plan.AggFinal {
		t.Errorf("aggregate over an in-memory table: %T, not a final aggregate over parts", op.(*guard).op)
	}
}
