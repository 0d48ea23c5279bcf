package lang

import (
	"fmt"
	"strings"
	"testing"
)

// benchScript is a 100-line script of the usual shape (the one of
// engine's BenchmarkCompile100Lines), with some arithmetic on values.
func benchScript() string {
	var b strings.Builder
	b.WriteString("import px\n\n")
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&b, "df%d = px.DataFrame(table='http_events', start_time='-5m')\n", i)
		fmt.Fprintf(&b, "df%d = df%d[df%d.resp_status >= 400 or px.contains(df%d.req_path, '/api/%d')]\n", i, i, i, i, i)
		fmt.Fprintf(&b, "df%d.latency_ms = df%d.latency / 1000000\n", i, i)
		fmt.Fprintf(&b, "df%d.svc = df%d.ctx['service']\n", i, i)
		fmt.Fprintf(&b, "df%d.failure = df%d.resp_status >= 500\n", i, i)
		fmt.Fprintf(&b, "s%d = df%d.groupby(['svc', 'req_path']).agg(n=('latency', px.count), err=('failure', px.mean), q=('latency', px.quantiles))\n", i, i)
		fmt.Fprintf(&b, "s%d.p99 = px.pluck_float64(s%d.q, 'p99')\n", i, i)
		fmt.Fprintf(&b, "name%d = 'stats_' + str(%d * 2) + '_%%s' %% 'x'\n", i, i)
		fmt.Fprintf(&b, "c%d = px.DataFrame(table='conn_stats', start_time='-5m').groupby('upid').agg(sent=('bytes_sent', px.max))\n", i)
		fmt.Fprintf(&b, "j%d = df%d.merge(c%d, how='left', left_on='upid', right_on='upid', suffixes=['', '_c'])\n", i, i, i)
		fmt.Fprintf(&b, "px.display(s%d.head(100), name%d)\n", i, i)
		fmt.Fprintf(&b, "px.display(j%d[['time_', 'svc', 'latency_ms', 'sent']], 'joined%d')\n\n", i, i)
	}
	return b.String()
}

// BenchmarkParseCompile measures lang's part of compiling a 100-line
// script: parse, rewrite, evaluate, build the plan.
func BenchmarkParseCompile(b *testing.B) {
	src := []byte(benchScript())
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := Parse("bench.pxl", src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Compile(Options{Catalog: testCatalog{}, Now: testNow}); err != nil {
			b.Fatal(err)
		}
	}
}
