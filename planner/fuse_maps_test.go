package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

func TestFuseMaps(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "resp_status", "latency")
	ms := call("divide", types.Float64, col(http, "latency"), lit(1e6))
	inner := withExpr(http, "ms", ms)
	outer := &plan.Map{Input: inner, Exprs: []plan.NamedExpr{
		{Name: "t", Expr: col(inner, "time_")},
		{Name: "slow", Expr: cmp(fnGt, col(inner, "ms"), lit(2.5))},
	}}
	twice := &plan.Map{Input: inner, Exprs: []plan.NamedExpr{
		{Name: "a", Expr: col(inner, "ms")},
		{Name: "b", Expr: col(inner, "ms")},
	}}
	runRuleCases(t, []Rule{fuseMaps{}}, []ruleCase{
		{"consecutive maps merge", sinks(outer), `
			#1 Sink "out0"
			  #2 Map [t=time_, slow=greaterThan(divide(latency, 1e+06), 2.5)]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"no fusion that computes twice", sinks(twice), `
			#1 Sink "out0"
			  #2 Map [a=ms, b=ms]
			    #3 Map [time_, resp_status, latency, ms=divide(latency, 1e+06)]
			      #4 Scan http_events [time_, resp_status, latency]
		`},
		{"a shared inner map stays", sinks(outer, inner), `
			#1 Sink "out0"
			  #2 Map [t=time_, slow=greaterThan(ms, 2.5)]
			    #3 Map [time_, resp_status, latency, ms=divide(latency, 1e+06)]
			      #4 Scan http_events [time_, resp_status, latency]
			#5 Sink "out1"
			  (see #3)
		`},
	})
}
