package planner

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// foldConstants evaluates what a plan can know before it runs:
//
//   - a call whose arguments are all literals is replaced by its value,
//     computed by the function's kernel from package funcs (with the
//     plan's Now), when the registry says the function is immutable or
//     stable for the query, never when it depends on where it runs
//     (metadata lookups, asid, _exec_* functions); a kernel that
//     fails or panics leaves the call for run time to report;
//   - select(True, a, b) becomes a and select(False, a, b) becomes b,
//     when the branch has the call's type;
//   - logicalAnd / logicalOr with a constant operand simplify
//     (True and x = x, False and x = False, …);
//   - a filter whose condition is True goes away.
//
// It folds the expressions of maps, filters, scan filters and aggregate
// arguments.
type foldConstants struct{}

func (foldConstants) Name() string { return "fold_constants" }

func (foldConstants) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	f := folder{ctx: &funcs.Context{Mem: memory.DefaultAllocator, Now: p.Now}}
	return transformUp(p, func(n plan.Node, _ func(plan.Node) bool) (plan.Node, error) {
		switch x := n.(type) {
		case *plan.Map:
			var exprs []plan.NamedExpr
			for i, e := range x.Exprs {
				ne := f.fold(e.Expr)
				if ne != e.Expr && exprs == nil {
					exprs = append([]plan.NamedExpr(nil), x.Exprs...)
				}
				if exprs != nil {
					exprs[i].Expr = ne
				}
			}
			if exprs != nil {
				m := *x
				m.Exprs = exprs
				return &m, nil
			}
		case *plan.Filter:
			cond := f.fold(x.Cond)
			if v, ok := boolLiteral(cond); ok && v {
				return x.Input, nil
			}
			if cond != x.Cond {
				return &plan.Filter{Input: x.Input, Cond: cond, Pos: x.Pos}, nil
			}
		case *plan.Scan:
			if x.Filter == nil {
				return n, nil
			}
			cond := f.fold(x.Filter)
			if v, ok := boolLiteral(cond); ok && v {
				cond = nil
			}
			if cond != x.Filter {
				s := *x
				s.Filter = cond
				return &s, nil
			}
		case *plan.Aggregate:
			var aggs []plan.AggExpr
			for i, agg := range x.Aggs {
				args := f.foldAll(agg.Args)
				if args == nil {
					continue
				}
				if aggs == nil {
					aggs = append([]plan.AggExpr(nil), x.Aggs...)
				}
				aggs[i].Args = args
			}
			if aggs != nil {
				c := *x
				c.Aggs = aggs
				return &c, nil
			}
		}
		return n, nil
	})
}

// folder folds expressions with one kernel context.
type folder struct {
	ctx *funcs.Context
}

// fold returns e with its constant parts evaluated, or e itself when
// nothing folds.
func (f folder) fold(e plan.Expr) plan.Expr {
	c, ok := e.(*plan.Call)
	if !ok {
		return e
	}
	args := f.foldAll(c.Args)
	if args != nil {
		nc := *c
		nc.Args = args
		c = &nc
	}
	if s := simplify(c); s != nil {
		return s
	}
	if lit := f.evaluate(c); lit != nil {
		return lit
	}
	if args == nil {
		return e
	}
	return c
}

// foldAll folds every expression of es; it returns a new slice when
// any of them changed and nil otherwise.
func (f folder) foldAll(es []plan.Expr) []plan.Expr {
	var out []plan.Expr
	for i, e := range es {
		ne := f.fold(e)
		if ne != e && out == nil {
			out = append([]plan.Expr(nil), es...)
		}
		if out != nil {
			out[i] = ne
		}
	}
	return out
}

// simplify applies the structural rules for select, logicalAnd and
// logicalOr; it returns nil when none applies.
func simplify(c *plan.Call) plan.Expr {
	switch {
	case c.Func == fnSelect && len(c.Args) == 3:
		v, ok := boolLiteral(c.Args[0])
		if !ok {
			return nil
		}
		branch := c.Args[2]
		if v {
			branch = c.Args[1]
		}
		if branch.Type() != c.T {
			return nil
		}
		return branch
	case (c.Func == fnAnd || c.Func == fnOr) && len(c.Args) == 2:
		// absorbing is the value that decides the result alone.
		absorbing := c.Func == fnOr
		for i, a := range c.Args {
			v, ok := boolLiteral(a)
			if !ok {
				continue
			}
			if v == absorbing {
				return &plan.Literal{Value: absorbing, T: types.Boolean, Sem: c.Sem}
			}
			other := c.Args[1-i]
			if other.Type() == types.Boolean {
				return other
			}
		}
	}
	return nil
}

// evaluate runs c's kernel on its literal arguments and returns the value
// as a literal, or nil when c cannot be folded.
func (f folder) evaluate(c *plan.Call) (lit *plan.Literal) {
	if !funcs.Foldable(c.Func) {
		return nil
	}
	argTypes := make([]types.DataType, len(c.Args))
	vals := make([]funcs.Value, len(c.Args))
	for i, a := range c.Args {
		l, ok := a.(*plan.Literal)
		if !ok || l.Value == nil {
			return nil
		}
		argTypes[i] = l.T
		vals[i] = funcs.Value{Const: l.Value}
	}
	o, err := funcs.Resolve(c.Func, argTypes)
	if err != nil || o.Kernel == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			lit = nil
		}
	}()
	v, err := o.Kernel(f.ctx, vals, 1)
	if err != nil {
		return nil
	}
	value, ok := scalarOf(v, c.T)
	if !ok {
		return nil
	}
	return &plan.Literal{Value: value, T: c.T, Sem: c.Sem}
}

// scalarOf reads a kernel result as a literal value of type t: a constant
// of the right Go type, or the single element of a one-row array.
func scalarOf(v funcs.Value, t types.DataType) (any, bool) {
	if v.IsConst() {
		return constOf(v.Const, t)
	}
	defer v.Array.Release()
	if v.Array.Len() != 1 || v.Array.IsNull(0) {
		return nil, false
	}
	switch a := v.Array.(type) {
	case *array.Boolean:
		return constOf(a.Value(0), t)
	case *array.Int64:
		return constOf(a.Value(0), t)
	case *array.Float64:
		return constOf(a.Value(0), t)
	case *array.String:
		return constOf(a.Value(0), t)
	case *array.Timestamp:
		return constOf(int64(a.Value(0)), t)
	case *array.FixedSizeBinary:
		if b := a.Value(0); len(b) == 16 {
			return constOf(types.GetUInt128(b), t)
		}
	}
	return nil, false
}

// constOf checks that v is the Go representation of type t.
func constOf(v any, t types.DataType) (any, bool) {
	switch v.(type) {
	case bool:
		return v, t == types.Boolean
	case int64:
		return v, t == types.Int64 || t == types.Time64NS
	case float64:
		return v, t == types.Float64
	case string:
		return v, t == types.String
	case types.UInt128Value:
		return v, t == types.UInt128
	case arrow.Timestamp:
		return int64(v.(arrow.Timestamp)), t == types.Time64NS
	}
	return nil, false
}
