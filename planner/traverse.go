package planner

import "github.com/pxq-dev/pxq/plan"

// parentCounts returns, for every node reachable from p's sinks, how many
// parent edges point at it. A node with more than one parent is shared and
// must not be rewritten in a way that its other parents would notice.
func parentCounts(p *plan.Plan) map[plan.Node]int {
	counts := map[plan.Node]int{}
	plan.Walk(p, func(n plan.Node) {
		for _, c := range n.Children() {
			counts[c]++
		}
	})
	return counts
}

// rewriteFunc rewrites one node whose children were already rewritten.
// shared reports whether a node (old or new) has more than one parent. It
// returns the node unchanged when it has nothing to do.
type rewriteFunc func(n plan.Node, shared func(plan.Node) bool) (plan.Node, error)

// transformUp rebuilds p bottom-up, calling f on every node once its
// children are rebuilt. A node shared by several parents is rebuilt once
// and stays shared. It reports whether anything changed.
func transformUp(p *plan.Plan, f rewriteFunc) (*plan.Plan, bool, error) {
	counts := parentCounts(p)
	shared := func(n plan.Node) bool { return counts[n] > 1 }
	done := map[plan.Node]plan.Node{}
	changed := false
	var visit func(n plan.Node) (plan.Node, error)
	visit = func(n plan.Node) (plan.Node, error) {
		if m, ok := done[n]; ok {
			return m, nil
		}
		kids := n.Children()
		newKids := make([]plan.Node, len(kids))
		differ := false
		for i, c := range kids {
			nc, err := visit(c)
			if err != nil {
				return nil, err
			}
			newKids[i] = nc
			differ = differ || nc != c
		}
		cur := n
		if differ {
			cur = n.WithChildren(newKids)
			changed = true
		}
		out, err := f(cur, shared)
		if err != nil {
			return nil, err
		}
		if out != cur {
			changed = true
		}
		// The result stands where n stood, so it has n's parents.
		if counts[out] < counts[n] {
			counts[out] = counts[n]
		}
		done[n] = out
		return out, nil
	}
	out := &plan.Plan{Now: p.Now, Sinks: make([]*plan.Sink, len(p.Sinks))}
	for i, s := range p.Sinks {
		n, err := visit(s)
		if err != nil {
			return nil, false, err
		}
		sink, ok := n.(*plan.Sink)
		if !ok {
			return nil, false, errorf("rewrite replaced sink %q by %s", s.Name, n.Describe())
		}
		out.Sinks[i] = sink
	}
	return out, changed, nil
}
