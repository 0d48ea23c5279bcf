package planner

import (
	"errors"
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/types"
)

// Test functions with kernels, registered under names no real function
// uses, so that the test does not depend on which kernels funcs has yet.
func init() {
	funcs.RegisterScalar(&funcs.ScalarFunc{Name: "plannertest_sub", Volatility: funcs.Immutable, Overloads: []funcs.Overload{{
		Args: []types.DataType{types.Time64NS, types.Int64}, Ret: types.Time64NS,
		Kernel: func(_ *funcs.Context, args []funcs.Value, _ int) (funcs.Value, error) {
			return funcs.Value{Const: args[0].Const.(int64) - args[1].Const.(int64)}, nil
		},
	}}})
	funcs.RegisterScalar(&funcs.ScalarFunc{Name: "plannertest_minutes", Volatility: funcs.Immutable, Overloads: []funcs.Overload{{
		Args: []types.DataType{types.Int64}, Ret: types.Int64,
		Kernel: func(_ *funcs.Context, args []funcs.Value, _ int) (funcs.Value, error) {
			if !args[0].IsConst() {
				return funcs.Value{}, errors.New("columns not supported in this test kernel")
			}
			return funcs.Value{Const: args[0].Const.(int64) * 60e9}, nil
		},
	}}})
	funcs.RegisterScalar(&funcs.ScalarFunc{Name: "plannertest_fails", Volatility: funcs.Immutable, Overloads: []funcs.Overload{{
		Args: []types.DataType{types.Int64}, Ret: types.Int64,
		Kernel: func(*funcs.Context, []funcs.Value, int) (funcs.Value, error) {
			return funcs.Value{}, errors.New("always fails")
		},
	}}})
	funcs.RegisterScalar(&funcs.ScalarFunc{Name: "plannertest_panics", Volatility: funcs.Immutable, Overloads: []funcs.Overload{{
		Args: []types.DataType{types.Int64}, Ret: types.Int64,
		Kernel: func(*funcs.Context, []funcs.Value, int) (funcs.Value, error) { panic("boom") },
	}}})
	funcs.RegisterScalar(&funcs.ScalarFunc{Name: "plannertest_nokernel", Volatility: funcs.Immutable, Overloads: []funcs.Overload{{
		Args: []types.DataType{types.Int64}, Ret: types.Int64,
	}}})
}

func TestFoldConstants(t *testing.T) {
	http := scan(tables.All["http_events"], "time_", "resp_status", "latency")
	tm := col(http, "time_")
	now := timeLit(1_700_000_000_000_000_000)
	fiveMin := call("plannertest_minutes", types.Int64, lit(5))
	window := cmp(fnGe, tm, call("plannertest_sub", types.Time64NS, now, fiveMin))
	sel := func(c plan.Expr) plan.Expr {
		return call(fnSelect, types.String, c, lit("slow"), lit("fast"))
	}
	isErr := cmp(fnGe, col(http, "resp_status"), lit(400))
	unary := func(fn string) *plan.Plan {
		return sinks(withExpr(http, "x", call(fn, types.Int64, lit(1))))
	}

	runRuleCases(t, []Rule{foldConstants{}}, []ruleCase{
		{"now minus minutes", sinks(filter(http, window)), `
			#1 Sink "out0"
			  #2 Filter greaterThanEqual(time_, 1699999700000000000)
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"select with a constant condition", sinks(withExpr(http, "kind", sel(lit(true)))), `
			#1 Sink "out0"
			  #2 Map [time_, resp_status, latency, kind="slow"]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"select with a column condition stays", sinks(withExpr(http, "kind", sel(isErr))), `
			#1 Sink "out0"
			  #2 Map [time_, resp_status, latency, kind=select(greaterThanEqual(resp_status, 400), "slow", "fast")]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"and/or with constants", sinks(filter(http, and(call(fnOr, types.Boolean, lit(false), isErr), lit(true)))), `
			#1 Sink "out0"
			  #2 Filter greaterThanEqual(resp_status, 400)
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"true filter goes", sinks(filter(http, call(fnOr, types.Boolean, isErr, lit(true)))), `
			#1 Sink "out0"
			  #2 Scan http_events [time_, resp_status, latency]
		`},
		{"false and anything", sinks(filter(http, and(lit(false), isErr))), `
			#1 Sink "out0"
			  #2 Filter False
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"failing kernel stays", unary("plannertest_fails"), `
			#1 Sink "out0"
			  #2 Map [time_, resp_status, latency, x=plannertest_fails(1)]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"panicking kernel stays", unary("plannertest_panics"), `
			#1 Sink "out0"
			  #2 Map [time_, resp_status, latency, x=plannertest_panics(1)]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"no kernel stays", unary("plannertest_nokernel"), `
			#1 Sink "out0"
			  #2 Map [time_, resp_status, latency, x=plannertest_nokernel(1)]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
		{"unknown function stays", unary("no_such_function"), `
			#1 Sink "out0"
			  #2 Map [time_, resp_status, latency, x=no_such_function(1)]
			    #3 Scan http_events [time_, resp_status, latency]
		`},
	})
}

// TestFoldsByVolatility: the folder reads the registry, so a place-bound
// function (asid, metadata lookups) stays a call in the plan while an
// immutable one with the same constant arguments folds.
func TestFoldsByVolatility(t *testing.T) {
	for name, want := range map[string]bool{
		"upid_to_pod_name": false, "_exec_hostname": false, "asid": false, "vizier_name": false, "nslookup": false,
		"upid": false, "add": true, "pluck_float64": true, "bin": true, "has_service_name": true, "upid_to_pid": true,
	} {
		if got := funcs.Foldable(name); got != want {
			t.Errorf("Foldable(%q) = %v, want %v", name, got, want)
		}
	}
}
