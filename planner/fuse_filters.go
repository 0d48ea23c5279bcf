package planner

import "github.com/pxq-dev/pxq/plan"

// fuseFilters merges a filter into the filter right below it, ANDing their
// conditions (inner first), so that later rules see one condition.
//
// The inner filter is left alone when another parent shares it.
type fuseFilters struct{}

func (fuseFilters) Name() string { return "fuse_filters" }

func (fuseFilters) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	return transformUp(p, func(n plan.Node, shared func(plan.Node) bool) (plan.Node, error) {
		outer, ok := n.(*plan.Filter)
		if !ok {
			return n, nil
		}
		inner, ok := outer.Input.(*plan.Filter)
		if !ok || shared(inner) {
			return n, nil
		}
		return &plan.Filter{Input: inner.Input, Cond: and(inner.Cond, outer.Cond), Pos: outer.Pos}, nil
	})
}
