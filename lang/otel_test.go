package lang

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/plan"
)

func exportSinks(p *plan.Plan) []*plan.Sink {
	var out []*plan.Sink
	for _, s := range p.Sinks {
		if s.OTel != nil {
			out = append(out, s)
		}
	}
	return out
}

// TestExportMapping: px.export ends the frame in an export sink whose
// input holds exactly the columns the mapping reads, expressions
// computed into columns of their own.
func TestExportMapping(t *testing.T) {
	p, err := compile(t, `
import px
df = px.DataFrame(table='http_events')
df.service = 'svc'
px.export(df, px.otel.Data(
    endpoint=px.otel.Endpoint(url='otel:4317', headers={'k': 'v'}, insecure=True, timeout=3),
    resource={'service.name': df.service, 'env': 'prod'},
    data=[
        px.otel.metric.Gauge(name='http.latency', value=df.latency, attributes={'path': df.req_path}),
        px.otel.trace.Span(name=df.req_method + ' ' + df.req_path, start_time=df.time_ - df.latency, end_time=df.time_),
    ]))
s = df.groupby('service').agg(n=('latency', px.count), q=('latency', px.quantiles), total=('latency', px.sum))
s.p50 = px.pluck_float64(s.q, 'p50')
px.export(s, px.otel.Data(resource={'service.name': s.service}, data=[
    px.otel.metric.Summary(name='s', count=s.n, sum=s.total, quantile_values={0.99: px.pluck_float64(s.q, 'p99'), 0.5: s.p50}),
    px.otel.metric.Histogram(name='h', count=s.n, quantiles=s.q, bounds=[1, 2.5]),
    px.otel.metric.Histogram(name='b', bounds=[10], bucket_counts=[s.n, s.n], unit='{request}'),
]))
px.display(s, 'stats')
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := exportSinks(p)
	if len(p.Sinks) != 3 || len(ex) != 2 || ex[0].Name != "otel_export" || ex[1].Name != "otel_export_1" {
		t.Fatalf("sinks: %s", plan.Format(p))
	}
	a := ex[0].OTel
	if e := a.Endpoint; e == nil || e.URL != "otel:4317" || e.Headers["k"] != "v" || !e.Insecure || e.Timeout != 3*time.Second {
		t.Errorf("endpoint %+v", a.Endpoint)
	}
	if fmt.Sprint(a.Resource) != "[{service.name service } {env  prod}]" {
		t.Errorf("resource %v", a.Resource)
	}
	g := a.Metrics[0]
	if g.Kind != plan.OTelGauge || g.Value != "latency" || g.Time != "time_" || g.Unit != "ns" || fmt.Sprint(g.Attributes) != "[{path req_path }]" {
		t.Errorf("gauge %+v", g)
	}
	sp := a.Spans[0]
	if sp.NameColumn == "" || sp.End != "time_" || sp.Role != "trace_role" || !sp.KindFromRole || sp.Conn == nil ||
		sp.Conn.LocalPort != "local_port" || sp.Conn.RemoteAddr != "remote_addr" {
		t.Errorf("span %+v", sp)
	}
	rel := ex[0].Relation()
	names, cols := rel.Names(), a.Columns()
	sort.Strings(names)
	sort.Strings(cols)
	if got, want := strings.Join(names, " "), strings.Join(cols, " "); got != want {
		t.Errorf("the sink's input has %s, the mapping reads %s", got, want)
	}
	for _, c := range []string{sp.NameColumn, sp.Start} {
		if !strings.HasPrefix(c, "__otel_") {
			t.Errorf("computed column %q", c)
		}
	}

	b := ex[1].OTel
	if b.Endpoint != nil || len(b.Metrics) != 3 || len(b.Spans) != 0 {
		t.Fatalf("second export: %s", b)
	}
	sum := b.Metrics[0]
	// Quantiles come out in increasing order; no time_ in the frame.
	if sum.Kind != plan.OTelSummary || sum.Count != "n" || sum.Sum != "total" || sum.Time != "" || len(sum.Quantiles) != 2 ||
		sum.Quantiles[0].Quantile != 0.5 || sum.Quantiles[0].Column != "p50" || sum.Quantiles[1].Quantile != 0.99 {
		t.Errorf("summary %+v", sum)
	}
	if h := b.Metrics[1]; h.Kind != plan.OTelHistogram || h.FromQuantiles != "q" || fmt.Sprint(h.Bounds) != "[1 2.5]" || h.Count != "n" {
		t.Errorf("quantile histogram %+v", h)
	}
	if h := b.Metrics[2]; h.FromQuantiles != "" || fmt.Sprint(h.BucketCounts) != "[n n]" || h.Unit != "{request}" {
		t.Errorf("bucket histogram %+v", h)
	}
}

// TestExportSpanKinds: an explicit kind wins over trace_role; IDs given
// turn pairing off; a frame without connection columns cannot pair.
func TestExportSpanKinds(t *testing.T) {
	p, err := compile(t, `
import px
df = px.DataFrame(table='http_events')
px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=[
    px.otel.trace.Span(name='x', start_time=df.time_, end_time=df.time_, kind=px.otel.trace.SPAN_KIND_CONSUMER),
    px.otel.trace.Span(name='y', start_time=df.time_, end_time=df.time_, trace_id=df.req_path),
]))
g = df.groupby('req_path').agg(t=('time_', px.max))
px.export(g, px.otel.Data(resource={'service.name': 'a'}, data=[px.otel.trace.Span(name='z', start_time=g.t, end_time=g.t)]))
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := exportSinks(p)
	x, y, z := ex[0].OTel.Spans[0], ex[0].OTel.Spans[1], ex[1].OTel.Spans[0]
	if x.Kind != 5 || x.KindFromRole || x.Conn == nil {
		t.Errorf("explicit kind: %+v", x)
	}
	if y.Kind != 2 || !y.KindFromRole || y.Conn != nil || y.TraceID != "req_path" {
		t.Errorf("given IDs: %+v", y)
	}
	if z.Kind != 2 || z.KindFromRole || z.Role != "" || z.Conn != nil {
		t.Errorf("no request columns: %+v", z)
	}
}

