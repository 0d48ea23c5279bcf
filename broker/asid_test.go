package broker_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/planner"
)

// asidScript groups rows by the ASID of the agent that computes it. A
// planner that folds px.asid() at plan time gives one group with the
// broker's constant.
const asidScript = `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
df.a = px.asid()
px.display(df.groupby('a').agg(n=('latency', px.count)), 'by_agent')
`

// TestASIDPerAgent: place-bound functions run where the rows are, so two
// agents give two groups, one per agent's ASID.
func TestASIDPerAgent(t *testing.T) {
	c := newCluster(t, 2, 500, broker.Config{Meta: brokertest.Meta{}})
	ctx := context.Background()
	tables, _, err := c.runDistributed(ctx, engine.Query{Script: pxl(asidScript)}, distOpts{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rowsOf(tables[0]) {
		got = append(got, fmt.Sprintf("%v:%v", r[0], r[1]))
	}
	sort.Strings(got)
	// Agent i holds 500*i rows (newCluster).
	if want := "1:500,2:1000"; strings.Join(got, ",") != want {
		t.Errorf("groups = %v, want %s", got, want)
	}

	// EXPLAIN shows asid() in the node fragment.
	cat, _, err := c.broker.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := engine.CompileLogical(engine.Query{Script: pxl(asidScript)}, cat)
	if err != nil {
		t.Fatal(err)
	}
	text, err := planner.Explain(p)
	if err != nil {
		t.Fatal(err)
	}
	node := text[strings.Index(text, "== node fragment"):strings.Index(text, "== merge fragment")]
	if !strings.Contains(node, "a=asid()") {
		t.Errorf("node fragment does not compute asid():\n%s", node)
	}
}
