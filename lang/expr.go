package lang

import (
	"fmt"
	"math"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Expr is a column expression in a script: `df.latency`, `df.a + 1`,
// `px.contains(df.path, 'x')`. Operators on it build plan expressions.
type Expr struct {
	e plan.Expr
}

var (
	_ starlark.HasBinary = (*Expr)(nil)
	_ starlark.HasUnary  = (*Expr)(nil)
)

func (x *Expr) String() string        { return x.e.String() }
func (x *Expr) Type() string          { return "Column" }
func (x *Expr) Freeze()               {}
func (x *Expr) Truth() starlark.Bool  { return starlark.True }
func (x *Expr) Hash() (uint32, error) { return 0, fmt.Errorf("a column expression is not hashable") }

var binaryFuncs = map[syntax.Token]string{
	syntax.PLUS: "add", syntax.MINUS: "subtract", syntax.STAR: "multiply", syntax.SLASH: "divide",
	syntax.PERCENT: "modulo", syntax.AMP: "logicalAnd", syntax.PIPE: "logicalOr",
}

// Binary implements arithmetic with the column on either side.
func (x *Expr) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	other, err := toPlanExpr(y)
	if err != nil {
		return nil, err
	}
	l, r := x.e, other
	if side == starlark.Right {
		l, r = r, l
	}
	if op == syntax.SLASHSLASH {
		q, err := callFunc("divide", []plan.Expr{l, r})
		if err != nil {
			return nil, err
		}
		return wrap(callFunc("floor", []plan.Expr{q}))
	}
	fn, ok := binaryFuncs[op]
	if !ok {
		return nil, nil // unsupported: Starlark reports it
	}
	if (op == syntax.AMP || op == syntax.PIPE) && (l.Type() == types.Int64 && r.Type() == types.Int64) {
		return nil, fmt.Errorf("operator %s on INT64 columns is not supported; use and/or on boolean columns", op)
	}
	e, err := callFunc(fn, []plan.Expr{l, r})
	if err != nil {
		return nil, fmt.Errorf("unsupported operand types for %s: %s and %s", op, typeName(l), typeName(r))
	}
	return wrap(e, nil)
}

// Unary implements -x, +x and ~x.
func (x *Expr) Unary(op syntax.Token) (starlark.Value, error) {
	switch op {
	case syntax.MINUS:
		return wrap(callFunc("negate", []plan.Expr{x.e}))
	case syntax.PLUS:
		return x, nil
	case syntax.TILDE:
		if x.e.Type() == types.Boolean {
			return wrap(callFunc("logicalNot", []plan.Expr{x.e}))
		}
		return wrap(callFunc("invert", []plan.Expr{x.e}))
	}
	return nil, nil
}

func wrap(e plan.Expr, err error) (starlark.Value, error) {
	if err != nil {
		return nil, err
	}
	if l, ok := e.(*plan.Literal); ok && l.Sem == types.STNone {
		if v, ok := literalValue(l); ok {
			return v, nil
		}
	}
	return &Expr{e: e}, nil
}

// literalValue turns a literal back into a plain Starlark value where
// that loses nothing (so that folded constants act as Python values).
func literalValue(l *plan.Literal) (starlark.Value, bool) {
	switch l.T {
	case types.Int64:
		return starlark.MakeInt64(l.Value.(int64)), true
	case types.Float64:
		return starlark.Float(l.Value.(float64)), true
	case types.String:
		return starlark.String(l.Value.(string)), true
	case types.Boolean:
		return starlark.Bool(l.Value.(bool)), true
	}
	return nil, false
}

// toPlanExpr converts a script value used as an operand into a plan
// expression: columns stay columns, Python constants become literals.
func toPlanExpr(v starlark.Value) (plan.Expr, error) {
	switch v := v.(type) {
	case *Expr:
		return v.e, nil
	case starlark.Bool:
		return &plan.Literal{Value: bool(v), T: types.Boolean, Sem: types.STNone}, nil
	case starlark.Int:
		i, ok := v.Int64()
		if !ok {
			return nil, fmt.Errorf("integer %s does not fit in INT64", v)
		}
		return &plan.Literal{Value: i, T: types.Int64, Sem: types.STNone}, nil
	case starlark.Float:
		return &plan.Literal{Value: float64(v), T: types.Float64, Sem: types.STNone}, nil
	case starlark.String:
		return &plan.Literal{Value: string(v), T: types.String, Sem: types.STNone}, nil
	case *DataFrame:
		return nil, fmt.Errorf("a DataFrame cannot be used as a value here; select a column (df.name)")
	}
	return nil, fmt.Errorf("%s value cannot be used in a column expression", v.Type())
}

// callFunc resolves a scalar function for its arguments' types and builds
// the call, folding it into a literal when every argument is constant and
// the function can run at compile time.
func callFunc(name string, args []plan.Expr) (plan.Expr, error) {
	ts := make([]types.DataType, len(args))
	for i, a := range args {
		ts[i] = a.Type()
	}
	o, err := funcs.Resolve(name, ts)
	if err != nil {
		return nil, err
	}
	for i := 0; i < o.InitArgs && i < len(args); i++ {
		if _, ok := args[i].(*plan.Literal); !ok {
			return nil, fmt.Errorf("%s: argument %d must be a constant", name, i+1)
		}
	}
	c := &plan.Call{Func: name, Args: args, T: o.Ret, Sem: resultSemantic(name, o, args)}
	if folded := fold(c, o); folded != nil {
		return folded, nil
	}
	return c, nil
}

