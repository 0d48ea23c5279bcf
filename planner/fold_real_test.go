package planner

import (
	"testing"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/types"
)

// TestFoldWithRegistryKernels folds calls through whatever kernels package
// funcs registers; a function without a kernel yet skips its case.
func TestFoldWithRegistryKernels(t *testing.T) {
	now := timeLit(1_700_000_000_000_000_000)
	cases := []struct {
		call plan.Expr
		want string
	}{
		{call("subtract", types.Time64NS, now, lit(int64(300e9))), "1699999700000000000"},
		{call("add", types.Int64, lit(2), lit(3)), "5"},
		{call("multiply", types.Float64, lit(1.5), lit(2.0)), "3.0"},
		{cmp(fnEq, lit("a"), lit("a")), "True"},
		{call("contains", types.Boolean, lit("hello"), lit("ell")), "True"},
	}
	f := folder{ctx: &funcs.Context{Now: 1}}
	for _, tc := range cases {
		c := tc.call.(*plan.Call)
		argTypes := make([]types.DataType, len(c.Args))
		for i, a := range c.Args {
			argTypes[i] = a.Type()
		}
		if o, err := funcs.Resolve(c.Func, argTypes); err != nil || o.Kernel == nil {
			t.Logf("%s: no kernel yet, skipped", c)
			continue
		}
		if got := f.fold(c).String(); got != tc.want {
			t.Errorf("fold(%s) = %s, want %s", c, got, tc.want)
		}
	}
}
