package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

func TestEliminateProjection(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "latency")
	reordered := project(http, "latency", "time_")
	cast := &plan.Map{Input: http, Exprs: []plan.NamedExpr{
		{Name: "time_", Expr: col(http, "time_")},
		{Name: "latency", Expr: &plan.Column{Name: "latency", T: types.Int64, Sem: types.STBytes}},
	}}
	runRuleCases(t, []Rule{eliminateProjection{}}, []ruleCase{
		{"identity map goes", sinks(project(http, "time_", "latency")), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency]
		`},
		{"reordering map stays", sinks(reordered), `
			#1 Sink "out0"
			  #2 Map [latency, time_]
			    #3 Scan http_events [time_, latency]
		`},
		{"semantic cast stays", sinks(cast), `
			#1 Sink "out0"
			  #2 Map [time_, latency]
			    #3 Scan http_events [time_, latency]
		`},
	})
}
