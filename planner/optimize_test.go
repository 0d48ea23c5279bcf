package planner

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

// scriptPlan is the plan of a typical script:
//
//	df = px.DataFrame('http_events', start_time='-5m')
//	df.ms = df.latency / 1e6
//	df = df[df.time_ >= px.now() - px.minutes(1)]
//	df = df[df.resp_status >= 400]
//	df = df.groupby('req_path').agg(n=('ms', px.count), p=('ms', px.mean))
//	px.display(df[['req_path', 'n']])
//	px.display(errors.head(5), 'sample')   # the filtered rows, shared
func scriptPlan() *plan.Plan {
	const now = 1_700_000_000_000_000_000
	http := scan(tables.All["http_events"])
	http.Start = now - 300e9
	ms := withExpr(http, "ms", call("divide", types.Float64, col(http, "latency"), lit(1e6)))
	recent := filter(ms, cmp(fnGe, col(ms, "time_"), call("plannertest_sub", types.Time64NS, timeLit(now), call("plannertest_minutes", types.Int64, lit(1)))))
	errors := filter(recent, cmp(fnGe, col(recent, "resp_status"), lit(400)))
	agg := &plan.Aggregate{Input: errors, Groups: []string{"req_path"}, Aggs: []plan.AggExpr{
		{Name: "n", Func: "count", Args: []plan.Expr{col(errors, "ms")}, T: types.Int64},
		{Name: "p", Func: "mean", Args: []plan.Expr{col(errors, "ms")}, T: types.Float64}}}
	sample := project(limit(errors, 5), "req_path", "ms")
	p := sinks(project(agg, "req_path", "n"), sample)
	p.Now = now
	return p
}

func TestOptimizeScript(t *testing.T) {
	p := scriptPlan()
	before := plan.Format(p)
	got, err := Optimize(p)
	if err != nil {
		t.Fatal(err)
	}
	// The filters fuse and sink into the scan (the map passes time_ and
	// resp_status through); the time term becomes the scan's range; the
	// two consumers of the filtered rows share them, so the scan reads
	// the union of the columns they need; the projections become
	// identities once pruned and go; the limit stays above the filter.
	want := text(`
		#1 Sink "out0"
		  #2 Aggregate(full) by [req_path] [n=count(req_path)]
		    #3 Map [req_path, ms=divide(latency, 1e+06)]
		      #4 Scan http_events [req_path, resp_status, latency] time=[1699999940000000000, 0) filter=greaterThanEqual(resp_status, 400)
		#5 Sink "out1"
		  #6 Limit 5
		    (see #3)
	`)
	if g := plan.Format(got); g != want {
		t.Errorf("optimized:\n%s\nwant:\n%s", g, want)
	}
	if plan.Format(p) != before {
		t.Error("Optimize modified its input")
	}
	checkPlan(t, got)

	d, err := Split(got)
	if err != nil {
		t.Fatal(err)
	}
	checkBridges(t, d)
	wantNode := text(`
		#1 Sink "__bridge_1"
		  #2 BridgeSink #1
		    #3 Aggregate(partial) by [req_path] [n=count(req_path)]
		      #4 Map [req_path, ms=divide(latency, 1e+06)]
		        #5 Scan http_events [req_path, resp_status, latency] time=[1699999940000000000, 0) filter=greaterThanEqual(resp_status, 400)
		#6 Sink "__bridge_2"
		  #7 BridgeSink #2
		    #8 Limit 5
		      (see #4)
	`)
	wantMerge := text(`
		#1 Sink "out0"
		  #2 Aggregate(final) by [req_path] [n=count(req_path)]
		    #3 BridgeSource #1
		#4 Sink "out1"
		  #5 Limit 5
		    #6 BridgeSource #2
	`)
	if g := plan.Format(d.Node); g != wantNode {
		t.Errorf("node fragment:\n%s\nwant:\n%s", g, wantNode)
	}
	if g := plan.Format(d.Merge); g != wantMerge {
		t.Errorf("merge fragment:\n%s\nwant:\n%s", g, wantMerge)
	}
}

// Optimizing twice changes nothing: the rules reach a fixpoint.
func TestOptimizeIdempotent(t *testing.T) {
	for _, p := range append(corpus()[:1], scriptPlan()) {
		once, err := Optimize(p)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := Optimize(once)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Format(once) != plan.Format(twice) {
			t.Errorf("second Optimize changed the plan:\n%s\nwas:\n%s", plan.Format(twice), plan.Format(once))
		}
	}
}

func TestExplain(t *testing.T) {
	out, err := Explain(scriptPlan())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"== logical plan ==", "== optimized plan ==", "== node fragment (every agent) ==", "== merge fragment (broker) ==", "Aggregate(partial)", "BridgeSource #1"} {
		if !strings.Contains(out, s) {
			t.Errorf("Explain output lacks %q:\n%s", s, out)
		}
	}
}
