package plantest

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// The reference evaluator is plain Go over rows of []any, one row at a
// time, and shares no code with exec: it is what exec's operators are
// checked against, and what planner's rewrites must not change. Scalar
// calls run their funcs kernel on one row's constant arguments (funcs'
// own tests check that this agrees with the vectorized path); aggregates
// and joins are recomputed here. It keeps row order: rows come out of a
// scan in table order, groups in the order their first row came, and a
// join in the order of its outer side, as exec's operators do, so that
// limits are deterministic and a rewrite that moves one wrongly shows.

// Table is a table's rows: values in the Go types funcs uses (int64 for
// INT64 and TIME64NS, float64, string, bool, types.UInt128Value), in the
// order of Rel's columns.
type Table struct {
	Rel  types.Relation
	Rows [][]any
}

// DB is the tables a plan reads, by name.
type DB map[string]*Table

// Eval evaluates n over db and returns its rows, with values in the order
// of n.Relation()'s columns. It stops t on a node or expression it does
// not know.
func Eval(t testing.TB, db DB, n plan.Node) [][]any {
	t.Helper()
	return newEvaluator(t, db, 0).node(n)
}

// EvalPlan evaluates every sink of p, in order; a node that several sinks
// read is evaluated once. Calls see p.Now as the query's now.
func EvalPlan(t testing.TB, db DB, p *plan.Plan) [][][]any {
	t.Helper()
	e := newEvaluator(t, db, p.Now)
	out := make([][][]any, len(p.Sinks))
	for i, s := range p.Sinks {
		out[i] = e.node(s)
	}
	return out
}

type evaluator struct {
	t    testing.TB
	db   DB
	now  int64
	memo map[plan.Node][][]any
}

func newEvaluator(t testing.TB, db DB, now int64) *evaluator {
	return &evaluator{t: t, db: db, now: now, memo: map[plan.Node][][]any{}}
}

func (e *evaluator) node(n plan.Node) [][]any {
	if rows, ok := e.memo[n]; ok {
		return rows
	}
	var out [][]any
	switch n := n.(type) {
	case *plan.Scan:
		out = e.scan(n)
	case *plan.Map:
		rel := n.Input.Relation()
		for _, r := range e.node(n.Input) {
			row := make([]any, len(n.Exprs))
			for k, x := range n.Exprs {
				row[k] = e.expr(x.Expr, rel, r)
			}
			out = append(out, row)
		}
	case *plan.Filter:
		rel := n.Input.Relation()
		for _, r := range e.node(n.Input) {
			if e.expr(n.Cond, rel, r).(bool) {
				out = append(out, r)
			}
		}
	case *plan.Limit:
		in := e.node(n.Input)
		out = in[:min(int64(len(in)), n.N)]
	case *plan.Union:
		rel := n.Relation()
		for _, c := range n.Inputs {
			crel := c.Relation()
			for _, r := range e.node(c) {
				row := make([]any, len(rel))
				for i, col := range rel {
					row[i] = r[crel.Index(col.Name)]
				}
				out = append(out, row)
			}
		}
	case *plan.Aggregate:
		out = e.aggregate(n)
	case *plan.Join:
		out = e.join(n)
	case *plan.Sink:
		out = e.node(n.Input)
	default:
		e.t.Fatalf("reference evaluator: no %T (%s)", n, n.Describe())
	}
	e.memo[n] = out
	return out
}

func (e *evaluator) scan(n *plan.Scan) [][]any {
	tb := e.db[n.Table]
	if tb == nil {
		e.t.Fatalf("reference evaluator: no table %s", n.Table)
	}
	ti := tb.Rel.Index("time_")
	idx := make([]int, len(n.Columns))
	for i, c := range n.Columns {
		if idx[i] = tb.Rel.Index(c); idx[i] < 0 {
			e.t.Fatalf("reference evaluator: %s reads column %s, not in %s", n.Describe(), c, tb.Rel)
		}
	}
	var out [][]any
	for _, r := range tb.Rows {
		if ti >= 0 {
			ts := r[ti].(int64)
			if (n.Start > 0 && ts < n.Start) || (n.End > 0 && ts >= n.End) {
				continue
			}
		}
		if n.Filter != nil && !e.expr(n.Filter, tb.Rel, r).(bool) {
			continue
		}
		if n.Limit > 0 && int64(len(out)) == n.Limit {
			break
		}
		row := make([]any, len(idx))
		for i, k := range idx {
			row[i] = r[k]
		}
		out = append(out, row)
	}
	return out
}

func (e *evaluator) expr(x plan.Expr, rel types.Relation, row []any) any {
	switch x := x.(type) {
	case *plan.Column:
		i := rel.Index(x.Name)
		if i < 0 {
			e.t.Fatalf("reference evaluator: no column %s in %s", x.Name, rel)
		}
		return row[i]
	case *plan.Literal:
		return x.Value
	case *plan.Call:
		args := make([]funcs.Value, len(x.Args))
		for i, a := range x.Args {
			args[i] = funcs.Value{Const: e.expr(a, rel, row)}
		}
		o, err := funcs.Resolve(x.Func, argTypes(x.Args))
		if err != nil {
			e.t.Fatalf("reference evaluator: %v", err)
		}
		if o.Kernel == nil {
			e.t.Fatalf("reference evaluator: %s has no kernel", x.Func)
		}
		v, err := o.Kernel(&funcs.Context{Now: e.now}, args, 1)
		if err != nil {
			e.t.Fatalf("reference evaluator: %s: %v", x, err)
		}
		c := v.Const
		if !v.IsConst() {
			c = funcs.ArrayValue(v.Array, 0)
		}
		if x.T == types.Float64 {
			f, err := funcs.ConstFloat(c)
			if err != nil {
				e.t.Fatalf("reference evaluator: %s: %v", x, err)
			}
			return f
		}
		return c
	}
	e.t.Fatalf("reference evaluator: cannot evaluate %s (%T)", x, x)
	return nil
}

