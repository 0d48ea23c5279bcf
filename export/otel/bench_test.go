package otel_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/export/otel"
	"github.com/pxq-dev/pxq/query"
)

// BenchmarkExportCost measures what exporting adds to a query: the same
// 20,000 rows displayed (the output keeps them) or exported as a gauge
// and a span each (converted and queued; a receiver on 127.0.0.1 takes
// them meanwhile). The two queries alternate within each iteration; the
// benchmark reports each one's median time and their ratio.
func BenchmarkExportCost(b *testing.B) {
	r := newReceiver()
	r.startGRPC(b, nil)
	eng := newEngine(b)
	now := time.Now()
	var reqs []request
	for i := 0; i < 20000; i++ {
		reqs = append(reqs, request{time: now.Add(-time.Duration(i) * time.Millisecond), latency: time.Duration(i%100+1) * time.Millisecond,
			role: 2, local: "10.0.0.2", lport: 8080, remote: "10.0.0.1", rport: int64(40000 + i%500), path: fmt.Sprintf("/p%d", i%20), status: 200})
	}
	writeRequests(b, eng, reqs)
	e := otel.New(otel.Config{QueueItems: 10_000_000})
	defer e.Close(context.Background())
	runner := &query.Runner{Backend: eng, Exporter: e, Limits: query.Limits{MaxRowsPerTable: -1}}
	frame := "import px\ndf = px.DataFrame(table='http_events', start_time='-1h')\ndf.service = 'svc-' + px.itoa(df.local_port)\n"
	display := pxl(frame + "px.display(df[['service', 'req_path', 'latency', 'time_', 'resp_status']], 'rows')\n")
	export := pxl(frame + fmt.Sprintf(`px.export(df, px.otel.Data(endpoint=px.otel.Endpoint(url='grpc://%s'), resource={'service.name': df.service}, data=[
    px.otel.metric.Gauge(name='http.latency', value=df.latency, attributes={'path': df.req_path}),
    px.otel.trace.Span(name=df.req_path, start_time=df.time_ - df.latency, end_time=df.time_, attributes={'status': df.resp_status}),
]))
`, r.Addr))
	run := func(sc *query.Request) time.Duration {
		start := time.Now()
		if _, _, err := runner.Collect(context.Background(), *sc); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var ds, xs []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			ds = append(ds, float64(run(&query.Request{Script: display})))
			xs = append(xs, float64(run(&query.Request{Script: export})))
		} else {
			xs = append(xs, float64(run(&query.Request{Script: export})))
			ds = append(ds, float64(run(&query.Request{Script: display})))
		}
	}
	b.StopTimer()
	d, x := median(ds), median(xs)
	b.ReportMetric(d/1e6, "display-ms")
	b.ReportMetric(x/1e6, "export-ms")
	b.ReportMetric(x/d, "export/display")
	b.ReportMetric(float64(len(reqs))/(x/1e9), "exported-rows/s")
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
