package engine

import (
	"testing"
)

// TestPixieIdioms runs constructs that Pixie's library scripts use, end
// to end, and checks each yields rows of the expected types.
func TestPixieIdioms(t *testing.T) {
	eng, rows := fixture(t, 2000)
	got := run(t, eng, `import px

ns_per_ms = 1000 * 1000
ns_per_s = 1000 * ns_per_ms
window_ns = px.DurationNanos(10 * ns_per_s)

def http_stats(start_time: str, svc: px.Service, num_head: int):
    ''' Stats per path. '''
    df = px.DataFrame('http_events', start_time=start_time)
    df = df[df.time_ >= px.now() - px.minutes(10)]
    df.timestamp = px.bin(df.time_, window_ns)
    df.service = df.ctx['service']
    df = df[px.contains(df.service, svc)]
    df.slow = df.latency > 1.5e6
    df.latency_ms = df.latency / 1.0E6
    df.failure = df.resp_status >= 400
    df.is_get = px.equals_any(df.req_method, ['GET', 'HEAD'])
    df = df.groupby(['req_path', 'timestamp']).agg(
        latency_quantiles=('latency', px.quantiles),
        error_rate=('failure', px.mean),
        throughput_total=('latency', px.count),
        slow=('slow', px.sum),
        gets=('is_get', px.sum),
        ms=('latency_ms', px.mean),
    )
    df.request_throughput = df.throughput_total / window_ns
    df['latency_p50'] = px.DurationNanos(px.floor(px.pluck_float64(df.latency_quantiles, 'p50')))
    df.error_rate = px.Percent(df.error_rate)
    df.link = px.script_reference(df.req_path, 'px/http_data', {'start_time': start_time, 'destination_filter': df.req_path})
    df = df.drop(['latency_quantiles'])
    return df.head(n=num_head)

px.display(http_stats('-10m', '', 1000), 'stats')
px.display(http_stats('-10m', 'nothing-matches', 10), 'none')
`)
	stats := got["stats"]
	if stats.Rows() == 0 {
		t.Fatal("no rows")
	}
	var total int64
	for _, m := range records(stats) {
		total += m["throughput_total"].(int64)
		if m["gets"].(int64) > m["throughput_total"].(int64) || m["slow"].(int64) > m["throughput_total"].(int64) {
			t.Errorf("bad counts %v", m)
		}
		if m["request_throughput"].(float64) <= 0 {
			t.Errorf("throughput %v", m["request_throughput"])
		}
	}
	if total != int64(len(rows)) {
		t.Errorf("%d rows counted, %d in the data", total, len(rows))
	}
	if got["none"].Rows() != 0 {
		t.Errorf("filter on a service that does not exist kept %d rows", got["none"].Rows())
	}
}
