package otel_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/export/otel"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is one HTTP request as the tracer records it.
type request struct {
	time    time.Time // the response's end: time_
	latency time.Duration
	role    int64 // 1 client, 2 server
	local   string
	lport   int64
	remote  string
	rport   int64
	path    string
	status  int64
}

// writeRequests fills http_events with reqs.
func writeRequests(t testing.TB, eng *engine.Engine, reqs []request) {
	t.Helper()
	w := table.NewWriter(eng.Store().Table("http_events"))
	for _, q := range reqs {
		err := w.AppendNamed(map[string]any{
			"time_": q.time.UnixNano(), "upid": types.UPID(1, 100, 1000),
			"remote_addr": q.remote, "remote_port": q.rport, "local_addr": q.local, "local_port": q.lport,
			"trace_role": q.role, "req_method": "GET", "req_path": q.path, "resp_status": q.status,
			"latency": int64(q.latency),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// served makes n server-side requests over two services and two paths.
func served(now time.Time, n int) []request {
	var out []request
	for i := 0; i < n; i++ {
		out = append(out, request{
			time: now.Add(-time.Duration(n-i) * time.Second), latency: time.Duration(i+1) * 3 * time.Millisecond, role: 2,
			local: "10.0.0.2", lport: []int64{8080, 9090}[i%2], remote: "10.0.0.1", rport: int64(40000 + i),
			path: []string{"/a", "/b"}[i/2%2], status: []int64{200, 500}[i%3/2],
		})
	}
	return out
}

func newEngine(t testing.TB) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func pxl(src string) *scripts.Script {
	return &scripts.Script{Name: "test", Path: "test.pxl", PXL: []byte(strings.TrimSpace(src) + "\n")}
}

// exporter returns an exporter and closes it when the test ends.
func exporter(t *testing.T, cfg otel.Config) *otel.Exporter {
	t.Helper()
	e := otel.New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.Close(ctx)
	})
	return e
}

// The script every protocol test runs: the rows as gauges and spans,
// and per service and path a summary and two histograms. {{URL}} is the
// endpoint.
const metricsAndSpans = `
import px
df = px.DataFrame(table='http_events', start_time='-1h')
df.service = 'svc-' + px.itoa(df.local_port)
df.fast = px.select(df.latency <= 10000000, 1, 0)
df.mid = px.select(df.latency > 10000000 and df.latency <= 30000000, 1, 0)
df.slow = px.select(df.latency > 30000000, 1, 0)
ep = px.otel.Endpoint(url='{{URL}}', insecure=True)
px.export(df, px.otel.Data(endpoint=ep, resource={'service.name': df.service, 'deployment.environment': 'test'}, data=[
    px.otel.metric.Gauge(name='http.latency', value=df.latency, attributes={'path': df.req_path, 'status': df.resp_status}),
    px.otel.trace.Span(name=df.req_path, start_time=df.time_ - df.latency, end_time=df.time_,
                       attributes={'http.status_code': df.resp_status}),
]))
s = df.groupby(['service', 'req_path']).agg(n=('latency', px.count), total=('latency', px.sum), q=('latency', px.quantiles),
    lo=('latency', px.min), hi=('latency', px.max), fast=('fast', px.sum), mid=('mid', px.sum), slow=('slow', px.sum))
s.p50 = px.pluck_float64(s.q, 'p50')
s.p99 = px.pluck_float64(s.q, 'p99')
px.export(s, px.otel.Data(endpoint=ep, resource={'service.name': s.service}, data=[
    px.otel.metric.Summary(name='http.latency.summary', count=s.n, sum=s.total, quantile_values={0.99: s.p99, 0.5: s.p50},
                           attributes={'path': s.req_path}),
    px.otel.metric.Histogram(name='http.latency.q', count=s.n, sum=s.total, quantiles=s.q, attributes={'path': s.req_path}),
    px.otel.metric.Histogram(name='http.latency.buckets', bounds=[10000000, 30000000], bucket_counts=[s.fast, s.mid, s.slow],
                             sum=s.total, min=s.lo, max=s.hi, attributes={'path': s.req_path}),
]))
px.display(s, 'stats')
`

func TestExportGRPC(t *testing.T) {
	r := newReceiver()
	r.startGRPC(t, nil)
	testExport(t, r, "grpc://"+r.Addr)
}

func TestExportHTTP(t *testing.T) {
	r := newReceiver()
	r.startHTTP(t)
	testExport(t, r, "http://"+r.Addr)
}

// TestExportPixieEndpoint sends to host:port with insecure=True, as
// Pixie's scripts name their collector: OTLP/gRPC in plaintext.
func TestExportPixieEndpoint(t *testing.T) {
	r := newReceiver()
	r.startGRPC(t, nil)
	testExport(t, r, r.Addr)
}

func testExport(t *testing.T, r *receiver, url string) {
	now := time.Now()
	eng := newEngine(t)
	reqs := served(now, 24)
	writeRequests(t, eng, reqs)
	runner := &query.Runner{Backend: eng, Exporter: exporter(t, otel.Config{})}
	tabs, res, err := runner.Collect(context.Background(), query.Request{Script: pxl(strings.ReplaceAll(metricsAndSpans, "{{URL}}", url))})
	if err != nil {
		t.Fatal(err)
	}
	if len(tabs) != 1 || tabs[0].Name != "stats" {
		t.Fatalf("the export sinks reached the output: %v", tabs)
	}
	stats := tabs[0]
	groups := int(stats.Rows())
	if res.Exported != int64(len(reqs)+groups) || len(res.Warnings) != 0 {
		t.Fatalf("result: %+v", res)
	}
	// A gauge point per row, three points per group; a span per row.
	ms, ss := r.wait(t, "every point and span", func(p, s int) bool { return p == len(reqs)+3*groups && s == len(reqs) })

	gauges := map[string]*metricpb.NumberDataPoint{}
	summaries := map[string]*metricpb.SummaryDataPoint{}
	hists := map[string]*metricpb.HistogramDataPoint{}
	for _, rm := range ms {
		svc := attr(rm.Resource.Attributes, "service.name")
		for _, sm := range rm.ScopeMetrics {
			if sm.Scope.Name != "pxq" {
				t.Errorf("scope %q", sm.Scope.Name)
			}
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case *metricpb.Metric_Gauge:
					if m.Name != "http.latency" || m.Unit != "ns" {
						t.Errorf("gauge %s unit %q", m.Name, m.Unit)
					}
					if env := attr(rm.Resource.Attributes, "deployment.environment"); env != "test" {
						t.Errorf("constant resource attribute: %q", env)
					}
					for _, p := range d.Gauge.DataPoints {
						gauges[fmt.Sprint(svc, attr(p.Attributes, "path"), p.TimeUnixNano)] = p
					}
				case *metricpb.Metric_Summary:
					for _, p := range d.Summary.DataPoints {
						summaries[svc+attr(p.Attributes, "path")] = p
					}
				case *metricpb.Metric_Histogram:
					if d.Histogram.AggregationTemporality != metricpb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA {
						t.Errorf("histogram %s temporality %v", m.Name, d.Histogram.AggregationTemporality)
					}
					for _, p := range d.Histogram.DataPoints {
						hists[m.Name+svc+attr(p.Attributes, "path")] = p
					}
				}
			}
		}
	}
	// Gauges and spans are the rows.
	spans := map[string]*tracepb.Span{}
	for _, rs := range ss {
		svc := attr(rs.Resource.Attributes, "service.name")
		for _, sc := range rs.ScopeSpans {
			for _, s := range sc.Spans {
				spans[fmt.Sprint(svc, s.Name, s.EndTimeUnixNano)] = s
			}
		}
	}
	for _, q := range reqs {
		svc := fmt.Sprintf("svc-%d", q.lport)
		p := gauges[fmt.Sprint(svc, q.path, q.time.UnixNano())]
		if p == nil || p.GetAsInt() != int64(q.latency) || attrInt(p.Attributes, "status") != q.status {
			t.Errorf("gauge of %+v: %v", q, p)
		}
		s := spans[fmt.Sprint(svc, q.path, q.time.UnixNano())]
		if s == nil || s.StartTimeUnixNano != uint64(q.time.Add(-q.latency).UnixNano()) || attrInt(s.Attributes, "http.status_code") != q.status ||
			s.Kind != tracepb.Span_SPAN_KIND_SERVER || len(s.TraceId) != 16 || len(s.SpanId) != 8 || len(s.ParentSpanId) != 0 {
			t.Errorf("span of %+v: %v", q, s)
		}
	}
	// Summaries and histograms are the rows of the displayed groups.
	for _, rec := range stats.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			v := func(name string) any { return format.Value(rec.Column(stats.Relation.Index(name)), i) }
			key := v("service").(string) + v("req_path").(string)
			n, total := v("n").(int64), v("total").(int64)
			s := summaries[key]
			if s == nil || s.Count != uint64(n) || s.Sum != float64(total) || len(s.QuantileValues) != 2 ||
				s.QuantileValues[0].Quantile != 0.5 || s.QuantileValues[0].Value != v("p50").(float64) ||
				s.QuantileValues[1].Quantile != 0.99 || s.QuantileValues[1].Value != v("p99").(float64) {
				t.Errorf("summary of %s: %v", key, s)
			}
			b := hists["http.latency.buckets"+key]
			want := []uint64{uint64(v("fast").(int64)), uint64(v("mid").(int64)), uint64(v("slow").(int64))}
			if b == nil || b.Count != uint64(n) || fmt.Sprint(b.BucketCounts) != fmt.Sprint(want) || fmt.Sprint(b.ExplicitBounds) != "[1e+07 3e+07]" ||
				b.GetSum() != float64(total) || b.GetMin() != float64(v("lo").(int64)) || b.GetMax() != float64(v("hi").(int64)) {
				t.Errorf("bucket histogram of %s: %v, want counts %v", key, b, want)
			}
			q := hists["http.latency.q"+key]
			if q == nil || q.Count != uint64(n) || sum(q.BucketCounts) != uint64(n) || len(q.BucketCounts) != len(q.ExplicitBounds)+1 || q.GetSum() != float64(total) {
				t.Errorf("quantile histogram of %s: %v", key, q)
			}
		}
	}
	// The buckets count the rows.
	fast := 0
	for _, q := range reqs {
		if q.latency <= 10*time.Millisecond {
			fast++
		}
	}
	gotFast := uint64(0)
	for k, h := range hists {
		if strings.HasPrefix(k, "http.latency.buckets") {
			gotFast += h.BucketCounts[0]
		}
	}
	if gotFast != uint64(fast) {
		t.Errorf("first buckets hold %d requests, the rows %d", gotFast, fast)
	}
}

