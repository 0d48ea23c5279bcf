package plan

// Equal reports whether two plans have the same shape: the same nodes with
// the same fields and expressions, sharing the same way. It is what the
// optimizer uses to see whether a rule changed anything, without
// rendering plans as text.
func Equal(a, b *Plan) bool {
	if a.Now != b.Now || len(a.Sinks) != len(b.Sinks) {
		return false
	}
	seen := map[[2]Node]bool{}
	for i := range a.Sinks {
		if !nodeEqual(a.Sinks[i], b.Sinks[i], seen) {
			return false
		}
	}
	return true
}

func nodeEqual(a, b Node, seen map[[2]Node]bool) bool {
	if a == b {
		return true
	}
	k := [2]Node{a, b}
	if seen[k] {
		return true
	}
	ca, cb := a.Children(), b.Children()
	if len(ca) != len(cb) || !fieldsEqual(a, b) {
		return false
	}
	for i := range ca {
		if !nodeEqual(ca[i], cb[i], seen) {
			return false
		}
	}
	seen[k] = true
	return true
}

func fieldsEqual(a, b Node) bool {
	switch x := a.(type) {
	case *Scan:
		y, ok := b.(*Scan)
		return ok && x.Table == y.Table && x.Start == y.Start && x.End == y.End && x.Limit == y.Limit &&
			stringsEqual(x.Columns, y.Columns) && ExprEqual(x.Filter, y.Filter)
	case *Map:
		y, ok := b.(*Map)
		if !ok || len(x.Exprs) != len(y.Exprs) {
			return false
		}
		for i := range x.Exprs {
			if x.Exprs[i].Name != y.Exprs[i].Name || !ExprEqual(x.Exprs[i].Expr, y.Exprs[i].Expr) {
				return false
			}
		}
		return true
	case *Filter:
		y, ok := b.(*Filter)
		return ok && ExprEqual(x.Cond, y.Cond)
	case *Aggregate:
		y, ok := b.(*Aggregate)
		if !ok || x.Mode != y.Mode || !stringsEqual(x.Groups, y.Groups) || len(x.Aggs) != len(y.Aggs) {
			return false
		}
		for i := range x.Aggs {
			p, q := x.Aggs[i], y.Aggs[i]
			if p.Name != q.Name || p.Func != q.Func || p.T != q.T || p.Sem != q.Sem || len(p.Args) != len(q.Args) {
				return false
			}
			for j := range p.Args {
				if !ExprEqual(p.Args[j], q.Args[j]) {
					return false
				}
			}
		}
		return true
	case *Join:
		y, ok := b.(*Join)
		if !ok || x.How != y.How || !stringsEqual(x.LeftOn, y.LeftOn) || !stringsEqual(x.RightOn, y.RightOn) || len(x.Output) != len(y.Output) {
			return false
		}
		for i := range x.Output {
			if x.Output[i] != y.Output[i] {
				return false
			}
		}
		return true
	case *Limit:
		y, ok := b.(*Limit)
		return ok && x.N == y.N
	case *Union:
		_, ok := b.(*Union)
		return ok
	case *TableFunc:
		y, ok := b.(*TableFunc)
		if !ok || x.Func != y.Func || len(x.Args) != len(y.Args) {
			return false
		}
		for i := range x.Args {
			if !ExprEqual(x.Args[i], y.Args[i]) {
				return false
			}
		}
		return true
	case *Sink:
		y, ok := b.(*Sink)
		return ok && x.Name == y.Name && x.OTel == y.OTel
	case *BridgeSink:
		y, ok := b.(*BridgeSink)
		return ok && x.ID == y.ID
	case *BridgeSource:
		y, ok := b.(*BridgeSource)
		return ok && x.ID == y.ID && len(x.Rel) == len(y.Rel)
	}
	return false
}

// ExprEqual reports whether two expressions are the same (nil equals nil).
func ExprEqual(a, b Expr) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if a.Type() != b.Type() || a.Semantic() != b.Semantic() {
		return false
	}
	switch x := a.(type) {
	case *Column:
		y, ok := b.(*Column)
		return ok && x.Name == y.Name
	case *Literal:
		y, ok := b.(*Literal)
		return ok && x.Value == y.Value
	case *Call:
		y, ok := b.(*Call)
		if !ok || x.Func != y.Func || len(x.Args) != len(y.Args) {
			return false
		}
		for i := range x.Args {
			if !ExprEqual(x.Args[i], y.Args[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func stringsEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
