package broker_test

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/types"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCluster is n agents with different data, a broker over them, and
// an embedded engine holding the union of their data.
type testCluster struct {
	agents   []*brokertest.Agent
	broker   *broker.Broker
	embedded *engine.Engine
	now      time.Time
}

func newCluster(t testing.TB, n, rows int, cfg broker.Config) *testCluster {
	t.Helper()
	c := &testCluster{now: time.Now()}
	c.embedded = brokertest.NewEngine(t, brokertest.Meta{}, 0)
	for i := 0; i < n; i++ {
		asid := uint32(i + 1)
		eng := brokertest.NewEngine(t, brokertest.Meta{}, asid)
		// Agents hold different amounts of different rows.
		brokertest.FillHTTPEvents(t, []*engine.Engine{eng, c.embedded}, asid, int64(asid)*7, rows*(i+1), c.now)
		a := brokertest.StartAgent(t, eng, asid)
		c.agents = append(c.agents, a)
		cfg.Agents = append(cfg.Agents, a.Addr)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c.broker = b
	return c
}

func pxl(src string) *scripts.Script {
	return &scripts.Script{Name: "test", Path: "test.pxl", PXL: []byte(strings.TrimSpace(src) + "\n")}
}

// distOpts are a distributed query's choices.
type distOpts struct {
	MaxRows      int64
	AllOrNothing bool
}

// runDistributed runs q on the agents through the broker, as the public
// services do (package query), with the broker's own query timeout.
func (c *testCluster) runDistributed(ctx context.Context, q engine.Query, o distOpts) ([]*format.Table, query.Result, error) {
	q.MaxRows, q.AllOrNothing = o.MaxRows, o.AllOrNothing
	r := &query.Runner{Backend: c.broker, Limits: query.Limits{Timeout: -1}}
	return r.Collect(ctx, q)
}

// corpus is the scripts whose distributed results must equal the
// embedded engine's.
var corpus = []struct {
	name  string
	src   string
	args  map[string]string
	count bool // compare row counts only (limits: which rows is free)
}{
	{name: "aggregates", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
df.failure = df.resp_status >= 400
s = df.groupby(['req_path', 'req_method']).agg(n=('latency', px.count), total=('latency', px.sum), avg=('latency', px.mean),
    lo=('latency', px.min), hi=('latency', px.max), err=('failure', px.mean), first=('time_', px.min), last=('time_', px.max))
px.display(s, 'stats')
`},
	{name: "global aggregate", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.display(df.agg(n=('latency', px.count), total=('resp_body_size', px.sum), avg=('latency', px.mean)), 'total')
`},
	{name: "quantiles", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
s = df.groupby(['resp_status']).agg(q=('latency', px.quantiles))
s.p50 = px.pluck_float64(s.q, 'p50')
s.p90 = px.pluck_float64(s.q, 'p90')
s.p99 = px.pluck_float64(s.q, 'p99')
px.display(s[['resp_status', 'p50', 'p90', 'p99']], 'quantiles')
`},
	{name: "join of two aggregates", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
a = df.groupby(['req_path']).agg(n=('latency', px.count))
e = df[df.resp_status >= 500].groupby(['req_path']).agg(errors=('latency', px.count))
j = a.merge(e, how='left', left_on=['req_path'], right_on=['req_path'], suffixes=['', '_e'])
px.display(j, 'joined')
`},
	{name: "join of raw rows", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
slow = df[df.latency > 30000000][['upid', 'req_path', 'latency']]
paths = df.groupby(['req_path']).agg(n=('latency', px.count))
j = slow.merge(paths, how='inner', left_on=['req_path'], right_on=['req_path'], suffixes=['', '_p'])
px.display(j, 'slow')
`},
	{name: "filter and map, raw rows", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
df = df[df.latency > 30000000]
df.ms = df.latency / 1000000
px.display(df[['time_', 'upid', 'req_path', 'resp_status', 'ms']], 'slow')
`},
	{name: "limit", count: true, src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.display(df.head(100), 'head')
px.display(df[df.resp_status == 503].head(7), 'head503')
`},
	{name: "metadata on agents", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
df.pod = df.ctx['pod']
df.service = df.ctx['service']
s = df.groupby(['pod', 'service']).agg(n=('latency', px.count), avg=('latency', px.mean))
px.display(s, 'pods')
`},
	{name: "metadata on the broker", src: `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
s = df.groupby(['upid']).agg(n=('latency', px.count))
s.pod = px.upid_to_pod_name(s.upid)
s.cmd = px.upid_to_cmdline(s.upid)
px.display(s, 'procs')
`},
	{name: "time range", src: `
import px
df = px.DataFrame(table='http_events', start_time='-2m')
px.display(df.groupby(['resp_status']).agg(n=('latency', px.count)), 'recent')
`},
	{name: "library script", args: map[string]string{"start_time": "-10m"}},
}

func TestDistributedEqualsEmbedded(t *testing.T) {
	c := newCluster(t, 3, 4000, broker.Config{Meta: brokertest.Meta{}})
	lib := scripts.NewLibrary()
	ctx := context.Background()
	for _, tc := range corpus {
		t.Run(tc.name, func(t *testing.T) {
			var sc *scripts.Script
			if tc.src == "" {
				var err error
				if sc, err = lib.Get("px/http_request_stats"); err != nil {
					t.Fatal(err)
				}
			} else {
				sc = pxl(tc.src)
			}
			q := engine.Query{Script: sc, Args: tc.args, Now: c.now}
			got, info, err := c.runDistributed(ctx, q, distOpts{MaxRows: -1})
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Warnings) > 0 || info.Agents != 3 {
				t.Fatalf("agents %d, warnings %v", info.Agents, info.Warnings)
			}
			want, err := c.embedded.Collect(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			compareTables(t, got, want, tc.count)
		})
	}
}

// compareTables checks that two query results hold the same tables with
// the same rows in any order (only as many rows when countOnly). Floats
// match within 1e-9 relative; columns named p50, p90, p99 (quantile
// estimates) within the t-digest's error.
func compareTables(t *testing.T, got, want []*format.Table, countOnly bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d tables, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Name != w.Name || g.Relation.String() != w.Relation.String() {
			t.Fatalf("table %d: %s %v, want %s %v", i, g.Name, g.Relation, w.Name, w.Relation)
		}
		if g.Rows() != w.Rows() {
			t.Fatalf("table %s: %d rows, want %d", g.Name, g.Rows(), w.Rows())
		}
		if w.Rows() == 0 {
			t.Fatalf("table %s: no rows: the test proves nothing", w.Name)
		}
		if countOnly {
			continue
		}
		gr, wr := rowsOf(g), rowsOf(w)
		for r := range wr {
			for ci, col := range w.Relation {
				if !sameValue(col.Name, gr[r][ci], wr[r][ci]) {
					t.Fatalf("table %s row %d column %s: %v, want %v\ngot  %v\nwant %v", w.Name, r, col.Name, gr[r][ci], wr[r][ci], gr[r], wr[r])
				}
			}
		}
	}
}

func sameValue(col string, a, b any) bool {
	fa, aok := a.(float64)
	fb, bok := b.(float64)
	if !aok || !bok {
		return fmt.Sprint(a) == fmt.Sprint(b)
	}
	tol := 1e-9
	switch col {
	case "p50", "p90", "p99", "latency_p50", "latency_p90", "latency_p99":
		tol = 0.05
	}
	return math.Abs(fa-fb) <= tol*math.Max(math.Abs(fa), math.Abs(fb))+1e-9
}

// rowsOf returns a table's rows sorted by their exact (non-float)
// values.
func rowsOf(t *format.Table) [][]any {
	var rows [][]any
	for _, rec := range t.Records {
		for r := 0; r < int(rec.NumRows()); r++ {
			row := make([]any, rec.NumCols())
			for c := range row {
				row[c] = format.Value(rec.Column(c), r)
			}
			rows = append(rows, row)
		}
	}
	key := func(row []any) string {
		var b strings.Builder
		for c, v := range row {
			if t.Relation[c].Type != types.Float64 {
				fmt.Fprintf(&b, "%v|", v)
			}
		}
		return b.String()
	}
	sort.SliceStable(rows, func(i, j int) bool { return key(rows[i]) < key(rows[j]) })
	return rows
}
