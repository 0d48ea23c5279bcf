package otel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/lang"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// times is a query.Exporter that keeps the time_ of every row exported.
type times struct {
	mu   sync.Mutex
	seen map[int64]int
	rows int64
}

func (x *times) Open(query.ExportSink) (query.ExportWriter, error) { return x, nil }
func (x *times) Close(error) []string                              { return nil }
func (x *times) Batch(rec arrow.Record) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.seen == nil {
		x.seen = map[int64]int{}
	}
	x.rows += rec.NumRows()
	for i, f := range rec.Schema().Fields() {
		if f.Name == "time_" {
			for _, t := range rec.Column(i).(*array.Timestamp).TimestampValues() {
				x.seen[int64(t)]++
			}
		}
	}
	return nil
}

// flaky fails the listing of tables while fail is set.
type flaky struct {
	*engine.Engine
	fail bool
}

func (f *flaky) Tables(ctx context.Context) (lang.Catalog, []string, error) {
	if f.fail {
		return nil, nil, errors.New("down for the test")
	}
	return f.Engine.Tables(ctx)
}

// fill writes one http_events row a second for n seconds from t0.
func fill(t *testing.T, eng *engine.Engine, t0 time.Time, n int) {
	t.Helper()
	w := table.NewWriter(eng.Store().Table("http_events"))
	rel := tables.All["http_events"].Relation
	for i := 0; i < n; i++ {
		row := make([]any, len(rel))
		for c, col := range rel {
			switch col.Type {
			case types.Time64NS:
				row[c] = t0.Add(time.Duration(i) * time.Second).UnixNano()
			case types.String:
				row[c] = "x"
			case types.Boolean:
				row[c] = false
			case types.Float64:
				row[c] = 0.0
			case types.UInt128:
				row[c] = types.UPID(1, 1, 1)
			default:
				row[c] = int64(i + 1)
			}
		}
		if err := w.AppendRow(row...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestScheduleWindows: runs cover the time from where the last good run
// ended to the run's clock less Lag; a failed run leaves its window to
// the next, so every row is exported once.
func TestScheduleWindows(t *testing.T) {
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	fill(t, eng, t0, 60)
	rec := &times{}
	be := &flaky{Engine: eng}
	sc := &scripts.Script{Name: "x", Path: "x.pxl", PXL: []byte(`import px
df = px.DataFrame(table='http_events', start_time=px.plugin.start_time, end_time=px.plugin.end_time)
px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=[px.otel.metric.Gauge(name='l', value=df.latency)]))
`)}
	s := &Schedule{Runner: &query.Runner{Backend: be, Exporter: rec}, Lag: 2 * time.Second}
	every := 10 * time.Second
	// The first window is the interval before the first run (less Lag).
	st := &scheduled{sc: sc, from: t0.Add(12 * time.Second).Add(-s.Lag - every)}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for i, clock := 0, t0.Add(12*time.Second); clock.Before(t0.Add(70 * time.Second)); i, clock = i+1, clock.Add(7*time.Second) {
		be.fail = i == 3 || i == 4
		s.runOnce(ctx, st, clock, every, log)
		if be.fail && st.lastErr == "" {
			t.Fatalf("run %d failed silently", i)
		}
	}
	s.runOnce(ctx, st, t0.Add(70*time.Second), every, log)
	// Rows from t0 on (the first window started at t0) up to 68 s.
	var missing, twice []string
	for i := 0; i < 60; i++ {
		switch n := rec.seen[t0.Add(time.Duration(i)*time.Second).UnixNano()]; {
		case n == 0:
			missing = append(missing, fmt.Sprint(i))
		case n > 1:
			twice = append(twice, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 || len(twice) > 0 || len(rec.seen) != 60 {
		t.Fatalf("rows missing %v, exported twice %v (%d rows)", missing, twice, len(rec.seen))
	}
	// A clock that does not move runs nothing more.
	before := len(rec.seen)
	s.runOnce(ctx, st, t0.Add(70*time.Second), every, log)
	if len(rec.seen) != before {
		t.Fatal("a run on a stopped clock exported rows")
	}
}

// TestScheduleBacklog: after runs failed for longer than maxBacklog
// intervals, the window starts maxBacklog intervals back.
func TestScheduleBacklog(t *testing.T) {
	every := time.Second
	st := &scheduled{sc: &scripts.Script{Name: "x"}, from: time.Unix(0, 0)}
	s := &Schedule{Runner: &query.Runner{Backend: &flaky{fail: true}}}
	now := time.Unix(1000, 0)
	s.runOnce(context.Background(), st, now, every, slog.New(slog.DiscardHandler))
	if want := now.Add(-maxBacklog * every); !st.from.Equal(want) {
		t.Errorf("window starts at %v, want %v", st.from, want)
	}
}

// TestScheduleGenerates: a script that exports nothing runs as the
// export script Generate makes of it; here a library script whose
// tables come from its vis spec.
func TestScheduleGenerates(t *testing.T) {
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	fill(t, eng, now.Add(-30*time.Second), 20)
	sc, err := scripts.NewLibrary().Get("px/http_request_stats")
	if err != nil {
		t.Fatal(err)
	}
	rec := &times{}
	s := &Schedule{Runner: &query.Runner{Backend: eng, Exporter: rec}}
	st := &scheduled{sc: sc, from: now.Add(-time.Minute)}
	s.runOnce(context.Background(), st, now, time.Minute, slog.New(slog.DiscardHandler))
	if st.lastErr != "" || st.run == st.sc || !strings.Contains(string(st.run.PXL), "px.export(") {
		t.Fatalf("err %q, script:\n%s", st.lastErr, st.run.PXL)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Both of its tables (one row each: one row was served) were
	// exported.
	if rec.rows != 2 {
		t.Errorf("%d rows exported, want 2", rec.rows)
	}
}

// TestQuantileBuckets: counts spread by the quantiles' distribution, in
// whole numbers that add up; without bounds the quantiles are the
// bounds and the counts their shares.
func TestQuantileBuckets(t *testing.T) {
	qs, ok := parseQuantiles(`{"p01":1,"p10":10,"p25":25,"p50":50,"p75":75,"p90":90,"p99":99}`)
	if !ok || len(qs) != 7 || qs[0].Q != 0.01 || qs[6].Q != 0.99 {
		t.Fatalf("parsed %v %v", qs, ok)
	}
	bounds, counts := quantileBuckets(qs, nil, 1000)
	if fmt.Sprint(bounds) != "[1 10 25 50 75 90 99]" || fmt.Sprint(counts) != "[10 90 150 250 250 150 90 10]" {
		t.Errorf("own bounds: %v %v", bounds, counts)
	}
	// Uniform on [0, 100]: a bound at 50 halves the values, at 40 puts
	// four tenths below.
	_, counts = quantileBuckets(qs, []float64{40, 50}, 1000)
	if fmt.Sprint(counts) != "[400 100 500]" {
		t.Errorf("given bounds: %v", counts)
	}
	// Rounding keeps the total.
	_, counts = quantileBuckets(qs, []float64{33, 66}, 7)
	total := uint64(0)
	for _, c := range counts {
		total += c
	}
	if total != 7 {
		t.Errorf("counts %v add up to %d", counts, total)
	}
	if s := estimateSum(qs, 100); s < 4900 || s > 5100 {
		t.Errorf("estimated sum %g of 100 values uniform on [0, 100]", s)
	}
	for _, bad := range []string{``, `{}`, `{"x": 1}`, `{"p5a": 1}`, `[1]`} {
		if _, ok := parseQuantiles(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	sorted := sort.SliceIsSorted(qs, func(i, j int) bool { return qs[i].Q < qs[j].Q })
	if !sorted {
		t.Error("quantiles out of order")
	}
}

// TestGenerateLibrary: every library script that displays a table with
// a number becomes an export script (Generate checks that it compiles),
// which exports; one whose tables have no number says so.
func TestGenerateLibrary(t *testing.T) {
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := scripts.NewLibrary().List()
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range all {
		text, err := Generate(sc, eng.Catalog(), time.Now())
		if errors.Is(err, errNoMetric) {
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", sc.Name, err)
			continue
		}
		p, err := query.CompileLogical(query.Request{Script: &scripts.Script{Name: sc.Name, Path: sc.Path, PXL: []byte(text)}, Now: time.Now()},
			eng.Catalog(), query.Limits{})
		if err != nil || !exportsAnything(p) {
			t.Errorf("%s: %v, exports: %v", sc.Name, err, p != nil && exportsAnything(p))
		}
	}
}
