package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

func TestPushDownFilter(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "upid", "req_path", "resp_status", "latency")
	conn := scan(tables.All["conn_stats"], "time_", "upid", "bytes_sent")

	// Through a map: the pass-through term moves (renamed), the term on
	// the computed column stays.
	m := &plan.Map{Input: http, Exprs: []plan.NamedExpr{
		{Name: "status", Expr: col(http, "resp_status")},
		{Name: "slow", Expr: cmp(fnGt, col(http, "latency"), lit(1000))},
	}}
	throughMap := sinks(filter(m, and(cmp(fnEq, col(m, "status"), lit(500)), col(m, "slow"))))

	// Through an aggregate: only group columns move.
	agg := &plan.Aggregate{Input: http, Groups: []string{"req_path"}, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(http, "latency")}, T: types.Int64}}}
	throughAgg := sinks(filter(agg, and(cmp(fnEq, col(agg, "req_path"), lit("/a")), cmp(fnGt, col(agg, "n"), lit(2)))))
	ungrouped := &plan.Aggregate{Input: http, Aggs: agg.Aggs}
	notThroughUngrouped := sinks(filter(ungrouped, cmp(fnGt, col(ungrouped, "n"), lit(2))))

	// Through a join, to the side that owns the columns.
	join := func(how plan.JoinType) *plan.Join {
		return &plan.Join{Left: http, Right: conn, How: how, LeftOn: []string{"upid"}, RightOn: []string{"upid"},
			Output: []plan.JoinColumn{{Side: 0, Name: "upid", As: "upid"}, {Side: 0, Name: "resp_status", As: "status"},
				{Side: 1, Name: "bytes_sent", As: "sent"}}}
	}
	joinCond := func(j *plan.Join) plan.Expr {
		return and(cmp(fnEq, col(j, "status"), lit(200)), cmp(fnGt, col(j, "sent"), lit(0)))
	}
	inner, left, outer := join(plan.InnerJoin), join(plan.LeftJoin), join(plan.OuterJoin)

	// Never past a limit; into a scan without a limit.
	lim := limit(http, 10)
	limitedScan := *http
	limitedScan.Limit = 10

	// A shared map stays shared: the filter stays above it.
	shared := project(http, "resp_status", "latency")

	// Into every input of a union.
	union := &plan.Union{Inputs: []plan.Node{project(http, "upid"), project(conn, "upid")}}

	runRuleCases(t, []Rule{pushDownFilter{}}, []ruleCase{
		{"through map into scan", throughMap, `
			#1 Sink "out0"
			  #2 Filter slow
			    #3 Map [status=resp_status, slow=greaterThan(latency, 1000)]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency] filter=equal(resp_status, 500)
		`},
		{"through aggregate on groups only", throughAgg, `
			#1 Sink "out0"
			  #2 Filter greaterThan(n, 2)
			    #3 Aggregate(full) by [req_path] [n=count(latency)]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency] filter=equal(req_path, "/a")
		`},
		{"not through ungrouped aggregate", notThroughUngrouped, `
			#1 Sink "out0"
			  #2 Filter greaterThan(n, 2)
			    #3 Aggregate(full) by [] [n=count(latency)]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency]
		`},
		{"inner join both sides", sinks(filter(inner, joinCond(inner))), `
			#1 Sink "out0"
			  #2 Join inner on [upid] = [upid]
			    #3 Scan http_events [time_, upid, req_path, resp_status, latency] filter=equal(resp_status, 200)
			    #4 Scan conn_stats [time_, upid, bytes_sent] filter=greaterThan(bytes_sent, 0)
		`},
		{"left join keeps right-side term above", sinks(filter(left, joinCond(left))), `
			#1 Sink "out0"
			  #2 Filter greaterThan(sent, 0)
			    #3 Join left on [upid] = [upid]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency] filter=equal(resp_status, 200)
			      #5 Scan conn_stats [time_, upid, bytes_sent]
		`},
		{"outer join keeps everything above", sinks(filter(outer, joinCond(outer))), `
			#1 Sink "out0"
			  #2 Filter logicalAnd(equal(status, 200), greaterThan(sent, 0))
			    #3 Join outer on [upid] = [upid]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency]
			      #5 Scan conn_stats [time_, upid, bytes_sent]
		`},
		{"never past a limit", sinks(filter(lim, cmp(fnEq, col(lim, "resp_status"), lit(500)))), `
			#1 Sink "out0"
			  #2 Filter equal(resp_status, 500)
			    #3 Limit 10
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency]
		`},
		{"not into a scan with a limit", sinks(filter(&limitedScan, cmp(fnEq, col(http, "resp_status"), lit(500)))), `
			#1 Sink "out0"
			  #2 Filter equal(resp_status, 500)
			    #3 Scan http_events [time_, upid, req_path, resp_status, latency] limit=10
		`},
		{"not through a shared node", sinks(filter(shared, cmp(fnEq, col(shared, "resp_status"), lit(500))), shared), `
			#1 Sink "out0"
			  #2 Filter equal(resp_status, 500)
			    #3 Map [resp_status, latency]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency]
			#5 Sink "out1"
			  (see #3)
		`},
		{"into every union input", sinks(filter(union, cmp(fnEq, col(union, "upid"), lit(types.UInt128Value{High: 1, Low: 2})))), `
			#1 Sink "out0"
			  #2 Union (2 inputs)
			    #3 Map [upid]
			      #4 Scan http_events [time_, upid, req_path, resp_status, latency] filter=equal(upid, upid(0:1:2))
			    #5 Map [upid]
			      #6 Scan conn_stats [time_, upid, bytes_sent] filter=equal(upid, upid(0:1:2))
		`},
	})
}
