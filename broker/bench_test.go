package broker_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/table"
)

// benchRows is the rows each agent holds ($PXQ_BENCH_ROWS, default 2 M).
func benchRows() int {
	if n, err := strconv.Atoi(os.Getenv("PXQ_BENCH_ROWS")); err == nil && n > 0 {
		return n
	}
	return 2_000_000
}

var (
	benchOnce  sync.Once
	benchStore *table.Store
	benchNow   time.Time
)

// sharedStore fills one store with benchRows() http_events rows; every
// agent of the benchmark serves it (the same data on each node keeps
// memory and set-up time down; the work and the bytes moved are those of
// distinct data).
func sharedStore(b *testing.B) *table.Store {
	benchOnce.Do(func() {
		benchNow = time.Now()
		eng := brokertest.NewEngine(b, brokertest.Meta{}, 1)
		brokertest.FillHTTPEvents(b, []*engine.Engine{eng}, 1, 1, benchRows(), benchNow)
		benchStore = eng.Store()
	})
	return benchStore
}

const groupByScript = `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
s = df.groupby(['req_path', 'resp_status']).agg(n=('latency', px.count), avg=('latency', px.mean), hi=('latency', px.max))
px.display(s, 'out')
`

// rawScript ships every row's group keys and value to the broker, as a
// merger without partial aggregation must.
const rawScript = `
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.display(df[['req_path', 'resp_status', 'latency']], 'out')
`

// BenchmarkDistributedGroupBy runs a group-by (16 paths × 7 statuses)
// on 1, 2, 4 and 8 agents on loopback, each holding benchRows() rows,
// and reports the bytes and rows the agents sent the broker; the "raw"
// variants ship the rows instead, for comparison.
func BenchmarkDistributedGroupBy(b *testing.B) {
	store := sharedStore(b)
	for _, script := range []struct{ name, src string }{{"partial", groupByScript}, {"raw", rawScript}} {
		for _, n := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("%s/agents=%d", script.name, n), func(b *testing.B) {
				var addrs []string
				for i := 0; i < n; i++ {
					eng, err := engine.New(engine.Config{Store: store, Meta: brokertest.Meta{}, ASID: uint32(i + 1)})
					if err != nil {
						b.Fatal(err)
					}
					addrs = append(addrs, brokertest.StartAgent(b, eng, uint32(i+1)).Addr)
				}
				br, err := broker.New(broker.Config{Agents: addrs, QueryTimeout: 10 * time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				defer br.Close()
				c := &testCluster{broker: br, now: benchNow}
				q := engine.Query{Script: pxl(script.src), Now: benchNow}
				var info query.Result
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					tables, inf, err := c.runDistributed(context.Background(), q, distOpts{MaxRows: -1})
					if err != nil {
						b.Fatal(err)
					}
					if tables[0].Rows() == 0 || len(inf.Warnings) > 0 {
						b.Fatalf("rows %d, warnings %v", tables[0].Rows(), inf.Warnings)
					}
					info = inf
				}
				b.ReportMetric(float64(info.BytesMoved), "bytes_moved/op")
				b.ReportMetric(float64(info.RowsMoved), "rows_moved/op")
			})
		}
	}
}

// BenchmarkEmbeddedGroupBy is the same group-by over one agent's rows in
// one process, with no network: the floor for the distributed numbers.
func BenchmarkEmbeddedGroupBy(b *testing.B) {
	store := sharedStore(b)
	eng, err := engine.New(engine.Config{Store: store, Meta: brokertest.Meta{}, Limits: query.Limits{MaxRowsPerTable: -1}})
	if err != nil {
		b.Fatal(err)
	}
	q := engine.Query{Script: pxl(groupByScript), Now: benchNow}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := eng.Collect(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}
