package exec

import (
	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// A file scan skips the units whose statistics (each column's min and
// max) prove that no row of the unit passes the scan's filter, and does
// not evaluate the filter on a unit whose statistics prove that every
// row passes.

// statsOf returns the statistics of a column of a unit, by name.
type statsOf func(col string) (table.ColumnStats, types.DataType, bool)

// outcomes returns whether e may be true and whether it may be false for
// some row of a unit whose columns' ranges stats gives. Whatever it
// cannot reason about may be both.
func outcomes(e plan.Expr, stats statsOf) (canTrue, canFalse bool) {
	switch x := e.(type) {
	case *plan.Literal:
		if b, ok := x.Value.(bool); ok {
			return b, !b
		}
	case *plan.Column:
		if x.T != types.Boolean {
			break
		}
		st, _, ok := stats(x.Name)
		if !ok || !st.Known {
			break
		}
		lo, hi := st.Min.(bool), st.Max.(bool)
		return hi, !lo
	case *plan.Call:
		switch x.Func {
		case "logicalAnd", "logicalOr":
			if len(x.Args) != 2 || x.Args[0].Type() != types.Boolean || x.Args[1].Type() != types.Boolean {
				break
			}
			at, af := outcomes(x.Args[0], stats)
			bt, bf := outcomes(x.Args[1], stats)
			if x.Func == "logicalAnd" {
				return at && bt, af || bf
			}
			return at || bt, af && bf
		case "logicalNot":
			if len(x.Args) != 1 || x.Args[0].Type() != types.Boolean {
				break
			}
			t, f := outcomes(x.Args[0], stats)
			return f, t
		case "equal", "notEqual", "lessThan", "lessThanEqual", "greaterThan", "greaterThanEqual":
			if len(x.Args) == 2 {
				return compareOutcomes(x.Func, x.Args[0], x.Args[1], stats)
			}
		}
	}
	return true, true
}

// mirrored maps a comparison to the one that holds with its operands
// swapped.
var mirrored = map[string]string{"equal": "equal", "notEqual": "notEqual", "lessThan": "greaterThan",
	"lessThanEqual": "greaterThanEqual", "greaterThan": "lessThan", "greaterThanEqual": "lessThanEqual"}

// compareOutcomes reasons about `column op literal` (either order) from
// the column's range [lo, hi].
func compareOutcomes(op string, a, b plan.Expr, stats statsOf) (bool, bool) {
	col, isCol := a.(*plan.Column)
	lit, isLit := b.(*plan.Literal)
	if !isCol || !isLit {
		col, isCol = b.(*plan.Column)
		lit, isLit = a.(*plan.Literal)
		op = mirrored[op]
	}
	if !isCol || !isLit {
		return true, true
	}
	st, t, ok := stats(col.Name)
	if !ok || !st.Known {
		return true, true
	}
	// c compares the literal with a bound: -1, 0, 1.
	var cmpLo, cmpHi int
	switch {
	case t == types.Float64 || lit.T == types.Float64:
		v, err := funcs.ConstFloat(lit.Value)
		lo, okLo := asFloat(st.Min)
		hi, okHi := asFloat(st.Max)
		if err != nil || !okLo || !okHi {
			return true, true
		}
		cmpLo, cmpHi = cmp3(v, lo), cmp3(v, hi)
		if t == types.Float64 {
			// NaN is in no range (files' statistics leave it out) and
			// every comparison but != is false for it.
			canTrue, _ := rangeOutcomes(op, cmpLo, cmpHi)
			if op == "notEqual" {
				canTrue = true
			}
			return canTrue, true
		}
	case t == types.Int64 || t == types.Time64NS:
		v, err := funcs.ConstInt(lit.Value)
		lo, okLo := st.Min.(int64)
		hi, okHi := st.Max.(int64)
		if err != nil || !okLo || !okHi {
			return true, true
		}
		cmpLo, cmpHi = cmp3(v, lo), cmp3(v, hi)
	case t == types.String:
		v, okV := lit.Value.(string)
		lo, okLo := st.Min.(string)
		hi, okHi := st.Max.(string)
		if !okV || !okLo || !okHi {
			return true, true
		}
		cmpLo, cmpHi = cmp3(v, lo), cmp3(v, hi)
	case t == types.Boolean:
		v, okV := lit.Value.(bool)
		lo, okLo := st.Min.(bool)
		hi, okHi := st.Max.(bool)
		if !okV || !okLo || !okHi {
			return true, true
		}
		cmpLo, cmpHi = cmp3(b2i(v), b2i(lo)), cmp3(b2i(v), b2i(hi))
	default:
		return true, true
	}
	return rangeOutcomes(op, cmpLo, cmpHi)
}

// rangeOutcomes says whether `x op v` may hold and may fail for some x in
// [lo, hi], given how v compares with lo and with hi.
func rangeOutcomes(op string, vLo, vHi int) (canTrue, canFalse bool) {
	single := vLo == 0 && vHi == 0 // lo == hi == v
	inside := vLo >= 0 && vHi <= 0 // lo <= v <= hi
	switch op {
	case "equal":
		return inside, !single
	case "notEqual":
		return !single, inside
	case "lessThan": // x < v
		return vLo > 0, vHi <= 0
	case "lessThanEqual":
		return vLo >= 0, vHi < 0
	case "greaterThan": // x > v
		return vHi < 0, vLo >= 0
	case "greaterThanEqual":
		return vHi <= 0, vLo > 0
	}
	return true, true
}

func cmp3[T int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}
