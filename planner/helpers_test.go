package planner

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/types"
)

// The plan builders of the planner's tests are plantest's, under short
// names; call takes the result type, as rules move calls they need not
// resolve.
var (
	lit      = plantest.Lit
	timeLit  = plantest.TimeLit
	cmp      = plantest.Cmp
	call     = plantest.CallT
	project  = plantest.Project
	withExpr = plantest.WithExpr
	filter   = plantest.Filter
	limit    = plantest.Limit
	sinks    = plantest.Sinks
)

// scan reads the named columns (all when none are named) of one of
// schema's tables.
func scan(t schema.Table, cols ...string) *plan.Scan {
	return plantest.Scan(t.Name, t.Relation, cols...)
}

// col references column name of n's output.
func col(n plan.Node, name string) *plan.Column { return plantest.Col(n.Relation(), name) }

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
