package planner

import (
	"math"

	"github.com/pxq-dev/pxq/plan"
)

// timeColumn is the column that Scan.Start and Scan.End bound.
const timeColumn = "time_"

// pushDownTimeRange turns the terms of a scan's filter that compare time_
// with a constant (time_ >= c, time_ > c, time_ < c, time_ <= c,
// time_ == c, either operand order) into the scan's Start/End bounds,
// tightening bounds that are already there.
//
// Start is inclusive, End exclusive, and 0 means unbounded, so a term is
// only taken over when the resulting bound is positive and computing it
// does not overflow; otherwise it stays in the filter, which keeps the
// result exact. Filter push-down brings the terms into Scan.Filter first.
type pushDownTimeRange struct{}

func (pushDownTimeRange) Name() string { return "push_down_time_range" }

func (pushDownTimeRange) Apply(p *plan.Plan) (*plan.Plan, bool, error) {
	return transformUp(p, func(n plan.Node, _ func(plan.Node) bool) (plan.Node, error) {
		s, ok := n.(*plan.Scan)
		if !ok || s.Filter == nil || s.Rel.Index(timeColumn) < 0 {
			return n, nil
		}
		start, end := s.Start, s.End
		terms := conjuncts(s.Filter)
		var stay []plan.Expr
		for _, t := range terms {
			b, ok := timeBounds(t)
			nstart, nend := start, end
			if ok && b.hasLo {
				nstart, ok = tighten(start, b.lo, true)
			}
			if ok && b.hasHi {
				nend, ok = tighten(end, b.hi, false)
			}
			if !ok {
				stay = append(stay, t)
				continue
			}
			start, end = nstart, nend
		}
		if len(stay) == len(terms) {
			return n, nil
		}
		out := *s
		out.Start, out.End, out.Filter = start, end, and(stay...)
		return &out, nil
	})
}

// tighten combines a scan bound (0 = none) with a term's bound. For lower
// bounds the larger wins, for upper bounds the smaller. It fails when the
// result is 0 or less, which Scan cannot express.
func tighten(cur, term int64, lower bool) (int64, bool) {
	out := term
	if cur != 0 && ((lower && cur > term) || (!lower && cur < term)) {
		out = cur
	}
	if out <= 0 {
		return cur, false
	}
	return out, true
}

// bounds is the half-open range [lo, hi) a term allows; a side is
// unbounded unless its has flag is set.
type bounds struct {
	lo, hi       int64
	hasLo, hasHi bool
}

// timeBounds reads a comparison of time_ with an integer literal as the
// range it allows. ok is false for any other term and for ranges that
// cannot be written without overflow.
func timeBounds(e plan.Expr) (b bounds, ok bool) {
	c, isCall := e.(*plan.Call)
	if !isCall || len(c.Args) != 2 {
		return b, false
	}
	op := c.Func
	col, isCol := c.Args[0].(*plan.Column)
	lit, isLit := c.Args[1].(*plan.Literal)
	if !isCol || !isLit {
		col, isCol = c.Args[1].(*plan.Column)
		lit, isLit = c.Args[0].(*plan.Literal)
		op = mirror[op]
	}
	if !isCol || !isLit || col.Name != timeColumn {
		return b, false
	}
	v, isInt := lit.Value.(int64)
	if !isInt {
		return b, false
	}
	if v == math.MaxInt64 && op != fnGe && op != fnLt {
		return b, false
	}
	switch op {
	case fnGe:
		b.lo, b.hasLo = v, true
	case fnGt:
		b.lo, b.hasLo = v+1, true
	case fnLt:
		b.hi, b.hasHi = v, true
	case fnLe:
		b.hi, b.hasHi = v+1, true
	case fnEq:
		b.lo, b.hi, b.hasLo, b.hasHi = v, v+1, true, true
	default:
		return b, false
	}
	return b, true
}

// mirror maps a comparison to the one that holds with its operands
// swapped.
var mirror = map[string]string{fnEq: fnEq, fnLt: fnGt, fnLe: fnGe, fnGt: fnLt, fnGe: fnLe}