func sum(xs []uint64) (n uint64) {
	for _, x := range xs {
		n += x
	}
	return n
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

func attrInt(kvs []*commonpb.KeyValue, key string) int64 {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.GetIntValue()
		}
	}
	return -1
}

// TestSpanPairs: the client's and the server's row of one request are a
// parent span and its child in one trace; a request traced from one side
// only is a root span of its own trace.
func TestSpanPairs(t *testing.T) {
	r := newReceiver()
	r.startGRPC(t, nil)
	now := time.Now()
	var reqs []request
	const pairs = 30
	// Requests one after another on two keep-alive connections, each
	// seen by the client (10.0.0.1) and by the server (10.0.0.2:8080):
	// the server's view sits inside the client's.
	for i := 0; i < pairs; i++ {
		conn := int64(40000 + i%2)
		end := now.Add(-time.Duration(pairs-i) * 10 * time.Millisecond)
		lat := time.Duration(2+i%5) * time.Millisecond
		reqs = append(reqs,
			request{time: end, latency: lat, role: 1, local: "10.0.0.1", lport: conn, remote: "10.0.0.2", rport: 8080, path: fmt.Sprintf("/p%d", i), status: 200},
			request{time: end.Add(-200 * time.Microsecond), latency: lat - 500*time.Microsecond, role: 2, local: "10.0.0.2", lport: 8080, remote: "10.0.0.1", rport: conn, path: fmt.Sprintf("/p%d", i), status: 200})
	}
	// Seen from one side only: a client calling an untraced server, and
	// a server whose client is not traced.
	reqs = append(reqs,
		request{time: now, latency: time.Millisecond, role: 1, local: "10.0.0.1", lport: 41000, remote: "93.184.216.34", rport: 443, path: "/external", status: 200},
		request{time: now, latency: time.Millisecond, role: 2, local: "10.0.0.2", lport: 8080, remote: "10.0.0.9", rport: 42000, path: "/lonely", status: 200})
	eng := newEngine(t)
	writeRequests(t, eng, reqs)
	runner := &query.Runner{Backend: eng, Exporter: exporter(t, otel.Config{})}
	src := fmt.Sprintf(`
import px
df = px.DataFrame(table='http_events', start_time='-1h')
px.export(df, px.otel.Data(endpoint=px.otel.Endpoint(url='grpc://%s'), resource={'service.name': 'shop'}, data=[
    px.otel.trace.Span(name=df.req_path, start_time=df.time_ - df.latency, end_time=df.time_),
]))
`, r.Addr)
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)}); err != nil {
		t.Fatal(err)
	}
	_, ss := r.wait(t, "the spans", func(_, s int) bool { return s == len(reqs) })
	type side struct{ client, server *tracepb.Span }
	byPath := map[string]*side{}
	for _, rs := range ss {
		for _, sc := range rs.ScopeSpans {
			for _, s := range sc.Spans {
				sd := byPath[s.Name]
				if sd == nil {
					sd = &side{}
					byPath[s.Name] = sd
				}
				switch s.Kind {
				case tracepb.Span_SPAN_KIND_CLIENT:
					sd.client = s
				case tracepb.Span_SPAN_KIND_SERVER:
					sd.server = s
				default:
					t.Errorf("span %s has kind %v", s.Name, s.Kind)
				}
			}
		}
	}
	for i := 0; i < pairs; i++ {
		sd := byPath[fmt.Sprintf("/p%d", i)]
		if sd == nil || sd.client == nil || sd.server == nil {
			t.Fatalf("request %d: %+v", i, sd)
		}
		if hex.EncodeToString(sd.server.TraceId) != hex.EncodeToString(sd.client.TraceId) ||
			hex.EncodeToString(sd.server.ParentSpanId) != hex.EncodeToString(sd.client.SpanId) || len(sd.client.ParentSpanId) != 0 {
			t.Errorf("request %d: client %x/%x, server %x/%x parent %x", i, sd.client.TraceId, sd.client.SpanId,
				sd.server.TraceId, sd.server.SpanId, sd.server.ParentSpanId)
		}
	}
	ext, lonely := byPath["/external"], byPath["/lonely"]
	if ext == nil || ext.client == nil || len(ext.client.ParentSpanId) != 0 || lonely == nil || lonely.server == nil || len(lonely.server.ParentSpanId) != 0 {
		t.Errorf("one-sided requests: %+v %+v", ext, lonely)
	}
	// Every trace but the pairs' has one span.
	traces := map[string]int{}
	for _, sd := range byPath {
		for _, s := range []*tracepb.Span{sd.client, sd.server} {
			if s != nil {
				traces[hex.EncodeToString(s.TraceId)]++
			}
		}
	}
	if len(traces) != pairs+2 {
		t.Errorf("%d traces, want %d", len(traces), pairs+2)
	}
}

