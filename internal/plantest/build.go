// Package plantest is for tests of code that makes or runs plans: short
// builders of plan nodes and expressions, and a row-at-a-time reference
// evaluator of plans (Eval), the oracle that exec's vectorized operators
// and planner's rewrites are checked against.
//
// The builders panic on a malformed plan (a column that is not there, a
// call no overload takes): the plan is a test's fixed input, so the test
// should stop where it is written wrong.
package plantest

import (
	"fmt"
	"strconv"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// Now is the Now of the plans Sinks makes: 2023-11-14T22:13:20Z in ns.
const Now = 1_700_000_000_000_000_000

// Scan reads the named columns (all when none are named) of table, whose
// columns are rel.
func Scan(table string, rel types.Relation, cols ...string) *plan.Scan {
	if len(cols) == 0 {
		return &plan.Scan{Table: table, Columns: rel.Names(), Rel: rel}
	}
	s := &plan.Scan{Table: table, Columns: cols}
	for _, c := range cols {
		s.Rel = append(s.Rel, rel[index(rel, c)])
	}
	return s
}

// Col references column name of rel, with its type and semantic type.
func Col(rel types.Relation, name string) *plan.Column {
	c := rel[index(rel, name)]
	return &plan.Column{Name: c.Name, T: c.Type, Sem: c.Semantic}
}

func index(rel types.Relation, name string) int {
	i := rel.Index(name)
	if i < 0 {
		panic("test plan: no column " + name + " in " + rel.String())
	}
	return i
}

// Lit makes a literal of v's natural type; an int is an INT64.
func Lit(v any) *plan.Literal {
	switch v := v.(type) {
	case bool:
		return &plan.Literal{Value: v, T: types.Boolean}
	case int:
		return &plan.Literal{Value: int64(v), T: types.Int64}
	case int64:
		return &plan.Literal{Value: v, T: types.Int64}
	case float64:
		return &plan.Literal{Value: v, T: types.Float64}
	case string:
		return &plan.Literal{Value: v, T: types.String}
	case types.UInt128Value:
		return &plan.Literal{Value: v, T: types.UInt128}
	}
	panic(fmt.Sprintf("test plan: no literal of %T", v))
}

// TimeLit makes a TIME64NS literal.
func TimeLit(ns int64) *plan.Literal {
	return &plan.Literal{Value: ns, T: types.Time64NS, Sem: types.STTimeNS}
}

// Call calls fn, typed by the overload funcs resolves for the arguments.
func Call(fn string, args ...plan.Expr) *plan.Call {
	o, err := funcs.Resolve(fn, argTypes(args))
	if err != nil {
		panic("test plan: " + err.Error())
	}
	return &plan.Call{Func: fn, Args: args, T: o.Ret}
}

// CallT calls fn with the result type t, whatever funcs says: for rules
// that only move calls around, and for functions funcs does not have.
func CallT(fn string, t types.DataType, args ...plan.Expr) *plan.Call {
	return &plan.Call{Func: fn, Args: args, T: t}
}

// Cmp builds a BOOLEAN call of two arguments, such as equal(a, b).
func Cmp(fn string, a, b plan.Expr) *plan.Call { return CallT(fn, types.Boolean, a, b) }

// Agg is the aggregate fn of args, output as name, typed by the overload
// funcs resolves.
func Agg(name, fn string, args ...plan.Expr) plan.AggExpr {
	o, err := funcs.ResolveAgg(fn, argTypes(args))
	if err != nil {
		panic("test plan: " + err.Error())
	}
	return plan.AggExpr{Name: name, Func: fn, Args: args, T: o.Ret}
}

func argTypes(args []plan.Expr) []types.DataType {
	ts := make([]types.DataType, len(args))
	for i, a := range args {
		ts[i] = a.Type()
	}
	return ts
}

// Project keeps the named columns of in, in that order.
func Project(in plan.Node, names ...string) *plan.Map {
	m := &plan.Map{Input: in}
	for _, n := range names {
		m.Exprs = append(m.Exprs, plan.NamedExpr{Name: n, Expr: Col(in.Relation(), n)})
	}
	return m
}

// WithExpr passes every column of in through and adds (or replaces) one
// computed column, as df.name = e does.
func WithExpr(in plan.Node, name string, e plan.Expr) *plan.Map {
	m := &plan.Map{Input: in}
	rel := in.Relation()
	for _, c := range rel {
		if c.Name != name {
			m.Exprs = append(m.Exprs, plan.NamedExpr{Name: c.Name, Expr: Col(rel, c.Name)})
		}
	}
	m.Exprs = append(m.Exprs, plan.NamedExpr{Name: name, Expr: e})
	return m
}

// Filter keeps the rows of in where cond holds.
func Filter(in plan.Node, cond plan.Expr) *plan.Filter { return &plan.Filter{Input: in, Cond: cond} }

// Limit keeps the first n rows of in.
func Limit(in plan.Node, n int64) *plan.Limit { return &plan.Limit{Input: in, N: n} }

// Sinks makes a plan with one sink per node, named out0, out1, …, and
// Now as its now.
func Sinks(nodes ...plan.Node) *plan.Plan {
	p := &plan.Plan{Now: Now}
	for i, n := range nodes {
		p.Sinks = append(p.Sinks, &plan.Sink{Input: n, Name: "out" + strconv.Itoa(i)})
	}
	return p
}
