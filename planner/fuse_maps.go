package planner

import "github.com/pxq-dev/pxq/plan"

// fuseMaps merges a map into the map right below it by substituting the
// inner map's expressions for the outer map's column references.
//
// It fuses only when no computed (non-column, non-literal) inner
// expression would be evaluated more than once as a result, and never when
// the inner map has other parents.
type fuseMaps struct{}

func (fuseMaps) Name() string { return "fuse_maps" }

func (fuseMaps) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	return transformUp(p, func(n plan.Node, shared func(plan.Node) bool) (plan.Node, error) {
		outer, ok := n.(*plan.Map)
		if !ok {
			return n, nil
		}
		inner, ok := outer.Input.(*plan.Map)
		if !ok || shared(inner) {
			return n, nil
		}
		defs := map[string]plan.Expr{}
		for _, e := range inner.Exprs {
			defs[e.Name] = e.Expr
		}
		uses := map[string]int{}
		for _, e := range outer.Exprs {
			plan.WalkExpr(e.Expr, func(x plan.Expr) {
				if c, ok := x.(*plan.Column); ok {
					uses[c.Name]++
				}
			})
		}
		for name, count := range uses {
			if _, isCall := defs[name].(*plan.Call); isCall && count > 1 {
				return n, nil
			}
		}
		exprs := make([]plan.NamedExpr, len(outer.Exprs))
		for i, e := range outer.Exprs {
			exprs[i] = plan.NamedExpr{Name: e.Name, Expr: substitute(e.Expr, defs)}
		}
		return &plan.Map{Input: inner.Input, Exprs: exprs, Pos: outer.Pos}, nil
	})
}
