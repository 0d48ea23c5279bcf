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

// TestSourceDestinationIdiom runs the source/destination computation that
// Pixie-style HTTP scripts share: peers resolved through ip_to_pod_id,
// selects over boolean columns and Python constants, drops.
func TestSourceDestinationIdiom(t *testing.T) {
	eng, rows := fixture(t, 1000)
	got := run(t, eng, `import px

def add_source_dest_columns(df):
    df.pod = df.ctx['pod']
    df.namespace = df.ctx['namespace']
    df.ra_pod = px.pod_id_to_pod_name(px.ip_to_pod_id(df.remote_addr))
    df.is_ra_pod = df.ra_pod != ''
    df.ra_name = px.select(df.is_ra_pod, df.ra_pod, df.remote_addr)
    df.is_server_tracing = df.trace_role == 2
    df.is_source_pod_type = px.select(df.is_server_tracing, df.is_ra_pod, True)
    df.is_dest_pod_type = px.select(df.is_server_tracing, True, df.is_ra_pod)
    df.source = px.select(df.is_server_tracing, df.ra_name, df.pod)
    df.destination = px.select(df.is_server_tracing, df.pod, df.ra_name)
    df = df.drop(['ra_pod', 'is_ra_pod', 'ra_name', 'is_server_tracing'])
    return df

def http_data(start_time: str, source_filter: str, destination_filter: str, num_head: int):
    df = px.DataFrame(table='http_events', start_time=start_time)
    df = add_source_dest_columns(df)
    df = df[px.contains(df.source, source_filter)]
    df = df[px.contains(df.destination, destination_filter)]
    df = df[['time_', 'source', 'destination', 'is_source_pod_type', 'is_dest_pod_type', 'req_path', 'resp_status', 'latency']]
    return df.head(num_head)

px.display(http_data('-10m', '', '10.0.0', 100000), 'to_peer')
`)["to_peer"]
	var clients int64
	for _, r := range rows {
		if r.role == 1 {
			clients++
		}
	}
	recs := records(got)
	if int64(len(recs)) != clients {
		t.Fatalf("%d rows whose destination is the peer, want the %d client-side rows", len(recs), clients)
	}
	for _, m := range recs {
		if m["destination"] != "10.0.0.1" || m["is_source_pod_type"] != true || m["is_dest_pod_type"] != false {
			t.Fatalf("row %v", m)
		}
	}
}
