package planner

import "github.com/pxq-dev/pxq/plan"

// pruneColumns makes every node produce only the columns some parent
// reads: scans read fewer columns, maps drop unused outputs, full
// aggregates drop unused aggregates and joins drop unused output columns.
//
// Plans are DAGs, so what a node must produce is the union of what all of
// its parents read. Sinks, bridges, unions and split aggregates read every
// column of their inputs. A node never shrinks to zero columns (it keeps
// its first one), so that row counts stay observable. A scan keeps the
// columns its own filter reads.
//
// count(x) counts rows whatever x holds (pxq has no nulls), so a full
// aggregate's counts read a column it reads anyway (its first group or a
// column another aggregate reads): count(latency) by req_path reads
// req_path only.
type pruneColumns struct{}

func (pruneColumns) Name() string { return "prune_columns" }

// colSet is a set of column names.
type colSet map[string]bool

func (s colSet) add(names ...string) {
	for _, n := range names {
		s[n] = true
	}
}

func (pruneColumns) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	var order []plan.Node // children before parents
	plan.Walk(p, func(n plan.Node) { order = append(order, n) })
	need := map[plan.Node]colSet{}
	needOf := func(n plan.Node) colSet {
		if need[n] == nil {
			need[n] = colSet{}
		}
		return need[n]
	}
	// Parents come after their children in order, so walking it backwards
	// sees every parent of a node before the node itself.
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		for ci, names := range inputNeeds(n, needOf(n)) {
			needOf(n.Children()[ci]).add(names...)
		}
	}
	done := map[plan.Node]plan.Node{}
	changed := false
	for _, n := range order {
		kids := n.Children()
		newKids := make([]plan.Node, len(kids))
		differ := false
		for i, c := range kids {
			newKids[i] = done[c]
			differ = differ || newKids[i] != c
		}
		cur := n
		if differ {
			cur = n.WithChildren(newKids)
		}
		out := prune(cur, need[n])
		if out != n {
			changed = true
		}
		done[n] = out
	}
	out := &plan.Plan{Now: p.Now, Sinks: make([]*plan.Sink, len(p.Sinks))}
	for i, s := range p.Sinks {
		out.Sinks[i] = done[s].(*plan.Sink)
	}
	return out, changed, nil
}

// inputNeeds returns, per child of n, the columns n reads from it when its
// parents need the columns in need from n.
func inputNeeds(n plan.Node, need colSet) [][]string {
	switch x := n.(type) {
	case *plan.Map:
		var cols []string
		for _, e := range keptExprs(x, need) {
			cols = append(cols, plan.Columns(e.Expr)...)
		}
		return [][]string{cols}
	case *plan.Filter:
		return [][]string{append(keys(need), plan.Columns(x.Cond)...)}
	case *plan.Limit:
		return [][]string{keys(need)}
	case *plan.Aggregate:
		if x.Mode != plan.AggFull {
			return [][]string{x.Input.Relation().Names()}
		}
		kept := keptAggs(x, need)
		cols := append([]string(nil), x.Groups...)
		for _, a := range kept {
			if countsRows(a) {
				continue
			}
			for _, arg := range a.Args {
				cols = append(cols, plan.Columns(arg)...)
			}
		}
		if c := countColumn(x, kept); c != "" {
			cols = append(cols, c)
		}
		return [][]string{cols}
	case *plan.Join:
		sides := [2][]string{append([]string(nil), x.LeftOn...), append([]string(nil), x.RightOn...)}
		for _, c := range keptJoinColumns(x, need) {
			sides[c.Side] = append(sides[c.Side], c.Name)
		}
		return [][]string{sides[0], sides[1]}
	}
	// Sinks, bridges and unions read everything.
	out := make([][]string, len(n.Children()))
	for i, c := range n.Children() {
		out[i] = c.Relation().Names()
	}
	return out
}

