package planner

import (
	"fmt"

	"github.com/pxq-dev/pxq/plan"
)

// Rule is one plan rewrite. Apply returns the rewritten plan and whether
// it changed anything; it must not modify p or any of its nodes, and it
// must not change the rows or columns of any sink.
type Rule interface {
	Name() string
	Apply(p *plan.Plan) (*plan.Plan, bool, error)
}

// maxPasses bounds the fixpoint loop of Optimize; the rules converge in a
// handful of passes, so reaching it means two rules undo each other.
const maxPasses = 64

// Rules returns the rules that Optimize runs, in the order of one pass.
func Rules() []Rule {
	return []Rule{
		foldConstants{},
		fuseFilters{},
		pushDownFilter{},
		pushDownTimeRange{},
		pushDownLimit{},
		fuseMaps{},
		eliminateProjection{},
		pruneColumns{},
	}
}

// Optimize rewrites p with Rules until none of them changes it. The result
// has the same sinks, producing the same rows and columns. p itself is
// left untouched.
func Optimize(p *plan.Plan) (*plan.Plan, error) {
	return OptimizeWith(p, Rules())
}

// OptimizeWith is Optimize with a chosen rule set; tests use it to run one
// rule alone.
func OptimizeWith(p *plan.Plan, rules []Rule) (*plan.Plan, error) {
	if p == nil {
		return nil, errorf("optimize: nil plan")
	}
	for pass := 0; pass < maxPasses; pass++ {
		changed := false
		for _, r := range rules {
			next, ch, err := r.Apply(p)
			if err != nil {
				return nil, fmt.Errorf("planner: rule %s: %w", r.Name(), err)
			}
			if !ch {
				continue
			}
			// Rebuilding nodes is not a change unless the plan reads
			// differently; this keeps the loop from spinning on copies.
			if !plan.Equal(next, p) {
				changed = true
			}
			p = next
		}
		if !changed {
			return p, nil
		}
	}
	return nil, errorf("optimize: rules did not converge after %d passes", maxPasses)
}
