package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

func TestPruneColumns(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "upid", "req_path", "resp_status", "latency")
	conn := scan(tables.All["conn_stats"], "time_", "upid", "bytes_sent", "bytes_recv")

	// A map whose computed column nobody reads.
	m := withExpr(http, "ms", call("divide", types.Float64, col(http, "latency"), lit(1e6)))
	pick := project(m, "req_path")

	// An aggregate with an unused aggregate, over a filter that reads a
	// column nobody above needs.
	f := filter(http, cmp(fnGe, col(http, "resp_status"), lit(400)))
	agg := &plan.Aggregate{Input: f, Groups: []string{"req_path"}, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(f, "latency")}, T: types.Int64},
		{Name: "max_t", Func: "max", Args: []plan.Expr{col(f, "time_")}, T: types.Time64NS},
	}}
	aggPick := project(agg, "req_path", "n")

	// A scan shared by two sinks that read different columns.
	sharedScan := scan(tables.All["http_events"], "time_", "upid", "req_path", "resp_status", "latency")
	a := project(sharedScan, "req_path")
	b := project(sharedScan, "latency")

	// A join that outputs only some columns.
	j := &plan.Join{Left: http, Right: conn, How: plan.InnerJoin, LeftOn: []string{"upid"}, RightOn: []string{"upid"},
		Output: []plan.JoinColumn{{Side: 0, Name: "req_path", As: "req_path"}, {Side: 1, Name: "bytes_sent", As: "sent"},
			{Side: 1, Name: "bytes_recv", As: "recv"}}}
	joinPick := project(j, "req_path", "sent")

	// Nothing but constants: the scan keeps one column so rows still count.
	consts := &plan.Map{Input: http, Exprs: []plan.NamedExpr{{Name: "one", Expr: lit(1)}}}

	// A scan filter's columns stay read.
	filtered := scan(tables.All["http_events"], "time_", "resp_status", "latency")
	filtered.Filter = cmp(fnEq, col(filtered, "resp_status"), lit(500))

	// Counts read a column read anyway: the scan filter's, or their own.
	counted := scan(tables.All["http_events"], "time_", "resp_status", "latency")
	counted.Filter = cmp(fnGe, col(counted, "resp_status"), lit(500))
	countFiltered := &plan.Aggregate{Input: counted, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(counted, "latency")}, T: types.Int64}}}
	countAll := &plan.Aggregate{Input: http, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(http, "latency")}, T: types.Int64},
		{Name: "m", Func: "count", Args: []plan.Expr{col(http, "upid")}, T: types.Int64}}}

	runRuleCases(t, []Rule{pruneColumns{}}, []ruleCase{
		{"a count reads the scan filter's column", sinks(countFiltered), `
			#1 Sink "out0"
			  #2 Aggregate(full) by [] [n=count(resp_status)]
			    #3 Scan http_events [resp_status] filter=greaterThanEqual(resp_status, 500)
		`},
		{"counts read one column", sinks(countAll), `
			#1 Sink "out0"
			  #2 Aggregate(full) by [] [n=count(latency), m=count(latency)]
			    #3 Scan http_events [latency]
		`},
		{"map drops unused outputs, scan reads fewer columns", sinks(pick), `
			#1 Sink "out0"
			  #2 Map [req_path]
			    #3 Map [req_path]
			      #4 Scan http_events [req_path]
		`},
		{"aggregate drops unused aggregates; filter keeps its columns", sinks(aggPick), `
			#1 Sink "out0"
			  #2 Map [req_path, n]
			    #3 Aggregate(full) by [req_path] [n=count(req_path)]
			      #4 Filter greaterThanEqual(resp_status, 400)
			        #5 Scan http_events [req_path, resp_status]
		`},
		{"shared scan reads the union", sinks(a, b), `
			#1 Sink "out0"
			  #2 Map [req_path]
			    #3 Scan http_events [req_path, latency]
			#4 Sink "out1"
			  #5 Map [latency]
			    (see #3)
		`},
		{"join drops outputs and reads keys", sinks(joinPick), `
			#1 Sink "out0"
			  #2 Map [req_path, sent]
			    #3 Join inner on [upid] = [upid]
			      #4 Scan http_events [upid, req_path]
			      #5 Scan conn_stats [upid, bytes_sent]
		`},
		{"constants keep one column", sinks(consts), `
			#1 Sink "out0"
			  #2 Map [one=1]
			    #3 Scan http_events [time_]
		`},
		{"scan filter columns stay", sinks(project(filtered, "latency")), `
			#1 Sink "out0"
			  #2 Map [latency]
			    #3 Scan http_events [resp_status, latency] filter=equal(resp_status, 500)
		`},
		{"sinks keep every column", sinks(http), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, upid, req_path, resp_status, latency]
		`},
	})
}
