// Package plan defines pxq's query plans: a DAG of relational operators
// whose expressions are only column references, typed literals and
// function calls. The compiler (lang) builds plans, the planner rewrites
// and splits them, the executor (exec) runs them. Plans are data: they
// carry no Arrow arrays and no behaviour beyond their own shape.
package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pxq-dev/pxq/types"
)

// Pos is a position in a script, kept on plan nodes so that late errors
// can still point at the user's text.
type Pos struct {
	File      string
	Line, Col int32
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Expr is a typed scalar expression evaluated per row.
type Expr interface {
	// Type is the expression's value type.
	Type() types.DataType
	// Semantic is the expression's semantic type (display only).
	Semantic() types.SemanticType
	// String renders the expression readably, for EXPLAIN and errors.
	String() string
	isExpr()
}

// Column references an input column by name. Names are unique within a
// relation.
type Column struct {
	Name string
	T    types.DataType
	Sem  types.SemanticType
}

// Literal is a constant. Value holds bool, int64 (also for TIME64NS),
// float64, string or types.UInt128Value.
type Literal struct {
	Value any
	T     types.DataType
	Sem   types.SemanticType
}

// Call applies a registered scalar function (see package funcs) to its
// arguments.
type Call struct {
	Func string
	Args []Expr
	T    types.DataType
	Sem  types.SemanticType
}

func (c *Column) Type() types.DataType         { return c.T }
func (c *Column) Semantic() types.SemanticType { return c.Sem }
func (c *Column) String() string               { return c.Name }
func (*Column) isExpr()                        {}

func (l *Literal) Type() types.DataType         { return l.T }
func (l *Literal) Semantic() types.SemanticType { return l.Sem }
func (l *Literal) String() string {
	switch v := l.Value.(type) {
	case string:
		return strconv.Quote(v)
	case types.UInt128Value:
		return "upid(" + v.String() + ")"
	case float64:
		f := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eEn") {
			f += ".0"
		}
		return f
	case bool:
		if v {
			return "True"
		}
		return "False"
	}
	return fmt.Sprint(l.Value)
}
func (*Literal) isExpr() {}

func (c *Call) Type() types.DataType         { return c.T }
func (c *Call) Semantic() types.SemanticType { return c.Sem }
func (c *Call) String() string {
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = a.String()
	}
	return c.Func + "(" + strings.Join(args, ", ") + ")"
}
func (*Call) isExpr() {}

// Columns returns the names of the columns e reads, each once, in order of
// first appearance.
func Columns(e Expr) []string {
	var out []string
	seen := map[string]bool{}
	WalkExpr(e, func(x Expr) {
		if c, ok := x.(*Column); ok && !seen[c.Name] {
			seen[c.Name] = true
			out = append(out, c.Name)
		}
	})
	return out
}

// WalkExpr calls f for e and every sub-expression, parents first.
func WalkExpr(e Expr, f func(Expr)) {
	f(e)
	if c, ok := e.(*Call); ok {
		for _, a := range c.Args {
			WalkExpr(a, f)
		}
	}
}

// NamedExpr is an output column of a Map.
type NamedExpr struct {
	Name string
	Expr Expr
}

// AggExpr is one aggregate of an Aggregate: Func over Args, output Name.
type AggExpr struct {
	Name string
	Func string
	Args []Expr
	T    types.DataType // type of the finalized value
	Sem  types.SemanticType
}

func (a AggExpr) String() string {
	args := make([]string, len(a.Args))
	for i, x := range a.Args {
		args[i] = x.String()
	}
	return fmt.Sprintf("%s=%s(%s)", a.Name, a.Func, strings.Join(args, ", "))
}

// WithSemantic returns e with semantic type sem: e itself when it has it,
// else a copy.
func WithSemantic(e Expr, sem types.SemanticType) Expr {
	if e.Semantic() == sem {
		return e
	}
	switch x := e.(type) {
	case *Column:
		c := *x
		c.Sem = sem
		return &c
	case *Literal:
		c := *x
		c.Sem = sem
		return &c
	case *Call:
		c := *x
		c.Sem = sem
		return &c
	}
	return e
}