// TestSpanIDsFromColumns: trace_id, span_id and parent_span_id columns
// give the IDs; malformed ones are replaced (a parent's left out).
func TestSpanIDsFromColumns(t *testing.T) {
	r := newReceiver()
	r.startHTTP(t)
	now := time.Now()
	eng := newEngine(t)
	writeRequests(t, eng, served(now, 4))
	runner := &query.Runner{Backend: eng, Exporter: exporter(t, otel.Config{})}
	src := fmt.Sprintf(`
import px
df = px.DataFrame(table='http_events', start_time='-1h')
df.tid = px.select(df.latency < 7000000, '0af7651916cd43dd8448eb211c80319c', 'NOT-HEX')
df.sid = px.select(df.latency < 7000000, 'b7ad6b7169203331', '')
df.pid = px.select(df.latency < 7000000, '00f067aa0ba902b7', 'zz')
px.export(df, px.otel.Data(endpoint=px.otel.Endpoint(url='http://%s'), resource={'service.name': 'shop'}, data=[
    px.otel.trace.Span(name='request', start_time=df.time_ - df.latency, end_time=df.time_, trace_id=df.tid, span_id=df.sid,
                       parent_span_id=df.pid, kind=px.otel.trace.SPAN_KIND_INTERNAL),
]))
`, r.Addr)
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)}); err != nil {
		t.Fatal(err)
	}
	_, ss := r.wait(t, "the spans", func(_, s int) bool { return s == 4 })
	given := 0
	for _, rs := range ss {
		for _, sc := range rs.ScopeSpans {
			for _, s := range sc.Spans {
				if s.Kind != tracepb.Span_SPAN_KIND_INTERNAL || s.Name != "request" {
					t.Errorf("span %v", s)
				}
				if hex.EncodeToString(s.TraceId) == "0af7651916cd43dd8448eb211c80319c" {
					given++
					if hex.EncodeToString(s.SpanId) != "b7ad6b7169203331" || hex.EncodeToString(s.ParentSpanId) != "00f067aa0ba902b7" {
						t.Errorf("given IDs: %v", s)
					}
				} else if len(s.TraceId) != 16 || len(s.SpanId) != 8 || len(s.ParentSpanId) != 0 {
					t.Errorf("made IDs: %v", s)
				}
			}
		}
	}
	if given != 2 { // latencies 3 and 6 ms
		t.Errorf("%d spans kept their IDs, want 2", given)
	}
}

