package oteltest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/export/otel"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/plan"
	"github.com/pxq-dev/pxq/query"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// request is one HTTP request as the tracer records it: from the client
// (role 1) or the server (role 2).
type request struct {
	end           time.Time // time_: the response's end
	latency       time.Duration
	role          int64
	local, remote string
	lport, rport  int64
	path          string
	status        int64
}

// traffic makes n requests of a client (10.0.0.1) to two services on
// 10.0.0.2 (ports 8080 and 9090), each recorded from both ends over
// keep-alive connections, and two requests recorded from one end only.
func traffic(now time.Time, n int) []request {
	var out []request
	for i := 0; i < n; i++ {
		sport := []int64{8080, 9090}[i%2]
		cport := int64(40000 + i%4)
		end := now.Add(-time.Duration(n-i) * 20 * time.Millisecond)
		lat := time.Duration(1+i%7) * 2 * time.Millisecond
		path := []string{"/cart", "/items"}[i/2%2]
		status := []int64{200, 200, 503}[i%3]
		out = append(out,
			request{end: end, latency: lat, role: 1, local: "10.0.0.1", lport: cport, remote: "10.0.0.2", rport: sport, path: path, status: status},
			request{end: end.Add(-100 * time.Microsecond), latency: lat - 300*time.Microsecond, role: 2, local: "10.0.0.2", lport: sport,
				remote: "10.0.0.1", rport: cport, path: path, status: status})
	}
	return append(out,
		request{end: now, latency: time.Millisecond, role: 1, local: "10.0.0.1", lport: 41000, remote: "93.184.216.34", rport: 443, path: "/external", status: 200},
		request{end: now, latency: time.Millisecond, role: 2, local: "10.0.0.2", lport: 8080, remote: "10.9.9.9", rport: 42000, path: "/lonely", status: 200})
}

