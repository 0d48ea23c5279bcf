package query_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pxl(src string) *scripts.Script {
	return &scripts.Script{Name: "test", Path: "test.pxl", PXL: []byte(strings.TrimSpace(src) + "\n")}
}

// twoTables displays every row of http_events twice.
var twoTables = pxl(`
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.display(df[['time_', 'req_path', 'latency']], 'a')
px.display(df[['req_path']], 'b')
`)

func newEngine(t *testing.T, rows int) *engine.Engine {
	t.Helper()
	eng := brokertest.NewEngine(t, brokertest.Meta{}, 1)
	brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, 1, 1, rows, time.Now())
	return eng
}

func TestResultRowsCut(t *testing.T) {
	eng := newEngine(t, 3000)
	r := &query.Runner{Backend: eng, Limits: query.Limits{MaxRowsPerTable: -1, MaxResultRows: 2500}}
	tables, res, err := r.Collect(context.Background(), query.Request{Script: twoTables})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 || tables[0].Rows() != 2500 || !tables[0].Truncated || tables[1].Rows() != 0 || !tables[1].Truncated {
		t.Fatalf("tables: %d, %v", len(tables), tables)
	}
	if !res.Truncated || res.Rows != 2500 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "2500 rows") {
		t.Fatalf("result %+v", res)
	}

	// Under the limit nothing is cut, though a table ends exactly on it.
	r.Limits.MaxResultRows = 6000
	tables, res, err = r.Collect(context.Background(), query.Request{Script: twoTables})
	if err != nil || res.Truncated || len(res.Warnings) != 0 || tables[0].Truncated || tables[1].Truncated || res.Rows != 6000 {
		t.Fatalf("at the limit: %v %+v", err, res)
	}
}

func TestResultBytesCut(t *testing.T) {
	eng := newEngine(t, 20000)
	const limit = 100 << 10
	r := &query.Runner{Backend: eng, Limits: query.Limits{MaxRowsPerTable: -1, MaxResultBytes: limit}}
	tables, res, err := r.Collect(context.Background(), query.Request{Script: twoTables})
	if err != nil {
		t.Fatal(err)
	}
	// Table a has 8 + 8 bytes and a path (its 4-byte offset and its
	// characters) a row.
	var rows, bytes int64
	for _, tb := range tables {
		rows += tb.Rows()
		for _, rec := range tb.Records {
			paths := rec.Column(1).(*array.String)
			for i := 0; i < paths.Len(); i++ {
				bytes += 8 + 8 + 4 + int64(len(paths.Value(i)))
			}
		}
	}
	if !res.Truncated || res.Bytes > limit || res.Bytes < limit*9/10 || bytes > res.Bytes || rows != res.Rows || !tables[0].Truncated || !tables[1].Truncated {
		t.Fatalf("%d rows of %d bytes sent, result %+v", rows, bytes, res)
	}
}

func TestMistakesAreLangErrors(t *testing.T) {
	eng := newEngine(t, 10)
	r := &query.Runner{Backend: eng}
	for _, tc := range []struct {
		name string
		req  query.Request
		line int
	}{
		{"unknown column", query.Request{Script: pxl("import px\ndf = px.DataFrame(table='http_events')\npx.display(df.nope, 'x')")}, 3},
		{"argument without a vis spec", query.Request{Script: pxl("import px\npx.display(px.DataFrame(table='http_events'), 'x')"), Args: map[string]string{"a": "1"}}, 0},
		{"no script", query.Request{}, 0},
	} {
		_, _, err := r.Collect(context.Background(), tc.req)
		var le *lang.Error
		if !errors.As(err, &le) || le.Line != tc.line {
			t.Errorf("%s: %v (%T)", tc.name, err, err)
		}
	}
}

func TestGateRefusesPastItsBounds(t *testing.T) {
	g := query.NewGate(2, 100)
	ctx := context.Background()
	_, leave1, err := g.Enter(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Enter(ctx, 60); !errors.Is(err, query.ErrBusy) || !strings.Contains(err.Error(), "total-query-memory") {
		t.Fatalf("over the memory: %v", err)
	}
	_, leave2, err := g.Enter(ctx, 40)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Enter(ctx, 0); !errors.Is(err, query.ErrBusy) || !strings.Contains(err.Error(), "max-concurrent-queries") {
		t.Fatalf("over the count: %v", err)
	}
	leave1()
	leave1() // twice is once
	if n, mem := g.Running(); n != 1 || mem != 40 {
		t.Fatalf("running %d, %d bytes", n, mem)
	}
	leave2()
	if n, mem := g.Running(); n != 0 || mem != 0 {
		t.Fatalf("running %d, %d bytes", n, mem)
	}
}

func TestGateCloseCancelsRunningQueries(t *testing.T) {
	g := query.NewGate(4, -1)
	qctx, leave, err := g.Enter(context.Background(), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer leave()
	g.Close()
	select {
	case <-qctx.Done():
	case <-time.After(time.Second):
		t.Fatal("Close did not cancel the running query")
	}
	if !errors.Is(context.Cause(qctx), query.ErrShutdown) {
		t.Fatalf("cause %v", context.Cause(qctx))
	}
	r := &query.Runner{Backend: newEngine(t, 10), Gate: g}
	if _, _, err := r.Collect(context.Background(), query.Request{Script: twoTables}); !errors.Is(err, query.ErrShutdown) {
		t.Fatalf("after Close: %v", err)
	}
}

// A query the gate admitted and then cancelled says why, whatever
// operator noticed.
func TestShutdownIsTheCause(t *testing.T) {
	eng := newEngine(t, 200000)
	g := query.NewGate(0, 0)
	r := &query.Runner{Backend: eng, Gate: g, Limits: query.Limits{MaxRowsPerTable: -1}}
	out := &slowOutput{started: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		_, err := r.Run(context.Background(), query.Request{Script: twoTables}, out)
		errc <- err
	}()
	<-out.started
	g.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, query.ErrShutdown) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the query did not stop")
	}
}

// slowOutput takes its time over the first batch, so that the query is
// still running when the test closes the gate.
type slowOutput struct {
	query.Collector
	started chan struct{}
	once    bool
}

func (o *slowOutput) Batch(name string, rec arrow.Record) error {
	if !o.once {
		o.once = true
		close(o.started)
		time.Sleep(100 * time.Millisecond)
	}
	return o.Collector.Batch(name, rec)
}