// TestCollectorDownThenUp: while the collector is down the query ends at
// once and the export is retried with backoff; once it is up the rows
// arrive, once.
func TestCollectorDownThenUp(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	eng := newEngine(t)
	writeRequests(t, eng, served(time.Now(), 10))
	e := exporter(t, otel.Config{Endpoint: &plan.OTelEndpoint{URL: "grpc://" + addr}, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	runner := &query.Runner{Backend: eng, Exporter: e}
	src := `
import px
df = px.DataFrame(table='http_events', start_time='-1h')
px.export(df, px.otel.Data(resource={'service.name': 'shop'}, data=[px.otel.metric.Gauge(name='latency', value=df.latency)]))
`
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)}); err != nil {
		t.Fatal(err)
	}
	waitStats(t, e, "two failed attempts", func(s otel.Stats) bool { return s.Failures >= 2 && s.Retries >= 2 })
	if s := e.Stats(); s.Points != 0 || s.Queued != 10 || s.LastError == "" {
		t.Fatalf("while down: %+v", s)
	}
	r := newReceiver()
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	r.startGRPC(t, lis)
	r.wait(t, "the retried points", func(p, _ int) bool { return p == 10 })
	waitStats(t, e, "the points sent", func(s otel.Stats) bool { return s.Points == 10 && s.Queued == 0 })
	if s := e.Stats(); s.Dropped != 0 || s.Requests != 1 {
		t.Fatalf("after: %+v", s)
	}
}