func newEngine(t *testing.T, reqs []request) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := table.NewWriter(eng.Store().Table("http_events"))
	for _, q := range reqs {
		err := w.AppendNamed(map[string]any{
			"time_": q.end.UnixNano(), "upid": types.UPID(1, 100, 1000),
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
	return eng
}

// The exported frames: every row as a gauge point and a span; per
// service, path and side a summary and two histograms. The groups are
// displayed too, to compare with what the Collector wrote.
const script = `
import px
df = px.DataFrame(table='http_events', start_time='-1h')
df.service = 'svc-' + px.itoa(px.select(df.trace_role == 2, df.local_port, df.remote_port))
df.fast = px.select(df.latency <= 5000000, 1, 0)
df.slow = px.select(df.latency > 5000000, 1, 0)
ep = px.otel.Endpoint(url='{{URL}}', insecure=True)
px.export(df, px.otel.Data(endpoint=ep, resource={'service.name': df.service}, data=[
    px.otel.metric.Gauge(name='http.latency', value=df.latency, attributes={'path': df.req_path, 'role': df.trace_role}),
    px.otel.trace.Span(name=df.req_path, start_time=df.time_ - df.latency, end_time=df.time_,
                       attributes={'http.response.status_code': df.resp_status}),
]))
s = df.groupby(['service', 'req_path', 'trace_role']).agg(n=('latency', px.count), total=('latency', px.sum),
    q=('latency', px.quantiles), fast=('fast', px.sum), slow=('slow', px.sum))
s.p50 = px.pluck_float64(s.q, 'p50')
s.p90 = px.pluck_float64(s.q, 'p90')
attrs = {'path': s.req_path, 'role': s.trace_role}
px.export(s, px.otel.Data(endpoint=ep, resource={'service.name': s.service}, data=[
    px.otel.metric.Summary(name='http.latency.summary', count=s.n, sum=s.total, quantile_values={0.5: s.p50, 0.9: s.p90}, attributes=attrs),
    px.otel.metric.Histogram(name='http.latency.buckets', bounds=[5000000], bucket_counts=[s.fast, s.slow], sum=s.total, attributes=attrs),
    px.otel.metric.Histogram(name='http.latency.quantiles', count=s.n, quantiles=s.q, bounds=[2000000, 8000000], attributes=attrs),
]))
px.display(s, 'groups')
`

func TestCollectorGRPC(t *testing.T) {
	c := startCollector(t)
	testCollector(t, c, "grpc://"+c.GRPC)
}

func TestCollectorHTTP(t *testing.T) {
	c := startCollector(t)
	testCollector(t, c, "http://"+c.HTTP)
}

func testCollector(t *testing.T, c *collector, url string) {
	reqs := traffic(time.Now(), 40)
	eng := newEngine(t, reqs)
	exp := otel.New(otel.Config{Version: "test"})
	defer exp.Close(context.Background())
	runner := &query.Runner{Backend: eng, Exporter: exp}
	src := strings.ReplaceAll(script, "{{URL}}", url)
	tabs, res, err := runner.Collect(context.Background(), query.Request{Script: &scripts.Script{Name: "t", Path: "t.pxl", PXL: []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tabs) != 1 || len(res.Warnings) != 0 {
		t.Fatalf("tables %d, warnings %q", len(tabs), res.Warnings)
	}
	groups := tabs[0]
	ms, ts := c.wait("every point and span", func(p, s int) bool { return p >= len(reqs)+3*int(groups.Rows()) && s >= len(reqs) })

	// Gauges: one point per row, at the row's time, with its latency.
	type key struct {
		svc, path string
		role      int64
		t         int64
	}
	gauges := map[key]int64{}
	summaries := map[key]pmetric.SummaryDataPoint{}
	hists := map[string]pmetric.HistogramDataPoint{}
	points := 0
	eachMetric(ms, func(res pcommon.Resource, m pmetric.Metric) {
		svc := str(res.Attributes(), "service.name")
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			if m.Name() != "http.latency" || m.Unit() != "ns" {
				t.Errorf("gauge %s, unit %q", m.Name(), m.Unit())
			}
			dps := m.Gauge().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				p := dps.At(i)
				gauges[key{svc, str(p.Attributes(), "path"), integer(p.Attributes(), "role"), int64(p.Timestamp())}] = p.IntValue()
				points++
			}
		case pmetric.MetricTypeSummary:
			dps := m.Summary().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				p := dps.At(i)
				summaries[key{svc, str(p.Attributes(), "path"), integer(p.Attributes(), "role"), 0}] = p
			}
		case pmetric.MetricTypeHistogram:
			if m.Histogram().AggregationTemporality() != pmetric.AggregationTemporalityDelta {
				t.Errorf("%s: temporality %v", m.Name(), m.Histogram().AggregationTemporality())
			}
			dps := m.Histogram().DataPoints()
			for i := 0; i < dps.Len(); i++ {
				p := dps.At(i)
				hists[fmt.Sprint(m.Name(), svc, str(p.Attributes(), "path"), integer(p.Attributes(), "role"))] = p
			}
		default:
			t.Errorf("metric %s of type %v", m.Name(), m.Type())
		}
	})
	if points != len(reqs) {
		t.Errorf("%d gauge points for %d rows", points, len(reqs))
	}
	service := func(q request) string {
		if q.role == 2 {
			return fmt.Sprintf("svc-%d", q.lport)
		}
		return fmt.Sprintf("svc-%d", q.rport)
	}
	for _, q := range reqs {
		if v, ok := gauges[key{service(q), q.path, q.role, q.end.UnixNano()}]; !ok || v != int64(q.latency) {
			t.Errorf("gauge of %+v: %d, %v", q, v, ok)
		}
	}

	// Summaries and histograms: the displayed groups.
	for _, rec := range groups.Records {
		for i := 0; i < int(rec.NumRows()); i++ {
			v := func(name string) any { return format.Value(rec.Column(groups.Relation.Index(name)), i) }
			svc, path, role := v("service").(string), v("req_path").(string), v("trace_role").(int64)
			n, total := uint64(v("n").(int64)), float64(v("total").(int64))
			s, ok := summaries[key{svc, path, role, 0}]
			if !ok || s.Count() != n || s.Sum() != total || s.QuantileValues().Len() != 2 ||
				s.QuantileValues().At(0).Quantile() != 0.5 || s.QuantileValues().At(0).Value() != v("p50").(float64) ||
				s.QuantileValues().At(1).Quantile() != 0.9 || s.QuantileValues().At(1).Value() != v("p90").(float64) {
				t.Errorf("summary of %s %s %d: %v", svc, path, role, ok)
			}
			b, ok := hists[fmt.Sprint("http.latency.buckets", svc, path, role)]
			if !ok || b.Count() != n || b.Sum() != total || fmt.Sprint(b.BucketCounts().AsRaw()) != fmt.Sprint([]uint64{uint64(v("fast").(int64)), uint64(v("slow").(int64))}) ||
				fmt.Sprint(b.ExplicitBounds().AsRaw()) != "[5e+06]" {
				t.Errorf("bucket histogram of %s %s %d: %v %v", svc, path, role, ok, b.BucketCounts().AsRaw())
			}
			h, ok := hists[fmt.Sprint("http.latency.quantiles", svc, path, role)]
			var inBuckets uint64
			for _, x := range h.BucketCounts().AsRaw() {
				inBuckets += x
			}
			if !ok || h.Count() != n || inBuckets != n || h.BucketCounts().Len() != 3 {
				t.Errorf("quantile histogram of %s %s %d: %v count %d, buckets %v", svc, path, role, ok, h.Count(), h.BucketCounts().AsRaw())
			}
		}
	}

	// Spans: one per row; the server's row of each request both ends
	// traced is the child of the client's, in its trace.
	type span struct {
		ptrace.Span
		svc string
	}
	var spans []span
	eachSpan(ts, func(res pcommon.Resource, s ptrace.Span) {
		spans = append(spans, span{s, str(res.Attributes(), "service.name")})
	})
	if len(spans) != len(reqs) {
		t.Fatalf("%d spans for %d rows", len(spans), len(reqs))
	}
	byID := map[pcommon.SpanID]span{}
	for _, s := range spans {
		byID[s.SpanID()] = s
	}
	children := 0
	for _, s := range spans {
		switch s.Kind() {
		case ptrace.SpanKindServer:
			if s.ParentSpanID().IsEmpty() {
				if s.Name() != "/lonely" {
					t.Errorf("server span %s %v has no parent", s.Name(), s.StartTimestamp())
				}
				continue
			}
			parent, ok := byID[s.ParentSpanID()]
			if !ok || parent.Kind() != ptrace.SpanKindClient || parent.TraceID() != s.TraceID() || parent.Name() != s.Name() ||
				parent.StartTimestamp() > s.StartTimestamp() || parent.EndTimestamp() < s.EndTimestamp() {
				t.Errorf("server span %s: parent %v", s.Name(), ok)
			}
			children++
		case ptrace.SpanKindClient:
			if !s.ParentSpanID().IsEmpty() {
				t.Errorf("client span %s has a parent", s.Name())
			}
		default:
			t.Errorf("span %s of kind %v", s.Name(), s.Kind())
		}
	}
	if want := (len(reqs) - 2) / 2; children != want {
		t.Errorf("%d server spans have a parent, want %d", children, want)
	}
	// Each span is its row: times, name, service, status.
	type rowKey struct {
		svc, name string
		start     int64
		end       int64
		status    int64
	}
	want, got := map[rowKey]int{}, map[rowKey]int{}
	for _, q := range reqs {
		want[rowKey{service(q), q.path, q.end.Add(-q.latency).UnixNano(), q.end.UnixNano(), q.status}]++
	}
	for _, s := range spans {
		got[rowKey{s.svc, s.Name(), int64(s.StartTimestamp()), int64(s.EndTimestamp()), integer(s.Attributes(), "http.response.status_code")}]++
	}
	if fmt.Sprint(sortedKeys(want)) != fmt.Sprint(sortedKeys(got)) {
		t.Errorf("spans differ from the rows:\nwant %v\n got %v", sortedKeys(want), sortedKeys(got))
	}
}

func sortedKeys[K comparable](m map[K]int) []string {
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%v×%d", k, n))
	}
	sort.Strings(out)
	return out
}