// resultSemantic picks the semantic type of a call's result: the
// function's own when it has one, else that of its operands for
// operations that keep units (adding two durations is a duration).
func resultSemantic(name string, o *funcs.Overload, args []plan.Expr) types.SemanticType {
	if o.RetSem != types.STUnspecified {
		return o.RetSem
	}
	switch name {
	case "add", "subtract", "negate", "abs", "select", "bin":
		var sem types.SemanticType = types.STNone
		for i, a := range args {
			if name == "select" && i == 0 {
				continue
			}
			if _, lit := a.(*plan.Literal); lit {
				continue
			}
			s := a.Semantic()
			if s == types.STUnspecified || s == types.STNone {
				continue
			}
			if sem != types.STNone && sem != s {
				return types.STNone
			}
			sem = s
		}
		if o.Ret == types.Time64NS {
			return types.STTimeNS
		}
		return sem
	}
	if o.Ret == types.Time64NS {
		return types.STTimeNS
	}
	return types.STNone
}

// fold evaluates a call whose arguments are all literals, if its kernel
// accepts constants and the function is immutable: those bound to where
// they run (metadata, asid, hostname) are left for the executor, and
// stable ones (the query's now) for the planner, which knows the now.
func fold(c *plan.Call, o *funcs.Overload) plan.Expr {
	if f := funcs.Scalar(c.Func); o.Kernel == nil || f == nil || f.Volatility != funcs.Immutable {
		return nil
	}
	args := make([]funcs.Value, len(c.Args))
	for i, a := range c.Args {
		l, ok := a.(*plan.Literal)
		if !ok {
			return nil
		}
		args[i] = funcs.Value{Const: l.Value}
	}
	var out funcs.Value
	var err error
	func() {
		defer func() {
			if recover() != nil {
				err = fmt.Errorf("panic")
			}
		}()
		out, err = o.Kernel(&funcs.Context{}, args, 1)
	}()
	if err != nil || !out.IsConst() || out.Const == nil {
		return nil
	}
	if f, ok := out.Const.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return nil
	}
	return &plan.Literal{Value: out.Const, T: c.T, Sem: c.Sem}
}

// compare builds a comparison; with no column operand it is Python's.
func compare(op syntax.Token, x, y starlark.Value) (starlark.Value, error) {
	_, xc := x.(*Expr)
	_, yc := y.(*Expr)
	if !xc && !yc {
		ok, err := starlark.Compare(op, x, y)
		return starlark.Bool(ok), err
	}
	l, err := toPlanExpr(x)
	if err != nil {
		return nil, err
	}
	r, err := toPlanExpr(y)
	if err != nil {
		return nil, err
	}
	name := map[syntax.Token]string{syntax.EQL: "equal", syntax.NEQ: "notEqual", syntax.LT: "lessThan",
		syntax.GT: "greaterThan", syntax.LE: "lessThanEqual", syntax.GE: "greaterThanEqual"}[op]
	// Comparing a time column with a plain integer means nanoseconds.
	l, r = alignTime(l, r)
	e, err := callFunc(name, []plan.Expr{l, r})
	if err != nil {
		return nil, fmt.Errorf("cannot compare %s %s %s: %v", typeName(l), op, typeName(r), err)
	}
	return wrap(e, nil)
}

func alignTime(l, r plan.Expr) (plan.Expr, plan.Expr) {
	if l.Type() == types.Time64NS && r.Type() == types.Int64 {
		if lit, ok := r.(*plan.Literal); ok {
			r = &plan.Literal{Value: lit.Value, T: types.Time64NS, Sem: types.STTimeNS}
		}
	}
	if r.Type() == types.Time64NS && l.Type() == types.Int64 {
		if lit, ok := l.(*plan.Literal); ok {
			l = &plan.Literal{Value: lit.Value, T: types.Time64NS, Sem: types.STTimeNS}
		}
	}
	return l, r
}

func typeName(e plan.Expr) string {
	if _, ok := e.(*plan.Literal); ok {
		return "constant " + e.Type().String()
	}
	return e.Type().String()
}

// logical builds `x and y` / `x or y`: Python's meaning for plain values,
// a boolean column expression when either side is a column.
func logical(fn string, x, y starlark.Value) (starlark.Value, error) {
	_, xc := x.(*Expr)
	_, yc := y.(*Expr)
	if !xc && !yc {
		if fn == "logicalAnd" {
			if !x.Truth() {
				return x, nil
			}
			return y, nil
		}
		if x.Truth() {
			return x, nil
		}
		return y, nil
	}
	// A Python constant on one side decides or drops out.
	if !xc {
		x, y = y, x
	}
	if _, ok := y.(*Expr); !ok {
		if _, isDF := y.(*DataFrame); isDF {
			return nil, fmt.Errorf("%s: a DataFrame is not a boolean", fn)
		}
		t := bool(y.Truth())
		switch {
		case fn == "logicalAnd" && !t:
			return starlark.False, nil
		case fn == "logicalOr" && t:
			return starlark.True, nil
		}
		return x, nil
	}
	l, r := x.(*Expr).e, y.(*Expr).e
	for _, e := range []plan.Expr{l, r} {
		if e.Type() != types.Boolean && e.Type() != types.Int64 {
			return nil, fmt.Errorf("%s needs boolean columns, got %s", map[string]string{"logicalAnd": "and", "logicalOr": "or"}[fn], e.Type())
		}
	}
	return wrap(callFunc(fn, []plan.Expr{l, r}))
}

func logicalNot(x starlark.Value) (starlark.Value, error) {
	e, ok := x.(*Expr)
	if !ok {
		return !x.Truth(), nil
	}
	return wrap(callFunc("logicalNot", []plan.Expr{e.e}))
}