// TestSlowCollector: a collector that does not answer holds no query:
// queries end while it holds the first request, attempts time out and
// are counted, and what does not fit in the queue is dropped, counted
// and reported in the query's warnings.
func TestSlowCollector(t *testing.T) {
	r := newReceiver()
	r.hold = make(chan struct{})
	r.entered = make(chan struct{}, 100)
	r.startGRPC(t, nil)
	eng := newEngine(t)
	writeRequests(t, eng, served(time.Now(), 10))
	e := exporter(t, otel.Config{Endpoint: &plan.OTelEndpoint{URL: "grpc://" + r.Addr, Timeout: 50 * time.Millisecond},
		QueueItems: 25, Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, RetryFor: time.Hour})
	runner := &query.Runner{Backend: eng, Exporter: e}
	src := `
import px
df = px.DataFrame(table='http_events', start_time='-1h')
px.export(df, px.otel.Data(resource={'service.name': 'shop'}, data=[px.otel.metric.Gauge(name='latency', value=df.latency)]))
px.display(df[['latency']], 'rows')
`
	// The first query's 10 points are sent, and held by the collector.
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)}); err != nil {
		t.Fatal(err)
	}
	<-r.entered
	// The second query's points fit in the queue (25 points, the held
	// ones included); the third's do not.
	for i := 0; i < 2; i++ {
		tabs, res, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)})
		if err != nil || len(tabs) != 1 || tabs[0].Rows() != 10 {
			t.Fatalf("query %d while the collector holds: %v %v", i, err, tabs)
		}
		if i == 0 && len(res.Warnings) != 0 || i == 1 && (len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "10 points or spans dropped")) {
			t.Fatalf("query %d: warnings %q", i, res.Warnings)
		}
	}
	waitStats(t, e, "timed-out attempts", func(s otel.Stats) bool { return s.Failures >= 2 })
	if s := e.Stats(); s.Dropped != 10 || s.Points != 0 {
		t.Fatalf("stats: %+v", s)
	}
	close(r.hold)
	r.wait(t, "the queued points", func(p, _ int) bool { return p == 20 })
	waitStats(t, e, "every point sent", func(s otel.Stats) bool { return s.Queued == 0 })
}