func eachMetric(ms []pmetric.Metrics, f func(pcommon.Resource, pmetric.Metric)) {
	for _, md := range ms {
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			rm := rms.At(i)
			sms := rm.ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				mm := sms.At(j).Metrics()
				for k := 0; k < mm.Len(); k++ {
					f(rm.Resource(), mm.At(k))
				}
			}
		}
	}
}

func eachSpan(ts []ptrace.Traces, f func(pcommon.Resource, ptrace.Span)) {
	for _, td := range ts {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			rs := rss.At(i)
			sss := rs.ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				ss := sss.At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					f(rs.Resource(), ss.At(k))
				}
			}
		}
	}
}

func str(m pcommon.Map, k string) string {
	v, ok := m.Get(k)
	if !ok {
		return ""
	}
	return v.Str()
}

func integer(m pcommon.Map, k string) int64 {
	v, ok := m.Get(k)
	if !ok {
		return -1
	}
	return v.Int()
}

// TestCollectorRestart: while the Collector is down queries end, and
// their exports are retried with backoff (counted) until it is up
// again; then every point arrives, once.
func TestCollectorRestart(t *testing.T) {
	c := startCollector(t)
	c.stop()
	reqs := traffic(time.Now(), 10)
	eng := newEngine(t, reqs)
	exp := otel.New(otel.Config{Endpoint: &plan.OTelEndpoint{URL: "grpc://" + c.GRPC}, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	defer exp.Close(context.Background())
	runner := &query.Runner{Backend: eng, Exporter: exp}
	src := `
import px
df = px.DataFrame(table='http_events', start_time='-1h')
px.export(df, px.otel.Data(resource={'service.name': 'shop'}, data=[px.otel.metric.Gauge(name='latency', value=df.latency)]))
`
	if _, _, err := runner.Collect(context.Background(), query.Request{Script: &scripts.Script{Name: "t", Path: "t.pxl", PXL: []byte(src)}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); exp.Stats().Retries < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no retries: %+v", exp.Stats())
		}
	}
	if st := exp.Stats(); st.Points != 0 || st.Failures < 3 || st.Queued != int64(len(reqs)) {
		t.Fatalf("while down: %+v", st)
	}
	c.start()
	c.wait("the points", func(p, _ int) bool { return p >= len(reqs) })
	for deadline := time.Now().Add(time.Minute); exp.Stats().Points < int64(len(reqs)); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not sent: %+v", exp.Stats())
		}
	}
	n := 0
	for _, m := range c.metrics() {
		n += m.DataPointCount()
	}
	// One request succeeded: the attempts before it were refused.
	if st := exp.Stats(); n != len(reqs) || st.Requests != 1 || st.Dropped != 0 || st.Queued != 0 {
		t.Fatalf("the Collector has %d points of %d; %+v", n, len(reqs), st)
	}
}
