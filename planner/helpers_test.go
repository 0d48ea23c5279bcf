package planner

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/types"
)

// scan reads the named columns (all when none are named) of one of
// schema's tables.
func scan(t schema.Table, cols ...string) *plan.Scan {
	if len(cols) == 0 {
		return &plan.Scan{Table: t.Name, Columns: t.Relation.Names(), Rel: t.Relation}
	}
	s := &plan.Scan{Table: t.Name, Columns: cols}
	for _, c := range cols {
		s.Rel = append(s.Rel, t.Relation[t.Relation.Index(c)])
	}
	return s
}

// col references column name of n's output, typed from n's relation.
func col(n plan.Node, name string) *plan.Column {
	rel := n.Relation()
	i := rel.Index(name)
	if i < 0 {
		panic("test plan: no column " + name + " in " + rel.String())
	}
	return &plan.Column{Name: name, T: rel[i].Type, Sem: rel[i].Semantic}
}

// lit makes a literal of v's natural type.
func lit(v any) *plan.Literal {
	switch v := v.(type) {
	case bool:
		return &plan.Literal{Value: v, T: types.Boolean}
	case int:
		return &plan.Literal{Value: int64(v), T: types.Int64}
	case int64:
		return &plan.Literal{Value: v, T: types.Int64}
	case float64:
		return &plan.Literal{Value: v, T: types.Float64}
	case string:
		return &plan.Literal{Value: v, T: types.String}
	case types.UInt128Value:
		return &plan.Literal{Value: v, T: types.UInt128}
	}
	panic("test plan: bad literal")
}

// timeLit makes a TIME64NS literal.
func timeLit(ns int64) *plan.Literal {
	return &plan.Literal{Value: ns, T: types.Time64NS, Sem: types.STTimeNS}
}

// cmp builds a BOOLEAN call such as equal(a, b).
func cmp(fn string, a, b plan.Expr) *plan.Call {
	return &plan.Call{Func: fn, Args: []plan.Expr{a, b}, T: types.Boolean}
}

// call builds a call of type t.
func call(fn string, t types.DataType, args ...plan.Expr) *plan.Call {
	return &plan.Call{Func: fn, Args: args, T: t}
}

// project builds a map keeping the named columns of in, in order.
func project(in plan.Node, names ...string) *plan.Map {
	m := &plan.Map{Input: in}
	for _, n := range names {
		m.Exprs = append(m.Exprs, plan.NamedExpr{Name: n, Expr: col(in, n)})
	}
	return m
}

// withExpr builds a map that passes every column of in through and adds
// (or replaces) one computed column, as df.x = e does.
func withExpr(in plan.Node, name string, e plan.Expr) *plan.Map {
	m := &plan.Map{Input: in}
	for _, c := range in.Relation() {
		if c.Name != name {
			m.Exprs = append(m.Exprs, plan.NamedExpr{Name: c.Name, Expr: col(in, c.Name)})
		}
	}
	m.Exprs = append(m.Exprs, plan.NamedExpr{Name: name, Expr: e})
	return m
}

func filter(in plan.Node, cond plan.Expr) *plan.Filter { return &plan.Filter{Input: in, Cond: cond} }

func limit(in plan.Node, n int64) *plan.Limit { return &plan.Limit{Input: in, N: n} }

// sinks makes a plan with one sink per node, named out0, out1, …
func sinks(nodes ...plan.Node) *plan.Plan {
	p := &plan.Plan{Now: 1_700_000_000_000_000_000}
	for i, n := range nodes {
		p.Sinks = append(p.Sinks, &plan.Sink{Input: n, Name: "out" + string(rune('0'+i))})
	}
	return p
}

// text trims the common indentation of a raw string literal so that
// expected plans can be written indented in the test source.
func text(s string) string {
	lines := strings.Split(strings.TrimRight(strings.TrimLeft(s, "\n"), " \t\n"), "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "\t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// ruleCase is one table-driven test of a rule: a plan and the text the
// rule (run to its own fixpoint) must turn it into.
type ruleCase struct {
	name string
	in   *plan.Plan
	want string
}

// runRuleCases checks every case with the given rules alone.
func runRuleCases(t *testing.T, rules []Rule, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := plan.Format(tc.in)
			got, err := OptimizeWith(tc.in, rules)
			if err != nil {
				t.Fatalf("optimize: %v", err)
			}
			if g, w := plan.Format(got), text(tc.want); g != w {
				t.Errorf("plan:\n%s\nwant:\n%s", g, w)
			}
			if after := plan.Format(tc.in); after != before {
				t.Errorf("rule modified its input plan:\n%s\nwas:\n%s", after, before)
			}
			checkPlan(t, got)
		})
	}
}

// checkPlan verifies that every column a node reads exists in its input,
// with the type the expression claims.
func checkPlan(t *testing.T, p *plan.Plan) {
	t.Helper()
	check := func(n plan.Node, in types.Relation, e plan.Expr) {
		plan.WalkExpr(e, func(x plan.Expr) {
			c, ok := x.(*plan.Column)
			if !ok {
				return
			}
			i := in.Index(c.Name)
			if i < 0 {
				t.Errorf("%s reads missing column %s of %s", n.Describe(), c.Name, in)
			} else if in[i].Type != c.T {
				t.Errorf("%s reads %s as %s, but it is %s", n.Describe(), c.Name, c.T, in[i].Type)
			}
		})
	}
	plan.Walk(p, func(n plan.Node) {
		switch x := n.(type) {
		case *plan.Scan:
			if len(x.Columns) != len(x.Rel) {
				t.Errorf("%s: %d columns but relation %s", x.Describe(), len(x.Columns), x.Rel)
			}
			if x.Filter != nil {
				check(n, x.Rel, x.Filter)
			}
		case *plan.Map:
			for _, e := range x.Exprs {
				check(n, x.Input.Relation(), e.Expr)
			}
		case *plan.Filter:
			check(n, x.Input.Relation(), x.Cond)
		case *plan.Aggregate:
			in := x.Input.Relation()
			for _, g := range x.Groups {
				if in.Index(g) < 0 {
					t.Errorf("%s: missing group column %s", x.Describe(), g)
				}
			}
			if x.Mode != plan.AggFinal {
				for _, a := range x.Aggs {
					for _, arg := range a.Args {
						check(n, in, arg)
					}
				}
			}
		case *plan.Join:
			sides := [2]types.Relation{x.Left.Relation(), x.Right.Relation()}
			for i, k := range x.LeftOn {
				if sides[0].Index(k) < 0 || sides[1].Index(x.RightOn[i]) < 0 {
					t.Errorf("%s: missing key", x.Describe())
				}
			}
			for _, c := range x.Output {
				if sides[c.Side].Index(c.Name) < 0 {
					t.Errorf("%s: missing output column %s", x.Describe(), c.Name)
				}
			}
		}
	})
}
