package exec

import (
	"context"
	"testing"

	"github.com/pxq-dev/pxq/internal/plantest"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// TestJoinRowMatchedTwiceBesideUnmatched: probe rows 0 (two matches), 1
// (none) and 2 (one match) pair as 0, 0, 2, whose first and last differ
// by the count minus one as a run of consecutive rows would; the probe
// columns must still be taken row by row.
func TestJoinRowMatchedTwiceBesideUnmatched(t *testing.T) {
	rel := types.Relation{{Name: "k", Type: types.Int64}, {Name: "v", Type: types.String}}
	db := plantest.DB{
		"p": {Rel: rel, Rows: [][]any{{int64(1), "x"}, {int64(5), "y"}, {int64(2), "z"}}},
		"b": {Rel: rel, Rows: [][]any{{int64(1), "b1"}, {int64(1), "b2"}, {int64(2), "b3"}}},
	}
	st := table.NewStore(0)
	fill(st, "p", db["p"], 3)
	fill(st, "b", db["b"], 3)
	j := &plan.Join{Left: plantest.Scan("p", rel), Right: plantest.Scan("b", rel), How: plan.InnerJoin,
		LeftOn: []string{"k"}, RightOn: []string{"k"},
		Output: []plan.JoinColumn{{Side: 0, Name: "v", As: "v"}, {Side: 1, Name: "v", As: "bv"}}}
	res, err := Collect(context.Background(), &plan.Plan{Sinks: []*plan.Sink{{Input: j, Name: "out"}}}, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	want := plantest.Eval(t, db, j)
	if len(want) != 3 || want[1][0] != "x" {
		t.Fatalf("reference: %v", want)
	}
	if err := plantest.SameRows(rowsOf(res), want); err != nil {
		t.Fatal(err)
	}
}
