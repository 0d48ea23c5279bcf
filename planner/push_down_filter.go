package planner

import "github.com/pxq-dev/pxq/plan"

// pushDownFilter moves filter conditions closer to the data, term by term
// (the terms of a top-level logicalAnd move independently):
//
//   - through a map, the terms that read only columns the map passes
//     through (possibly renamed);
//   - through a full aggregate, the terms that read only group columns;
//   - through a join, the terms that read only one side's columns, to
//     that side, when the join does not invent rows for it (inner joins,
//     the left side of a left join, the right side of a right join);
//   - into every input of a union;
//   - into Scan.Filter, when the scan has no limit.
//
// It never moves a term below a limit, below a node that other parents
// share, or a term that reads no column at all (a constant condition
// changes an ungrouped aggregate's single row).
type pushDownFilter struct{}

func (pushDownFilter) Name() string { return "push_down_filter" }

func (pushDownFilter) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	return transformUp(p, func(n plan.Node, shared func(plan.Node) bool) (plan.Node, error) {
		f, ok := n.(*plan.Filter)
		if !ok || shared(f.Input) {
			return n, nil
		}
		switch in := f.Input.(type) {
		case *plan.Map:
			return filterThroughMap(f, in), nil
		case *plan.Aggregate:
			return filterThroughAggregate(f, in), nil
		case *plan.Join:
			return filterThroughJoin(f, in), nil
		case *plan.Union:
			inputs := make([]plan.Node, len(in.Inputs))
			for i, x := range in.Inputs {
				inputs[i] = &plan.Filter{Input: x, Cond: f.Cond, Pos: f.Pos}
			}
			return &plan.Union{Inputs: inputs, Pos: in.Pos}, nil
		case *plan.Scan:
			if in.Limit > 0 {
				return n, nil
			}
			s := *in
			s.Filter = and(in.Filter, f.Cond)
			return &s, nil
		}
		return n, nil
	})
}

// split divides cond's terms into those that can move (movable returns
// true for them) and those that stay.
func split(cond plan.Expr, movable func(cols []string) bool) (move, stay []plan.Expr) {
	for _, t := range conjuncts(cond) {
		cols := plan.Columns(t)
		if len(cols) > 0 && movable(cols) {
			move = append(move, t)
		} else {
			stay = append(stay, t)
		}
	}
	return move, stay
}

// rebuild puts the terms that stay in a filter above top, or returns top
// alone when none stay.
func rebuild(f *plan.Filter, top plan.Node, stay []plan.Expr) plan.Node {
	if len(stay) == 0 {
		return top
	}
	return &plan.Filter{Input: top, Cond: and(stay...), Pos: f.Pos}
}

func filterThroughMap(f *plan.Filter, m *plan.Map) plan.Node {
	pass := map[string]plan.Expr{}
	for _, e := range m.Exprs {
		if c, ok := e.Expr.(*plan.Column); ok {
			pass[e.Name] = c
		}
	}
	move, stay := split(f.Cond, func(cols []string) bool { return allIn(cols, pass) })
	if len(move) == 0 {
		return f
	}
	below := &plan.Filter{Input: m.Input, Cond: substitute(and(move...), pass), Pos: f.Pos}
	return rebuild(f, &plan.Map{Input: below, Exprs: m.Exprs, Pos: m.Pos}, stay)
}

func filterThroughAggregate(f *plan.Filter, a *plan.Aggregate) plan.Node {
	if a.Mode != plan.AggFull || len(a.Groups) == 0 {
		return f
	}
	groups := map[string]bool{}
	for _, g := range a.Groups {
		groups[g] = true
	}
	move, stay := split(f.Cond, func(cols []string) bool { return allIn(cols, groups) })
	if len(move) == 0 {
		return f
	}
	agg := *a
	agg.Input = &plan.Filter{Input: a.Input, Cond: and(move...), Pos: f.Pos}
	return rebuild(f, &agg, stay)
}

func filterThroughJoin(f *plan.Filter, j *plan.Join) plan.Node {
	var sides [2]map[string]string // output name -> input name, per side
	sides[0], sides[1] = map[string]string{}, map[string]string{}
	for _, c := range j.Output {
		sides[c.Side][c.As] = c.Name
	}
	canFilter := [2]bool{
		j.How == plan.InnerJoin || j.How == plan.LeftJoin,
		j.How == plan.InnerJoin || j.How == plan.RightJoin,
	}
	var moved [2][]plan.Expr
	cond := f.Cond
	for side := 0; side < 2; side++ {
		if !canFilter[side] {
			continue
		}
		move, stay := split(cond, func(cols []string) bool { return allIn(cols, sides[side]) })
		moved[side] = move
		cond = and(stay...)
		if cond == nil {
			break
		}
	}
	if len(moved[0]) == 0 && len(moved[1]) == 0 {
		return f
	}
	out := j.Clone()
	inputs := [2]*plan.Node{&out.Left, &out.Right}
	for side, terms := range moved {
		if len(terms) > 0 {
			*inputs[side] = &plan.Filter{Input: *inputs[side], Cond: renameColumns(and(terms...), sides[side]), Pos: f.Pos}
		}
	}
	if cond == nil {
		return out
	}
	return &plan.Filter{Input: out, Cond: cond, Pos: f.Pos}
}
