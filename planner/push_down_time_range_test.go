package planner

import (
	"math"
	"testing"

	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
)

func TestPushDownTimeRange(t *testing.T) {
	scanWhere := func(start, end int64, cond plan.Expr) *plan.Plan {
		s := scan(tables.All["http_events"], "time_", "latency")
		s.Start, s.End, s.Filter = start, end, cond
		return sinks(s)
	}
	http := scan(tables.All["http_events"], "time_", "latency")
	tm := col(http, "time_")
	slow := cmp(fnGt, col(http, "latency"), lit(5))

	runRuleCases(t, []Rule{pushDownTimeRange{}}, []ruleCase{
		{"lower and upper bounds", scanWhere(0, 0, and(cmp(fnGe, tm, timeLit(100)), slow, cmp(fnLt, tm, timeLit(200)))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] time=[100, 200) filter=greaterThan(latency, 5)
		`},
		{"strict lower and inclusive upper shift by one", scanWhere(0, 0, and(cmp(fnGt, tm, timeLit(100)), cmp(fnLe, tm, timeLit(200)))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] time=[101, 201)
		`},
		{"literal on the left mirrors", scanWhere(0, 0, cmp(fnLt, timeLit(100), tm)), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] time=[101, 0)
		`},
		{"tightens existing bounds", scanWhere(150, 300, and(cmp(fnGe, tm, timeLit(100)), cmp(fnLt, tm, timeLit(250)))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] time=[150, 250)
		`},
		{"equality is a one-ns range", scanWhere(0, 0, cmp(fnEq, tm, timeLit(42))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] time=[42, 43)
		`},
		{"non-positive bounds stay in the filter", scanWhere(0, 0, and(cmp(fnGe, tm, timeLit(-5)), cmp(fnLt, tm, timeLit(0)))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] filter=logicalAnd(greaterThanEqual(time_, -5), lessThan(time_, 0))
		`},
		{"implied non-positive lower bound goes", scanWhere(10, 0, cmp(fnGe, tm, timeLit(-5))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] time=[10, 0)
		`},
		{"overflow stays in the filter", scanWhere(0, 0, cmp(fnLe, tm, timeLit(math.MaxInt64))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] filter=lessThanEqual(time_, 9223372036854775807)
		`},
		{"other columns and non-constant terms stay", scanWhere(0, 0, and(slow, cmp(fnLt, tm, col(http, "latency")))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, latency] filter=logicalAnd(greaterThan(latency, 5), lessThan(time_, latency))
		`},
	})
}
