package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

func TestPushDownLimit(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "latency")
	conn := scan(tables.All["conn_stats"], "time_", "bytes_sent")
	m := withExpr(http, "ms", call("divide", types.Float64, col(http, "latency"), lit(1e6)))
	f := filter(http, cmp(fnGt, col(http, "latency"), lit(5)))
	agg := &plan.Aggregate{Input: http, Aggs: []plan.AggExpr{{Name: "n", Func: "count", Args: []plan.Expr{col(http, "latency")}, T: types.Int64}}}
	union := &plan.Union{Inputs: []plan.Node{project(http, "time_"), project(conn, "time_")}}
	shared := project(http, "time_")
	filteredScan := scan(tables.All["http_events"], "time_", "latency")
	filteredScan.Filter = cmp(fnGt, col(http, "latency"), lit(5))

	runRuleCases(t, []Rule{pushDownLimit{}}, []ruleCase{
		{"through a map into the scan", sinks(limit(m, 10)), `
			#1 Sink "out0"
			  #2 Map [time_, latency, ms=divide(latency, 1e+06)]
			    #3 Limit 10
			      #4 Scan http_events [time_, latency] limit=10
		`},
		{"stacked limits keep the smaller", sinks(limit(limit(http, 3), 10)), `
			#1 Sink "out0"
			  #2 Limit 3
			    #3 Scan http_events [time_, latency] limit=3
		`},
		{"a scan's own filter runs before its limit", sinks(limit(filteredScan, 7)), `
			#1 Sink "out0"
			  #2 Limit 7
			    #3 Scan http_events [time_, latency] filter=greaterThan(latency, 5) limit=7
		`},
		{"not past a filter", sinks(limit(f, 10)), `
			#1 Sink "out0"
			  #2 Limit 10
			    #3 Filter greaterThan(latency, 5)
			      #4 Scan http_events [time_, latency]
		`},
		{"not past an aggregate", sinks(limit(agg, 10)), `
			#1 Sink "out0"
			  #2 Limit 10
			    #3 Aggregate(full) by [] [n=count(latency)]
			      #4 Scan http_events [time_, latency]
		`},
		{"into every union input", sinks(limit(union, 4)), `
			#1 Sink "out0"
			  #2 Limit 4
			    #3 Union (2 inputs)
			      #4 Map [time_]
			        #5 Limit 4
			          #6 Scan http_events [time_, latency] limit=4
			      #7 Map [time_]
			        #8 Limit 4
			          #9 Scan conn_stats [time_, bytes_sent] limit=4
		`},
		{"not through a shared map", sinks(limit(shared, 5), shared), `
			#1 Sink "out0"
			  #2 Limit 5
			    #3 Map [time_]
			      #4 Scan http_events [time_, latency]
			#5 Sink "out1"
			  (see #3)
		`},
	})
}