func (e *evaluator) aggregate(n *plan.Aggregate) [][]any {
	if n.Mode != plan.AggFull {
		e.t.Fatalf("reference evaluator: %s: only full aggregates", n.Describe())
	}
	rel := n.Input.Relation()
	type group struct {
		key  []any
		rows [][]any
	}
	var order []*group
	byKey := map[string]*group{}
	for _, r := range e.node(n.Input) {
		key := make([]any, len(n.Groups))
		for i, g := range n.Groups {
			key[i] = r[rel.Index(g)]
		}
		k := fmt.Sprintf("%#v", key)
		g, ok := byKey[k]
		if !ok {
			g = &group{key: key}
			byKey[k] = g
			order = append(order, g)
		}
		g.rows = append(g.rows, r)
	}
	if len(n.Groups) == 0 && len(order) == 0 {
		order = append(order, &group{})
	}
	out := make([][]any, len(order))
	for i, g := range order {
		row := append([]any(nil), g.key...)
		for _, a := range n.Aggs {
			vals := make([]any, len(g.rows))
			if len(a.Args) > 0 {
				for k, r := range g.rows {
					vals[k] = e.expr(a.Args[0], rel, r)
				}
			}
			row = append(row, e.agg(a.Func, a.T, vals))
		}
		out[i] = row
	}
	return out
}

// agg computes aggregate name over one group's argument values.
func (e *evaluator) agg(name string, rt types.DataType, vals []any) any {
	num := func(v any) float64 {
		switch x := v.(type) {
		case bool:
			if x {
				return 1
			}
			return 0
		case int64:
			return float64(x)
		case float64:
			return x
		}
		e.t.Fatalf("reference evaluator: %s of a %T", name, v)
		return 0
	}
	switch name {
	case "count":
		return int64(len(vals))
	case "sum":
		if rt == types.Float64 {
			s := 0.0
			for _, v := range vals {
				s += num(v)
			}
			return s
		}
		var s int64
		for _, v := range vals {
			switch x := v.(type) {
			case bool:
				if x {
					s++
				}
			case int64:
				s += x
			default:
				e.t.Fatalf("reference evaluator: sum of a %T", v)
			}
		}
		return s
	case "mean":
		if len(vals) == 0 {
			return 0.0
		}
		s := 0.0
		for _, v := range vals {
			s += num(v)
		}
		return s / float64(len(vals))
	case "min", "max":
		if len(vals) == 0 {
			return funcs.ZeroValue(rt)
		}
		best := vals[0]
		for _, v := range vals[1:] {
			if (name == "min" && num(v) < num(best)) || (name == "max" && num(v) > num(best)) {
				best = v
			}
		}
		return best
	}
	e.t.Fatalf("reference evaluator: no aggregate %s", name)
	return nil
}

func (e *evaluator) join(n *plan.Join) [][]any {
	left, right := e.node(n.Left), e.node(n.Right)
	lrel, rrel := n.Left.Relation(), n.Right.Relation()
	match := func(l, r []any) bool {
		for k := range n.LeftOn {
			if !reflect.DeepEqual(l[lrel.Index(n.LeftOn[k])], r[rrel.Index(n.RightOn[k])]) {
				return false
			}
		}
		return true
	}
	// emit makes an output row; a nil side is an unmatched one, whose
	// columns are their types' zero values.
	emit := func(l, r []any) []any {
		row := make([]any, len(n.Output))
		for i, c := range n.Output {
			side, rel := l, lrel
			if c.Side == 1 {
				side, rel = r, rrel
			}
			k := rel.Index(c.Name)
			if side == nil {
				row[i] = funcs.ZeroValue(rel[k].Type)
			} else {
				row[i] = side[k]
			}
		}
		return row
	}
	var out [][]any
	if n.How == plan.RightJoin {
		for _, r := range right {
			found := false
			for _, l := range left {
				if match(l, r) {
					out = append(out, emit(l, r))
					found = true
				}
			}
			if !found {
				out = append(out, emit(nil, r))
			}
		}
		return out
	}
	matched := make([]bool, len(right))
	for _, l := range left {
		found := false
		for k, r := range right {
			if match(l, r) {
				out = append(out, emit(l, r))
				found, matched[k] = true, true
			}
		}
		if !found && n.How != plan.InnerJoin {
			out = append(out, emit(l, nil))
		}
	}
	if n.How == plan.OuterJoin {
		for k, r := range right {
			if !matched[k] {
				out = append(out, emit(nil, r))
			}
		}
	}
	return out
}

// SameRows reports how got differs from want, row by row and column by
// column: nil when they are equal, floats within a relative 1e-9.
func SameRows(got, want [][]any) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return fmt.Errorf("row %d: %d columns, want %d\n got %v\nwant %v", i, len(got[i]), len(want[i]), got[i], want[i])
		}
		for k := range got[i] {
			g, w := got[i][k], want[i][k]
			if gf, ok := g.(float64); ok {
				wf, _ := funcs.ConstFloat(w)
				if gf == wf || (math.IsNaN(gf) && math.IsNaN(wf)) || math.Abs(gf-wf) <= 1e-9*math.Max(1, math.Abs(wf)) {
					continue
				}
				return fmt.Errorf("row %d col %d: %v, want %v\n got %v\nwant %v", i, k, g, w, got[i], want[i])
			}
			if !reflect.DeepEqual(g, w) {
				return fmt.Errorf("row %d col %d: %v (%T), want %v (%T)\n got %v\nwant %v", i, k, g, g, w, w, got[i], want[i])
			}
		}
	}
	return nil
}