func TestExportErrors(t *testing.T) {
	pre := "import px\ndf = px.DataFrame(table='http_events')\n"
	gauge := "px.otel.metric.Gauge(name='m', value=df.latency)"
	for _, c := range []struct{ src, want string }{
		{"px.export(df, px.otel.Data(resource={'env': 'x'}, data=[" + gauge + "]))", "3:27: px.otel.Data: resource must name 'service.name'"},
		{"px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=[]))", "px.otel.Data: data is empty"},
		{"px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=[df]))", "data holds a DataFrame"},
		{"px.export(df, px.otel.Data(resource={'service.name': 'a'}, data=" + gauge + "))", "data must be a list"},
		{"px.export(df, {'service.name': 'a'})", "export_spec must be a px.otel.Data"},
		{"px.otel.metric.Gauge(name='1bad', value=df.latency)", "metric name \"1bad\" is invalid"},
		{"px.otel.metric.Gauge(name='m', value=df.req_path)", "value must be [INT64 FLOAT64], got STRING"},
		{"px.otel.metric.Gauge(name='m', value=df.latency, attributes={'u': df.upid})", "px.upid_to_string"},
		{"px.otel.metric.Summary(name='m', count=df.latency, sum=df.latency, quantile_values={})", "quantile_values is empty"},
		{"px.otel.metric.Summary(name='m', count=df.latency, sum=df.latency, quantile_values={2: df.latency})", "between 0 and 1"},
		{"px.otel.metric.Histogram(name='m', count=df.latency)", "give quantiles=df.col"},
		{"px.otel.metric.Histogram(name='m', quantiles=df.req_path)", "needs count"},
		{"px.otel.metric.Histogram(name='m', bounds=[1, 2], bucket_counts=[df.latency, df.latency])", "bucket_counts has 2 columns; with 2 bounds it needs 3"},
		{"px.otel.metric.Histogram(name='m', bounds=[2, 1], bucket_counts=[df.latency])", "bounds: must increase"},
		{"px.otel.trace.Span(name='', start_time=df.time_, end_time=df.time_)", "name is empty"},
		{"px.otel.trace.Span(name='s', start_time=df.req_path, end_time=df.time_)", "start_time must be [TIME64NS INT64]"},
		{"px.otel.trace.Span(name='s', start_time=df.time_, end_time=df.time_, kind=9)", "kind must be one of px.otel.trace.SPAN_KIND_*"},
		{"px.otel.Endpoint(url='')", "url is empty"},
		{"px.otel.Endpoint(url='x:1', headers={'a': 1})", "headers map strings to strings"},
		{"px.otel.metric.Counter(name='m')", "px.otel.metric has no attribute \"Counter\""},
		// The frame exported must hold the columns the spec reads.
		{"g = df.groupby('req_path').agg(n=('latency', px.count))\npx.export(g, px.otel.Data(resource={'service.name': 'a'}, data=[" + gauge + "]))",
			"4:10: px.export: metric m: column \"latency\" not found"},
	} {
		_, err := compile(t, pre+c.src+"\n", Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n  got %v\n want %q", c.src, err, c.want)
		}
	}
}

