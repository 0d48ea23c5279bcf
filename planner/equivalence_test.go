package planner

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// This file checks that Optimize never changes results, by running plans
// before and after optimization on a tiny row-at-a-time reference
// evaluator over random data. The evaluator keeps row order, so limits
// are deterministic and any rewrite that moves a limit wrongly shows.

type row map[string]any

// evalPlan runs p and renders every sink's rows, one line per row with the
// sink's columns in order.
func evalPlan(t *testing.T, p *plan.Plan, data map[string][]row) string {
	t.Helper()
	memo := map[plan.Node][]row{}
	var b strings.Builder
	for _, s := range p.Sinks {
		rows := evalNode(t, s.Input, data, memo)
		cols := s.Relation().Names()
		fmt.Fprintf(&b, "%s %v\n", s.Name, cols)
		for _, r := range rows {
			for _, c := range cols {
				fmt.Fprintf(&b, "%v ", r[c])
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func evalNode(t *testing.T, n plan.Node, data map[string][]row, memo map[plan.Node][]row) []row {
	if rows, ok := memo[n]; ok {
		return rows
	}
	var out []row
	switch x := n.(type) {
	case *plan.Scan:
		for _, r := range data[x.Table] {
			tm := r["time_"].(int64)
			if (x.Start != 0 && tm < x.Start) || (x.End != 0 && tm >= x.End) {
				continue
			}
			if x.Filter != nil && !evalExpr(t, x.Filter, r).(bool) {
				continue
			}
			if x.Limit > 0 && int64(len(out)) >= x.Limit {
				break
			}
			o := row{}
			for _, c := range x.Columns {
				o[c] = r[c]
			}
			out = append(out, o)
		}
	case *plan.Map:
		for _, r := range evalNode(t, x.Input, data, memo) {
			o := row{}
			for _, e := range x.Exprs {
				o[e.Name] = evalExpr(t, e.Expr, r)
			}
			out = append(out, o)
		}
	case *plan.Filter:
		for _, r := range evalNode(t, x.Input, data, memo) {
			if evalExpr(t, x.Cond, r).(bool) {
				out = append(out, r)
			}
		}
	case *plan.Limit:
		in := evalNode(t, x.Input, data, memo)
		out = in[:min(int64(len(in)), x.N)]
	case *plan.Aggregate:
		groups := map[string]row{}
		var keys []string
		for _, r := range evalNode(t, x.Input, data, memo) {
			k := fmt.Sprint(groupKey(r, x.Groups))
			g, ok := groups[k]
			if !ok {
				g = row{}
				for _, c := range x.Groups {
					g[c] = r[c]
				}
				for _, a := range x.Aggs {
					g[a.Name] = int64(0)
				}
				groups[k] = g
				keys = append(keys, k)
			}
			for _, a := range x.Aggs {
				g[a.Name] = g[a.Name].(int64) + evalExpr(t, a.Args[0], r).(int64)
			}
		}
		if len(x.Groups) == 0 && len(keys) == 0 {
			g := row{}
			for _, a := range x.Aggs {
				g[a.Name] = int64(0)
			}
			groups[""], keys = g, []string{""}
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, groups[k])
		}
	case *plan.Join:
		left, right := evalNode(t, x.Left, data, memo), evalNode(t, x.Right, data, memo)
		matchedRight := map[int]bool{}
		emit := func(l, r row) {
			o := row{}
			for _, c := range x.Output {
				src := l
				if c.Side == 1 {
					src = r
				}
				o[c.As] = src[c.Name]
				if src == nil {
					o[c.As] = zeroOf(sideRel(x, c.Side), c.Name)
				}
			}
			out = append(out, o)
		}
		for _, l := range left {
			matched := false
			for i, r := range right {
				if fmt.Sprint(groupKey(l, x.LeftOn)) == fmt.Sprint(groupKey(r, x.RightOn)) {
					emit(l, r)
					matched, matchedRight[i] = true, true
				}
			}
			if !matched && (x.How == plan.LeftJoin || x.How == plan.OuterJoin) {
				emit(l, nil)
			}
		}
		if x.How == plan.RightJoin || x.How == plan.OuterJoin {
			for i, r := range right {
				if !matchedRight[i] {
					emit(nil, r)
				}
			}
		}
	case *plan.Union:
		for _, in := range x.Inputs {
			out = append(out, evalNode(t, in, data, memo)...)
		}
	default:
		t.Fatalf("reference evaluator: no %T", n)
	}
	memo[n] = out
	return out
}

func sideRel(j *plan.Join, side int) types.Relation {
	if side == 0 {
		return j.Left.Relation()
	}
	return j.Right.Relation()
}

func zeroOf(rel types.Relation, name string) any {
	switch rel[rel.Index(name)].Type {
	case types.Boolean:
		return false
	case types.String:
		return ""
	case types.Float64:
		return 0.0
	}
	return int64(0)
}

func groupKey(r row, cols []string) []any {
	k := make([]any, len(cols))
	for i, c := range cols {
		k[i] = r[c]
	}
	return k
}

func evalExpr(t *testing.T, e plan.Expr, r row) any {
	switch x := e.(type) {
	case *plan.Column:
		v, ok := r[x.Name]
		if !ok {
			t.Fatalf("reference evaluator: no column %s in %v", x.Name, r)
		}
		return v
	case *plan.Literal:
		return x.Value
	case *plan.Call:
		args := make([]any, len(x.Args))
		for i, a := range x.Args {
			args[i] = evalExpr(t, a, r)
		}
		switch x.Func {
		case fnAnd:
			return args[0].(bool) && args[1].(bool)
		case fnOr:
			return args[0].(bool) || args[1].(bool)
		case fnEq:
			return args[0] == args[1]
		case fnGt:
			return args[0].(int64) > args[1].(int64)
		case fnGe:
			return args[0].(int64) >= args[1].(int64)
		case fnLt:
			return args[0].(int64) < args[1].(int64)
		case fnLe:
			return args[0].(int64) <= args[1].(int64)
		case "add":
			return args[0].(int64) + args[1].(int64)
		case fnSelect:
			if args[0].(bool) {
				return args[1]
			}
			return args[2]
		}
	}
	t.Fatalf("reference evaluator: cannot evaluate %s", e)
	return nil
}

// randomData fills the two test tables with rows in time order.
func randomData(r *rand.Rand) map[string][]row {
	data := map[string][]row{}
	for _, tab := range []string{"http_events", "conn_stats"} {
		for i := 0; i < 40; i++ {
			data[tab] = append(data[tab], row{
				"time_": int64(100 + i*10 + r.Intn(10)), "upid": int64(r.Intn(4)),
				"resp_status": int64(200 + 100*r.Intn(4)), "latency": int64(r.Intn(50)),
				"bytes_sent": int64(r.Intn(1000)), "req_path": fmt.Sprintf("/p%d", r.Intn(3)),
			})
		}
	}
	return data
}

// randomQuery builds a random plan over the test tables from operators
// the reference evaluator knows, sharing nodes between sinks at times.
func randomQuery(r *rand.Rand) *plan.Plan {
	httpRel := types.Relation{
		{Name: "time_", Type: types.Time64NS}, {Name: "upid", Type: types.Int64}, {Name: "req_path", Type: types.String},
		{Name: "resp_status", Type: types.Int64}, {Name: "latency", Type: types.Int64}}
	connRel := types.Relation{{Name: "time_", Type: types.Time64NS}, {Name: "upid", Type: types.Int64}, {Name: "bytes_sent", Type: types.Int64}}
	newScan := func() plan.Node {
		if r.Intn(3) == 0 {
			return &plan.Scan{Table: "conn_stats", Columns: connRel.Names(), Rel: connRel}
		}
		return &plan.Scan{Table: "http_events", Columns: httpRel.Names(), Rel: httpRel}
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
		data := randomData(r)
		want := evalPlan(t, p, data)
		opt, err := Optimize(p)
		if err != nil {
			t.Fatalf("optimize: %v\n%s", err, plan.Format(p))
		}
		if plan.Format(opt) != plan.Format(p) {
			rewritten++
		}
		if got := evalPlan(t, opt, data); got != want {
			t.Fatalf("case %d: results changed\nplan:\n%s\noptimized:\n%s\ngot:\n%s\nwant:\n%s", i, plan.Format(p), plan.Format(opt), got, want)
		}
	}
	t.Logf("optimize rewrote %d of %d random plans", rewritten, n)
	if rewritten < n/2 {
		t.Errorf("only %d of %d random plans were rewritten; the test no longer exercises the rules", rewritten, n)
	}
}
