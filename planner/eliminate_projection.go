package planner

import "github.com/pxq-dev/pxq/plan"

// eliminateProjection removes a map that passes its input through
// unchanged: the same columns, with the same names, in the same order.
// Its parents then read the input directly.
type eliminateProjection struct{}

func (eliminateProjection) Name() string { return "eliminate_projection" }

func (eliminateProjection) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	return transformUp(p, func(n plan.Node, _ func(plan.Node) bool) (plan.Node, error) {
		m, ok := n.(*plan.Map)
		if !ok || !isIdentity(m) {
			return n, nil
		}
		return m.Input, nil
	})
}

// isIdentity reports whether m outputs exactly its input's columns.
func isIdentity(m *plan.Map) bool {
	in := m.Input.Relation()
	if len(in) != len(m.Exprs) {
		return false
	}
	for i, e := range m.Exprs {
		c, ok := e.Expr.(*plan.Column)
		if !ok || e.Name != in[i].Name || c.Name != in[i].Name || c.Sem != in[i].Semantic {
			return false
		}
	}
	return true
}