// prune returns n cut down to the columns in need (and what n itself
// reads), or n when there is nothing to cut.
func prune(n plan.Node, need colSet) plan.Node {
	switch x := n.(type) {
	case *plan.Scan:
		want := colSet{}
		want.add(keys(need)...)
		if x.Filter != nil {
			want.add(plan.Columns(x.Filter)...)
		}
		var cols []string
		var rel = x.Rel[:0:0]
		for i, c := range x.Columns {
			if want[c] {
				cols = append(cols, c)
				rel = append(rel, x.Rel[i])
			}
		}
		if len(cols) == 0 && len(x.Columns) > 0 {
			cols, rel = x.Columns[:1], x.Rel[:1]
		}
		if len(cols) == len(x.Columns) {
			return n
		}
		s := *x
		s.Columns, s.Rel = cols, rel
		return &s
	case *plan.Map:
		kept := keptExprs(x, need)
		if len(kept) == len(x.Exprs) {
			return n
		}
		m := *x
		m.Exprs = kept
		return &m
	case *plan.Aggregate:
		if x.Mode != plan.AggFull {
			return n
		}
		kept := keptAggs(x, need)
		recount := false
		if c := countColumn(x, kept); c != "" {
			rel := x.Input.Relation()
			i := rel.Index(c)
			anchor := &plan.Column{Name: c, T: rel[i].Type, Sem: rel[i].Semantic}
			out := make([]plan.AggExpr, len(kept))
			for k, a := range kept {
				if countsRows(a) && !plan.ExprEqual(a.Args[0], anchor) {
					a.Args = []plan.Expr{anchor}
					recount = true
				}
				out[k] = a
			}
			kept = out
		}
		if len(kept) == len(x.Aggs) && !recount {
			return n
		}
		a := *x
		a.Aggs = kept
		return &a
	case *plan.Join:
		kept := keptJoinColumns(x, need)
		if len(kept) == len(x.Output) {
			return n
		}
		j := x.Clone()
		j.Output = kept
		return j
	}
	return n
}

// keptExprs returns the outputs of m that are needed, at least one.
func keptExprs(m *plan.Map, need colSet) []plan.NamedExpr {
	var out []plan.NamedExpr
	for _, e := range m.Exprs {
		if need[e.Name] {
			out = append(out, e)
		}
	}
	if len(out) == 0 && len(m.Exprs) > 0 {
		out = m.Exprs[:1]
	}
	return out
}

// keptAggs returns the aggregates of a that are needed; an aggregate with
// no groups keeps at least one.
func keptAggs(a *plan.Aggregate, need colSet) []plan.AggExpr {
	var out []plan.AggExpr
	for _, x := range a.Aggs {
		if need[x.Name] {
			out = append(out, x)
		}
	}
	if len(out) == 0 && len(a.Groups) == 0 && len(a.Aggs) > 0 {
		out = a.Aggs[:1]
	}
	return out
}

// countsRows reports whether a is count over a column, which counts the
// rows whatever the column.
func countsRows(a plan.AggExpr) bool {
	if a.Func != "count" || len(a.Args) != 1 {
		return false
	}
	_, ok := a.Args[0].(*plan.Column)
	return ok
}

// countColumn returns the column the counts among kept read: the first
// group, else the first column another aggregate reads, else one that a
// filter right below reads anyway, else the first count's own; "" when
// none of kept counts rows.
func countColumn(x *plan.Aggregate, kept []plan.AggExpr) string {
	first := ""
	for _, a := range kept {
		if countsRows(a) {
			first = a.Args[0].(*plan.Column).Name
			break
		}
	}
	if first == "" {
		return ""
	}
	if len(x.Groups) > 0 {
		return x.Groups[0]
	}
	for _, a := range kept {
		if countsRows(a) {
			continue
		}
		for _, arg := range a.Args {
			if cols := plan.Columns(arg); len(cols) > 0 {
				return cols[0]
			}
		}
	}
	var cond plan.Expr
	switch in := x.Input.(type) {
	case *plan.Filter:
		cond = in.Cond
	case *plan.Scan:
		cond = in.Filter
	}
	if cond != nil {
		rel := x.Input.Relation()
		for _, c := range plan.Columns(cond) {
			if rel.Index(c) >= 0 {
				return c
			}
		}
	}
	return first
}

// keptJoinColumns returns the output columns of j that are needed, at
// least one.
func keptJoinColumns(j *plan.Join, need colSet) []plan.JoinColumn {
	var out []plan.JoinColumn
	for _, c := range j.Output {
		if need[c.As] {
			out = append(out, c)
		}
	}
	if len(out) == 0 && len(j.Output) > 0 {
		out = j.Output[:1]
	}
	return out
}

// keys returns the names in s, in no particular order.
func keys(s colSet) []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	return out
}
