package plantest

import (
	"fmt"
	"strings"
)

// Script returns a PxL script of the usual shape for compile benchmarks:
// blocks of 12 lines, each a scan of http_events with a filter, computed
// columns (one from ctx), an aggregate with a quantile plucked, a scan of
// conn_stats merged with it, and two outputs. With named, each block
// also names its first output by string arithmetic ('stats_' + str(i *
// 2) + …), a 13th line.
func Script(blocks int, named bool) string {
	var b strings.Builder
	b.WriteString("import px\n\n")
	for i := 0; i < blocks; i++ {
		fmt.Fprintf(&b, "df%d = px.DataFrame(table='http_events', start_time='-5m')\n", i)
		fmt.Fprintf(&b, "df%d = df%d[df%d.resp_status >= 400 or px.contains(df%d.req_path, '/api/%d')]\n", i, i, i, i, i)
		fmt.Fprintf(&b, "df%d.latency_ms = df%d.latency / 1000000\n", i, i)
		fmt.Fprintf(&b, "df%d.svc = df%d.ctx['service']\n", i, i)
		fmt.Fprintf(&b, "df%d.failure = df%d.resp_status >= 500\n", i, i)
		fmt.Fprintf(&b, "s%d = df%d.groupby(['svc', 'req_path']).agg(n=('latency', px.count), err=('failure', px.mean), q=('latency', px.quantiles))\n", i, i)
		fmt.Fprintf(&b, "s%d.p99 = px.pluck_float64(s%d.q, 'p99')\n", i, i)
		name := fmt.Sprintf("'stats%d'", i)
		if named {
			fmt.Fprintf(&b, "name%d = 'stats_' + str(%d * 2) + '_%%s' %% 'x'\n", i, i)
			name = fmt.Sprintf("name%d", i)
		}
		fmt.Fprintf(&b, "c%d = px.DataFrame(table='conn_stats', start_time='-5m').groupby('upid').agg(sent=('bytes_sent', px.max))\n", i)
		fmt.Fprintf(&b, "j%d = df%d.merge(c%d, how='left', left_on='upid', right_on='upid', suffixes=['', '_c'])\n", i, i, i)
		fmt.Fprintf(&b, "px.display(s%d.head(100), %s)\n", i, name)
		fmt.Fprintf(&b, "px.display(j%d[['time_', 'svc', 'latency_ms', 'sent']], 'joined%d')\n\n", i, i)
	}
	return b.String()
}

// CtxColumns returns the PxL lines that give df a column per ctx key,
// named as the key ("df.pod = df.ctx['pod']\n"), for scripts that ask a
// metadata provider through ctx.
func CtxColumns(keys ...string) string {
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "df.%s = df.ctx['%s']\n", k, k)
	}
	return b.String()
}
