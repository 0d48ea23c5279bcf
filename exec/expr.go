package exec

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// evaluator computes an expression over a batch: an array of the batch's
// rows, or a constant.
type evaluator interface {
	eval(fctx *funcs.Context, rec arrow.Record) (funcs.Value, error)
}

// compileExpr turns e, over input relation rel, into a tree of kernels.
// Every call's overload is resolved here, once.
func compileExpr(e plan.Expr, rel types.Relation) (evaluator, error) {
	switch e := e.(type) {
	case *plan.Column:
		i := rel.Index(e.Name)
		if i < 0 {
			return nil, fmt.Errorf("unknown column %q (input has %v)", e.Name, rel.Names())
		}
		return colEval(i), nil
	case *plan.Literal:
		v := e.Value
		if e.T == types.Time64NS || e.T == types.Int64 {
			x, err := funcs.ConstInt(v)
			if err != nil {
				return nil, fmt.Errorf("literal %s: %w", e, err)
			}
			v = x
		}
		if e.T == types.Float64 {
			x, err := funcs.ConstFloat(v)
			if err != nil {
				return nil, fmt.Errorf("literal %s: %w", e, err)
			}
			v = x
		}
		return constEval{v}, nil
	case *plan.Call:
		args := make([]evaluator, len(e.Args))
		ts := make([]types.DataType, len(e.Args))
		for i, a := range e.Args {
			ev, err := compileExpr(a, rel)
			if err != nil {
				return nil, err
			}
			args[i] = ev
			ts[i] = a.Type()
		}
		o, err := funcs.Resolve(e.Func, ts)
		if err != nil {
			return nil, err
		}
		if o.Kernel == nil {
			return nil, fmt.Errorf("function %s has no kernel", e.Func)
		}
		return &callEval{name: e.Func, kernel: o.Kernel, args: args, vals: make([]funcs.Value, len(args))}, nil
	case nil:
		return nil, fmt.Errorf("missing expression")
	}
	return nil, fmt.Errorf("unsupported expression %T", e)
}

type colEval int

func (c colEval) eval(_ *funcs.Context, rec arrow.Record) (funcs.Value, error) {
	return funcs.Value{Array: rec.Column(int(c))}, nil
}

type constEval struct{ v any }

func (c constEval) eval(*funcs.Context, arrow.Record) (funcs.Value, error) {
	return funcs.Value{Const: c.v}, nil
}

type callEval struct {
	name   string
	kernel funcs.Kernel
	args   []evaluator
	vals   []funcs.Value
}

func (c *callEval) eval(fctx *funcs.Context, rec arrow.Record) (funcs.Value, error) {
	for i, a := range c.args {
		v, err := a.eval(fctx, rec)
		if err != nil {
			return funcs.Value{}, err
		}
		c.vals[i] = v
	}
	n := int(rec.NumRows())
	v, err := c.kernel(fctx, c.vals, n)
	if err != nil {
		return funcs.Value{}, fmt.Errorf("%s: %w", c.name, err)
	}
	if !v.IsConst() && v.Array.Len() != n {
		return funcs.Value{}, fmt.Errorf("%s: kernel returned %d rows for %d", c.name, v.Array.Len(), n)
	}
	return v, nil
}

// broadcaster turns an expression's value into an array of a batch's
// length, reusing the array it made for a constant when the constant and
// length repeat.
type broadcaster struct {
	t     types.DataType
	last  any
	arr   arrow.Array
	valid bool
}

func (b *broadcaster) array(v funcs.Value, n int) (arrow.Array, error) {
	if !v.IsConst() {
		return v.Array, nil
	}
	if b.valid && b.last == v.Const && b.arr.Len() >= n {
		if b.arr.Len() == n {
			return b.arr, nil
		}
	}
	a, err := funcs.MakeArray(v, b.t, n)
	if err != nil {
		return nil, err
	}
	b.last, b.arr, b.valid = v.Const, a, true
	return a, nil
}
