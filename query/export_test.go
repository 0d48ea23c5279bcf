package query_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/broker"
	"github.com/pxq-dev/pxq/broker/brokertest"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
)

// recorder is an Exporter that keeps what it is handed.
type recorder struct {
	mu     sync.Mutex
	opened []query.ExportSink
	rows   map[string]int64
	closed map[string]error
	fail   error
}

func (r *recorder) Open(s query.ExportSink) (query.ExportWriter, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened = append(r.opened, s)
	if r.rows == nil {
		r.rows, r.closed = map[string]int64{}, map[string]error{}
	}
	return &recWriter{r: r, name: s.Sink.Name}, nil
}

type recWriter struct {
	r    *recorder
	name string
}

func (w *recWriter) Batch(rec arrow.Record) error {
	w.r.mu.Lock()
	w.r.rows[w.name] += rec.NumRows()
	w.r.mu.Unlock()
	return nil
}

func (w *recWriter) Close(err error) []string {
	w.r.mu.Lock()
	w.r.closed[w.name] = err
	w.r.mu.Unlock()
	return nil
}

var exportsAndDisplays = pxl(`
import px
df = px.DataFrame(table='http_events', start_time='-10m')
px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=[px.otel.metric.Gauge(name='l', value=df.latency)]))
s = df.groupby('req_path').agg(n=('latency', px.count))
px.export(s, px.otel.Data(resource={'service.name': s.req_path}, data=[px.otel.metric.Gauge(name='n', value=s.n)]))
px.display(df[['latency']], 'shown')
`)

// TestExportRouting: the rows of export sinks go to the Exporter, all of
// them (no per-table cap, no result limit), and never to the output.
func TestExportRouting(t *testing.T) {
	eng := newEngine(t, 3000)
	rec := &recorder{}
	r := &query.Runner{Backend: eng, Exporter: rec, Limits: query.Limits{MaxRowsPerTable: 1000, MaxResultRows: 500}}
	now := time.Now()
	from, to := now.Add(-10*time.Minute), now
	tables, res, err := r.Collect(context.Background(), query.Request{Script: exportsAndDisplays, Now: now, PluginStart: from, PluginEnd: to})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Name != "shown" || tables[0].Rows() != 500 || !res.Truncated {
		t.Fatalf("output: %v, %+v", tables, res)
	}
	groups := int64(len(brokertest.Paths))
	if rec.rows["otel_export"] != 3000 || rec.rows["otel_export_1"] != groups || res.Exported != 3000+groups {
		t.Fatalf("exported %v, result %d", rec.rows, res.Exported)
	}
	if len(rec.opened) != 2 || !rec.opened[0].Start.Equal(from) || !rec.opened[0].End.Equal(to) || rec.opened[0].Script != "test" {
		t.Errorf("opened %+v", rec.opened)
	}
	for name, err := range rec.closed {
		if err != nil {
			t.Errorf("%s closed with %v", name, err)
		}
	}
}

// TestExportDistributed: on a broker the export sinks run in the merge
// fragment, with the rows of every agent.
func TestExportDistributed(t *testing.T) {
	now := time.Now()
	var addrs []string
	for i := uint32(1); i <= 2; i++ {
		eng := brokertest.NewEngine(t, brokertest.Meta{}, i)
		brokertest.FillHTTPEvents(t, []*engine.Engine{eng}, i, int64(i), 1000, now)
		addrs = append(addrs, brokertest.StartAgent(t, eng, i).Addr)
	}
	b, err := broker.New(broker.Config{Agents: addrs, Meta: brokertest.Meta{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rec := &recorder{}
	r := &query.Runner{Backend: b, Exporter: rec}
	if _, _, err := r.Collect(context.Background(), query.Request{Script: exportsAndDisplays}); err != nil {
		t.Fatal(err)
	}
	if rec.rows["otel_export"] != 2000 || rec.rows["otel_export_1"] != int64(len(brokertest.Paths)) {
		t.Fatalf("exported %v", rec.rows)
	}
}

// TestExportWithoutExporter: with no Exporter the export's rows are
// dropped, with one warning, and the other tables still show.
func TestExportWithoutExporter(t *testing.T) {
	r := &query.Runner{Backend: newEngine(t, 100)}
	tables, res, err := r.Collect(context.Background(), query.Request{Script: exportsAndDisplays})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Rows() != 100 || res.Exported != 0 ||
		len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "px.export: not sent") {
		t.Fatalf("tables %v, result %+v", tables, res)
	}
}

// TestExportOpenFails: an export that cannot be sent is the script's
// mistake, at its px.export call, before anything runs.
func TestExportOpenFails(t *testing.T) {
	r := &query.Runner{Backend: newEngine(t, 10), Exporter: &recorder{fail: errors.New("no collector")}}
	var c query.Collector
	_, err := r.Run(context.Background(), query.Request{Script: exportsAndDisplays}, &c)
	var le *lang.Error
	if !errors.As(err, &le) || le.Line != 3 || le.Col != 10 || le.Msg != "px.export: no collector" || len(c.Tables) != 0 {
		t.Fatalf("%v (%T), tables %v", err, err, c.Tables)
	}
}