// TestCollectorRejects: a collector that answers UNAVAILABLE is retried;
// one that says the request is invalid is not.
func TestCollectorRejects(t *testing.T) {
	r := newReceiver()
	r.fail = 3
	r.startGRPC(t, nil)
	eng := newEngine(t)
	writeRequests(t, eng, served(time.Now(), 5))
	e := exporter(t, otel.Config{Endpoint: &plan.OTelEndpoint{URL: "grpc://" + r.Addr}, Backoff: 10 * time.Millisecond})
	runner := &query.Runner{Backend: eng, Exporter: e}
	src := `
import px
df = px.DataFrame(table='http_events', start_time='-1h')
px.export(df, px.otel.Data(resource={'service.name': 'shop'}, data=[px.otel.metric.Gauge(name='latency', value=df.latency)]))
`
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)}); err != nil {
		t.Fatal(err)
	}
	r.wait(t, "the points", func(p, _ int) bool { return p == 5 })
	waitStats(t, e, "the stats", func(s otel.Stats) bool { return s.Points == 5 })
	if s := e.Stats(); s.Failures != 3 || s.Retries != 3 || s.Dropped != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func waitStats(t *testing.T, e *otel.Exporter, what string, cond func(otel.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond(e.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %+v", what, e.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOpenErrors: an export that cannot be sent fails before the query
// runs, at the px.export call.
func TestOpenErrors(t *testing.T) {
	eng := newEngine(t)
	for _, c := range []struct{ src, want string }{
		{`px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=[px.otel.metric.Gauge(name='x', value=df.latency)]))`,
			"test.pxl:3:10: px.export: no collector to send to"},
		{`px.export(df, px.otel.Data(endpoint=px.otel.Endpoint(url='ftp://x:1'), resource={'service.name': 'a'}, data=[px.otel.metric.Gauge(name='x', value=df.latency)]))`,
			`scheme "ftp" is none of`},
		{`px.export(df, px.otel.Data(endpoint=px.otel.Endpoint(url='http://x'), resource={'service.name': 'a'}, data=[px.otel.metric.Gauge(name='x', value=df.latency)]))`,
			`names no port`},
	} {
		runner := &query.Runner{Backend: eng, Exporter: exporter(t, otel.Config{})}
		_, _, err := runner.Collect(context.Background(), query.Request{Script: pxl("import px\ndf = px.DataFrame(table='http_events')\n" + c.src)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.src, err, c.want)
		}
	}
}

// TestServiceArrays: a service column holding a JSON list of services
// (a pod behind several) exports a row once per service.
func TestServiceArrays(t *testing.T) {
	r := newReceiver()
	r.startGRPC(t, nil)
	eng := newEngine(t)
	writeRequests(t, eng, served(time.Now(), 2))
	runner := &query.Runner{Backend: eng, Exporter: exporter(t, otel.Config{})}
	src := fmt.Sprintf(`
import px
df = px.DataFrame(table='http_events', start_time='-1h')
df.service = px.Service('["ns/a","ns/b"]')
px.export(df, px.otel.Data(endpoint=px.otel.Endpoint(url='%s', insecure=True), resource={'service.name': df.service},
    data=[px.otel.metric.Gauge(name='latency', value=df.latency)]))
`, r.Addr)
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: pxl(src)}); err != nil {
		t.Fatal(err)
	}
	ms, _ := r.wait(t, "the points", func(p, _ int) bool { return p == 4 })
	var svcs []string
	for _, rm := range ms {
		svcs = append(svcs, attr(rm.Resource.Attributes, "service.name"))
	}
	sort.Strings(svcs)
	if strings.Join(svcs, " ") != "ns/a ns/b" {
		t.Errorf("services %v", svcs)
	}
}
