package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/sources/tables"
)

func TestFuseFilters(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "resp_status", "latency")
	inner := filter(http, cmp(fnGt, col(http, "latency"), lit(5)))
	outer := filter(inner, cmp(fnEq, col(http, "resp_status"), lit(500)))
	runRuleCases(t, []Rule{fuseFilters{}}, []ruleCase{
		{"two filters AND together", sinks(outer), `
			#1 Sink "out0"
			  #2 Filter logicalAnd(greaterThan(latency, 5), equal(resp_status, 500))
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"a shared inner filter stays", sinks(outer, inner), `
			#1 Sink "out0"
			  #2 Filter equal(resp_status, 500)
			    #3 Filter greaterThan(latency, 5)
			      #4 Scan http_events [time_, resp_status, latency]
			#5 Sink "out1"
			  (see #3)
		`},
	})
}
