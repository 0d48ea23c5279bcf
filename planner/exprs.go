package planner

import (
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Names of the scalar functions the rules understand structurally. They
// are the names the compiler gives to PxL's operators.
const (
	fnAnd    = "logicalAnd"
	fnOr     = "logicalOr"
	fnSelect = "select"
	fnEq     = "equal"
	fnLt     = "lessThan"
	fnLe     = "lessThanEqual"
	fnGt     = "greaterThan"
	fnGe     = "greaterThanEqual"
)

// conjuncts splits a boolean expression into the terms of its top-level
// logicalAnd calls, left to right.
func conjuncts(e plan.Expr) []plan.Expr {
	if c, ok := e.(*plan.Call); ok && c.Func == fnAnd && len(c.Args) == 2 {
		return append(conjuncts(c.Args[0]), conjuncts(c.Args[1])...)
	}
	return []plan.Expr{e}
}

// and joins terms with logicalAnd, left-deep; it returns nil for no terms.
func and(terms ...plan.Expr) plan.Expr {
	var out plan.Expr
	for _, t := range terms {
		if t == nil {
			continue
		}
		if out == nil {
			out = t
			continue
		}
		out = &plan.Call{Func: fnAnd, Args: []plan.Expr{out, t}, T: types.Boolean, Sem: types.STNone}
	}
	return out
}

// boolLiteral reports whether e is a BOOLEAN literal, and its value.
func boolLiteral(e plan.Expr) (value, ok bool) {
	l, isLit := e.(*plan.Literal)
	if !isLit {
		return false, false
	}
	v, isBool := l.Value.(bool)
	return v, isBool
}

// substitute replaces the column references of e by the expressions that
// cols maps their names to; it returns e itself when nothing changes.
func substitute(e plan.Expr, cols map[string]plan.Expr) plan.Expr {
	switch x := e.(type) {
	case *plan.Column:
		if r, ok := cols[x.Name]; ok {
			// The reference's semantic type is what the script declared
			// (px.Percent(df.rate)); keep it on the substitute.
			return plan.WithSemantic(r, x.Sem)
		}
	case *plan.Call:
		var args []plan.Expr
		for i, a := range x.Args {
			na := substitute(a, cols)
			if na != a && args == nil {
				args = append([]plan.Expr(nil), x.Args...)
			}
			if args != nil {
				args[i] = na
			}
		}
		if args != nil {
			c := *x
			c.Args = args
			return &c
		}
	}
	return e
}

// renameColumns returns e with its column references renamed by names,
// keeping their types.
func renameColumns(e plan.Expr, names map[string]string) plan.Expr {
	cols := map[string]plan.Expr{}
	plan.WalkExpr(e, func(x plan.Expr) {
		if c, ok := x.(*plan.Column); ok {
			if to, ok := names[c.Name]; ok && to != c.Name {
				cols[c.Name] = &plan.Column{Name: to, T: c.T, Sem: c.Sem}
			}
		}
	})
	if len(cols) == 0 {
		return e
	}
	return substitute(e, cols)
}

// allIn reports whether every name is a key of set.
func allIn[V any](names []string, set map[string]V) bool {
	for _, n := range names {
		if _, ok := set[n]; !ok {
			return false
		}
	}
	return true
}