// TestPluginWindow: px.plugin.start_time and end_time are the request's
// window, by default DefaultPluginWindow up to now.
func TestPluginWindow(t *testing.T) {
	src := "import px\npx.display(px.DataFrame(table='http_events', start_time=px.plugin.start_time, end_time=px.plugin.end_time), 'x')\n"
	p, err := compile(t, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	scan := p.Sinks[0].Input.(*plan.Scan)
	if scan.Start != testNow.Add(-DefaultPluginWindow).UnixNano() || scan.End != testNow.UnixNano() {
		t.Errorf("default window [%d, %d)", scan.Start, scan.End)
	}
	from, to := testNow.Add(-time.Hour), testNow.Add(-time.Minute)
	p, err = compile(t, src, Options{PluginStart: from, PluginEnd: to})
	if err != nil {
		t.Fatal(err)
	}
	if scan := p.Sinks[0].Input.(*plan.Scan); scan.Start != from.UnixNano() || scan.End != to.UnixNano() {
		t.Errorf("window [%d, %d)", scan.Start, scan.End)
	}
}

// TestExportSource: the displays a generated export script follows, and
// the edits that make scans read px.plugin's window.
func TestExportSource(t *testing.T) {
	src := `import px
def f(start_time: str):
    return px.DataFrame(table='conn_stats', start_time=start_time)
df = px.DataFrame('http_events', None, '-5m')
t = px.DataFrame(table='dns_events',)
px.display(df[['time_', 'latency']],
           'lat')   # the name
px.debug(t, 'dbg')
px.display(out=t, name='dns')
`
	displays, edits, err := ExportSource("s.pxl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(displays) != fmt.Sprintf("[{lat df[['time_', 'latency']] %d} {dns t %d}]",
		strings.Index(src, "px.debug"), len(src)) {
		t.Errorf("displays %v", displays)
	}
	var out strings.Builder
	at := 0
	for _, e := range edits {
		out.WriteString(src[at:e.Off] + "«" + e.Text + "»")
		at = e.End
	}
	out.WriteString(src[at:])
	for _, want := range []string{
		"start_time=«px.plugin.start_time»«, end_time=px.plugin.end_time»)",
		"px.DataFrame('http_events', None, «px.plugin.start_time»«, end_time=px.plugin.end_time»)",
		"px.DataFrame(table='dns_events',« start_time=px.plugin.start_time, end_time=px.plugin.end_time»)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("edits:\n%s\nlack %s", out.String(), want)
		}
	}
	if _, _, err := ExportSource("s.pxl", []byte("import px\npx.display(px.DataFrame(table='x'), name)\n")); err == nil ||
		!strings.Contains(err.Error(), "s.pxl:2:11: px.display: the table's name must be a string literal") {
		t.Errorf("a name that is not a literal: %v", err)
	}
}
