package planner

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// This file checks that Optimize never changes results, by running plans
// before and after optimization on plantest's row-at-a-time reference
// evaluator over random data. The evaluator keeps row order, so limits
// are deterministic and any rewrite that moves a limit wrongly shows.

// The test tables' columns.
var (
	httpRel = types.Relation{
		{Name: "time_", Type: types.Time64NS}, {Name: "upid", Type: types.Int64}, {Name: "req_path", Type: types.String},
		{Name: "resp_status", Type: types.Int64}, {Name: "latency", Type: types.Int64}}
	connRel = types.Relation{{Name: "time_", Type: types.Time64NS}, {Name: "upid", Type: types.Int64}, {Name: "bytes_sent", Type: types.Int64}}
)

// randomData fills the two test tables with rows in time order.
func randomData(r *rand.Rand) plantest.DB {
	db := plantest.DB{"http_events": {Rel: httpRel}, "conn_stats": {Rel: connRel}}
	for _, name := range []string{"http_events", "conn_stats"} {
		tab := db[name]
		for i := 0; i < 40; i++ {
			vals := map[string]any{
				"time_": int64(100 + i*10 + r.Intn(10)), "upid": int64(r.Intn(4)),
				"resp_status": int64(200 + 100*r.Intn(4)), "latency": int64(r.Intn(50)),
				"bytes_sent": int64(r.Intn(1000)), "req_path": fmt.Sprintf("/p%d", r.Intn(3)),
			}
			row := make([]any, len(tab.Rel))
			for k, c := range tab.Rel {
				row[k] = vals[c.Name]
			}
			tab.Rows = append(tab.Rows, row)
		}
	}
	return db
}

// sameResults reports how the sinks of plan opt, which gave got, differ
// from those of p, which gave want.
func sameResults(p, opt *plan.Plan, got, want [][][]any) error {
	if len(opt.Sinks) != len(p.Sinks) {
		return fmt.Errorf("%d sinks, want %d", len(opt.Sinks), len(p.Sinks))
	}
	for i, s := range p.Sinks {
		o := opt.Sinks[i]
		if o.Name != s.Name || !slices.Equal(o.Relation().Names(), s.Relation().Names()) {
			return fmt.Errorf("sink %s %v, want %s %v", o.Name, o.Relation().Names(), s.Name, s.Relation().Names())
		}
		if err := plantest.SameRows(got[i], want[i]); err != nil {
			return fmt.Errorf("sink %s: %w", s.Name, err)
		}
	}
	return nil
}

