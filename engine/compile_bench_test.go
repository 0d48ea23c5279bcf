package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/scripts"
)

// script100 is a 100-line PxL script of the usual shape: scans, filters,
// computed columns, aggregates, joins and outputs.
func script100() string {
	var b strings.Builder
	b.WriteString("import px\n\n")
	lines := 2
	for i := 0; lines < 96; i++ {
		fmt.Fprintf(&b, "df%d = px.DataFrame(table='http_events', start_time='-5m')\n", i)
		fmt.Fprintf(&b, "df%d = df%d[df%d.resp_status >= 400 or px.contains(df%d.req_path, '/api/%d')]\n", i, i, i, i, i)
		fmt.Fprintf(&b, "df%d.latency_ms = df%d.latency / 1000000\n", i, i)
		fmt.Fprintf(&b, "df%d.svc = df%d.ctx['service']\n", i, i)
		fmt.Fprintf(&b, "df%d.failure = df%d.resp_status >= 500\n", i, i)
		fmt.Fprintf(&b, "s%d = df%d.groupby(['svc', 'req_path']).agg(n=('latency', px.count), err=('failure', px.mean), q=('latency', px.quantiles))\n", i, i)
		fmt.Fprintf(&b, "s%d.p99 = px.pluck_float64(s%d.q, 'p99')\n", i, i)
		fmt.Fprintf(&b, "c%d = px.DataFrame(table='conn_stats', start_time='-5m').groupby('upid').agg(sent=('bytes_sent', px.max))\n", i)
		fmt.Fprintf(&b, "j%d = df%d.merge(c%d, how='left', left_on='upid', right_on='upid', suffixes=['', '_c'])\n", i, i, i)
		fmt.Fprintf(&b, "px.display(s%d.head(100), 'stats%d')\n", i, i)
		fmt.Fprintf(&b, "px.display(j%d[['time_', 'svc', 'latency_ms', 'sent']], 'joined%d')\n\n", i, i)
		lines += 12
	}
	return b.String()
}

// BenchmarkCompile100Lines measures parse + compile + optimize of a
// 100-line script (the goal is under 5 ms).
func BenchmarkCompile100Lines(b *testing.B) {
	src := script100()
	if n := strings.Count(src, "\n"); n < 95 || n > 105 {
		b.Fatalf("script has %d lines", n)
	}
	eng, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	s := &scripts.Script{Name: "bench", Path: "bench.pxl", PXL: []byte(src)}
	cat := eng.Catalog()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(Query{Script: s, Now: time.Now()}, cat); err != nil {
			b.Fatal(err)
		}
	}
}
