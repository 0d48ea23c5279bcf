package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/funcs/tablefuncs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

func TestSplit(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "upid", "req_path", "latency")
	conn := scan(tables.All["conn_stats"], "time_", "upid", "bytes_sent")
	f := filter(http, cmp(fnGt, col(http, "latency"), lit(5)))
	agg := &plan.Aggregate{Input: f, Groups: []string{"req_path"}, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(f, "latency")}, T: types.Int64}}}
	after := filter(agg, cmp(fnGt, col(agg, "n"), lit(1)))
	join := &plan.Join{Left: http, Right: conn, How: plan.InnerJoin, LeftOn: []string{"upid"}, RightOn: []string{"upid"},
		Output: []plan.JoinColumn{{Side: 0, Name: "req_path", As: "req_path"}, {Side: 1, Name: "bytes_sent", As: "sent"}}}
	agents := &plan.TableFunc{Func: "GetAgentStatus", Rel: tablefuncs.Lookup("GetAgentStatus").Relation}
	udfs := &plan.TableFunc{Func: "GetUDFList", Rel: tablefuncs.Lookup("GetUDFList").Relation}

	cases := []struct {
		name        string
		in          *plan.Plan
		node, merge string
	}{
		{"aggregate becomes partial and final", sinks(after), `
			#1 Sink "__bridge_1"
			  #2 BridgeSink #1
			    #3 Aggregate(partial) by [req_path] [n=count(latency)]
			      #4 Filter greaterThan(latency, 5)
			        #5 Scan http_events [time_, upid, req_path, latency]
		`, `
			#1 Sink "out0"
			  #2 Filter greaterThan(n, 1)
			    #3 Aggregate(final) by [req_path] [n=count(latency)]
			      #4 BridgeSource #1
		`},
		{"limit is local and global", sinks(limit(f, 10)), `
			#1 Sink "__bridge_1"
			  #2 BridgeSink #1
			    #3 Limit 10
			      #4 Filter greaterThan(latency, 5)
			        #5 Scan http_events [time_, upid, req_path, latency]
		`, `
			#1 Sink "out0"
			  #2 Limit 10
			    #3 BridgeSource #1
		`},
		{"join runs on the broker", sinks(join), `
			#1 Sink "__bridge_1"
			  #2 BridgeSink #1
			    #3 Scan http_events [time_, upid, req_path, latency]
			#4 Sink "__bridge_2"
			  #5 BridgeSink #2
			    #6 Scan conn_stats [time_, upid, bytes_sent]
		`, `
			#1 Sink "out0"
			  #2 Join inner on [upid] = [upid]
			    #3 BridgeSource #1
			    #4 BridgeSource #2
		`},
		{"shared agent-side node gets one bridge", sinks(f, agg), `
			#1 Sink "__bridge_1"
			  #2 BridgeSink #1
			    #3 Filter greaterThan(latency, 5)
			      #4 Scan http_events [time_, upid, req_path, latency]
			#5 Sink "__bridge_2"
			  #6 BridgeSink #2
			    #7 Aggregate(partial) by [req_path] [n=count(latency)]
			      (see #3)
		`, `
			#1 Sink "out0"
			  #2 BridgeSource #1
			#3 Sink "out1"
			  #4 Aggregate(final) by [req_path] [n=count(latency)]
			    #5 BridgeSource #2
		`},
		{"agent table functions run on agents, others on the broker", sinks(agents, udfs), `
			#1 Sink "__bridge_1"
			  #2 BridgeSink #1
			    #3 TableFunc GetAgentStatus
		`, `
			#1 Sink "out0"
			  #2 BridgeSource #1
			#3 Sink "out1"
			  #4 TableFunc GetUDFList
		`},
		{"union runs on the broker", sinks(&plan.Union{Inputs: []plan.Node{project(http, "upid"), project(conn, "upid")}}), `
			#1 Sink "__bridge_1"
			  #2 BridgeSink #1
			    #3 Map [upid]
			      #4 Scan http_events [time_, upid, req_path, latency]
			#5 Sink "__bridge_2"
			  #6 BridgeSink #2
			    #7 Map [upid]
			      #8 Scan conn_stats [time_, upid, bytes_sent]
		`, `
			#1 Sink "out0"
			  #2 Union (2 inputs)
			    #3 BridgeSource #1
			    #4 BridgeSource #2
		`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Split(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := plan.Format(d.Node), text(tc.node); got != want {
				t.Errorf("node fragment:\n%s\nwant:\n%s", got, want)
			}
			if got, want := plan.Format(d.Merge), text(tc.merge); got != want {
				t.Errorf("merge fragment:\n%s\nwant:\n%s", got, want)
			}
			checkPlan(t, d.Node)
			checkPlan(t, d.Merge)
			checkBridges(t, d)
		})
	}
}

// checkBridges verifies that every BridgeSource has a BridgeSink of the
// same ID and relation.
func checkBridges(t *testing.T, d *Distributed) {
	t.Helper()
	sinks := map[int]types.Relation{}
	for _, s := range d.Node.Sinks {
		b, ok := s.Input.(*plan.BridgeSink)
		if !ok || s.Name != BridgeSinkName(b.ID) {
			t.Errorf("node fragment output %q is not a wrapped BridgeSink", s.Name)
			continue
		}
		sinks[b.ID] = b.Relation()
	}
	plan.Walk(d.Merge, func(n plan.Node) {
		if src, ok := n.(*plan.BridgeSource); ok {
			rel, ok := sinks[src.ID]
			if !ok || rel.String() != src.Rel.String() {
				t.Errorf("BridgeSource #%d %s has no matching sink (%s)", src.ID, src.Rel, rel)
			}
		}
	})
}

func TestSplitRejectsSplitPlans(t *testing.T) {
	src := &plan.BridgeSource{ID: 1, Rel: tables.All["http_events"].Relation}
	if _, err := Split(sinks(src)); err == nil {
		t.Fatal("splitting a plan with a BridgeSource succeeded")
	}
}