// randomQuery builds a random plan over the test tables from operators
// the reference evaluator knows, sharing nodes between sinks at times.
func randomQuery(r *rand.Rand) *plan.Plan {
	newScan := func() plan.Node {
		if r.Intn(3) == 0 {
			return plantest.Scan("conn_stats", connRel)
		}
		return plantest.Scan("http_events", httpRel)
	}
	intCols := func(n plan.Node) []types.Column {
		var out []types.Column
		for _, c := range n.Relation() {
			if c.Type == types.Int64 || c.Type == types.Time64NS {
				out = append(out, c)
			}
		}
		return out
	}
	pred := func(n plan.Node) plan.Expr {
		var terms []plan.Expr
		for i := 0; i < 1+r.Intn(3); i++ {
			cs := intCols(n)
			if len(cs) == 0 {
				return lit(true)
			}
			c := cs[r.Intn(len(cs))]
			ops := []string{fnGt, fnGe, fnLt, fnLe, fnEq}
			v := &plan.Literal{Value: int64(r.Intn(500)), T: c.Type}
			if c.Name != "time_" {
				v.Value = int64(r.Intn(300))
			}
			term := plan.Expr(cmp(ops[r.Intn(len(ops))], &plan.Column{Name: c.Name, T: c.Type}, v))
			if r.Intn(5) == 0 {
				term = call(fnOr, types.Boolean, term, lit(r.Intn(2) == 0))
			}
			terms = append(terms, term)
		}
		return and(terms...)
	}
	nodes := []plan.Node{newScan()}
	for i := 0; i < 2+r.Intn(6); i++ {
		in := nodes[len(nodes)-1]
		if r.Intn(3) == 0 {
			in = nodes[r.Intn(len(nodes))]
		}
		var n plan.Node
		switch r.Intn(7) {
		case 0:
			n = filter(in, pred(in))
		case 1:
			n = limit(in, int64(1+r.Intn(20)))
		case 2:
			cs := intCols(in)
			if len(cs) == 0 {
				continue
			}
			c := cs[r.Intn(len(cs))]
			m := &plan.Map{Input: in}
			for _, rc := range in.Relation() {
				if r.Intn(4) > 0 {
					name := rc.Name
					if r.Intn(4) == 0 {
						name += "_r"
					}
					m.Exprs = append(m.Exprs, plan.NamedExpr{Name: name, Expr: &plan.Column{Name: rc.Name, T: rc.Type}})
				}
			}
			m.Exprs = append(m.Exprs, plan.NamedExpr{Name: fmt.Sprintf("x%d", i), Expr: call("add", types.Int64, &plan.Column{Name: c.Name, T: c.Type}, lit(int64(r.Intn(5))))})
			n = m
		case 3:
			cs := intCols(in)
			rel := in.Relation()
			if len(cs) == 0 {
				continue
			}
			a := &plan.Aggregate{Input: in, Aggs: []plan.AggExpr{{Name: fmt.Sprintf("s%d", i), Func: "sum", Args: []plan.Expr{&plan.Column{Name: cs[0].Name, T: cs[0].Type}}, T: types.Int64}}}
			if r.Intn(4) > 0 {
				a.Groups = []string{rel[r.Intn(len(rel))].Name}
			}
			n = a
		case 4:
			other := newScan()
			if in.Relation().Index("upid") < 0 {
				continue
			}
			j := &plan.Join{Left: in, Right: other, How: plan.JoinType(r.Intn(4)), LeftOn: []string{"upid"}, RightOn: []string{"upid"}}
			for _, c := range in.Relation() {
				j.Output = append(j.Output, plan.JoinColumn{Side: 0, Name: c.Name, As: c.Name})
			}
			for _, c := range other.Relation() {
				j.Output = append(j.Output, plan.JoinColumn{Side: 1, Name: c.Name, As: c.Name + "_y"})
			}
			n = j
		case 5:
			n = &plan.Union{Inputs: []plan.Node{in, in}}
		default:
			n = &plan.Map{Input: in, Exprs: []plan.NamedExpr{{Name: in.Relation()[0].Name, Expr: &plan.Column{Name: in.Relation()[0].Name, T: in.Relation()[0].Type}}}}
		}
		nodes = append(nodes, n)
	}
	p := &plan.Plan{Now: 1}
	p.Sinks = append(p.Sinks, &plan.Sink{Input: nodes[len(nodes)-1], Name: "main"})
	if len(nodes) > 2 && r.Intn(2) == 0 {
		p.Sinks = append(p.Sinks, &plan.Sink{Input: nodes[r.Intn(len(nodes)-1)], Name: "side"})
	}
	return p
}

func TestOptimizeKeepsResults(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	const n = 800
	rewritten := 0
	for i := 0; i < n; i++ {
		p := randomQuery(r)
		db := randomData(r)
		want := plantest.EvalPlan(t, db, p)
		opt, err := Optimize(p)
		if err != nil {
			t.Fatalf("optimize: %v\n%s", err, plan.Format(p))
		}
		if plan.Format(opt) != plan.Format(p) {
			rewritten++
		}
		if err := sameResults(p, opt, plantest.EvalPlan(t, db, opt), want); err != nil {
			t.Fatalf("case %d: results changed: %v\nplan:\n%s\noptimized:\n%s", i, err, plan.Format(p), plan.Format(opt))
		}
	}
	t.Logf("optimize rewrote %d of %d random plans", rewritten, n)
	if rewritten < n/2 {
		t.Errorf("only %d of %d random plans were rewritten; the test no longer exercises the rules", rewritten, n)
	}
}
