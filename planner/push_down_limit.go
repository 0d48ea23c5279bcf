package planner

import "github.com/pxq-dev/pxq/plan"

// pushDownLimit moves limits toward the data where that is exact:
//
//   - two stacked limits become one with the smaller count;
//   - a limit moves below a map (maps keep one output row per input row);
//   - a limit over a union also limits every union input (the union's own
//     limit stays);
//   - a limit right over a scan copies its count into Scan.Limit, so the
//     scan stops early; the limit node stays, because after the
//     distributed split it is the global limit over all agents.
//
// A limit never moves below a filter, an aggregate or a join, nor below a
// node that other parents share.
type pushDownLimit struct{}

func (pushDownLimit) Name() string { return "push_down_limit" }

func (pushDownLimit) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	return transformUp(p, func(n plan.Node, shared func(plan.Node) bool) (plan.Node, error) {
		l, ok := n.(*plan.Limit)
		if !ok || shared(l.Input) {
			return n, nil
		}
		switch in := l.Input.(type) {
		case *plan.Limit:
			return &plan.Limit{Input: in.Input, N: min(l.N, in.N), Pos: l.Pos}, nil
		case *plan.Map:
			m := *in
			m.Input = &plan.Limit{Input: in.Input, N: l.N, Pos: l.Pos}
			return &m, nil
		case *plan.Union:
			u := *in
			u.Inputs = make([]plan.Node, len(in.Inputs))
			changed := false
			for i, x := range in.Inputs {
				if k := rowsAtMost(x); k >= 0 && k <= l.N {
					u.Inputs[i] = x
					continue
				}
				u.Inputs[i] = &plan.Limit{Input: x, N: l.N, Pos: l.Pos}
				changed = true
			}
			if !changed {
				return n, nil
			}
			return &plan.Limit{Input: &u, N: l.N, Pos: l.Pos}, nil
		case *plan.Scan:
			if l.N <= 0 || in.Limit > 0 && in.Limit <= l.N {
				return n, nil
			}
			s := *in
			s.Limit = l.N
			return &plan.Limit{Input: &s, N: l.N, Pos: l.Pos}, nil
		}
		return n, nil
	})
}

// rowsAtMost returns a bound on the rows n yields that limits below it
// guarantee, or -1 when there is none.
func rowsAtMost(n plan.Node) int64 {
	switch x := n.(type) {
	case *plan.Limit:
		return x.N
	case *plan.Map:
		return rowsAtMost(x.Input)
	case *plan.Scan:
		if x.Limit > 0 {
			return x.Limit
		}
	}
	return -1
}
