package planner

import (
	"fmt"
	"strings"

	"github.com/pxq-dev/pxq/plan"
)

// Explain renders every stage of planning p, for `pxq explain`: the
// logical plan as compiled, the optimized plan, and the fragments of the
// distributed split (what every agent runs and what the broker runs).
func Explain(p *plan.Plan) (string, error) {
	if p == nil {
		return "", errorf("explain: nil plan")
	}
	opt, err := Optimize(p)
	if err != nil {
		return "", fmt.Errorf("planner: explain: %w", err)
	}
	d, err := Split(opt)
	if err != nil {
		return "", fmt.Errorf("planner: explain: %w", err)
	}
	var b strings.Builder
	section := func(title string, q *plan.Plan) {
		fmt.Fprintf(&b, "== %s ==\n", title)
		text := plan.Format(q)
		if text == "" {
			text = "(empty)\n"
		}
		b.WriteString(text)
	}
	section("logical plan", p)
	b.WriteString("\n")
	section("optimized plan", opt)
	b.WriteString("\n")
	section("node fragment (every agent)", d.Node)
	b.WriteString("\n")
	section("merge fragment (broker)", d.Merge)
	return b.String(), nil
}
