package scripts_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/types"
)

// The tests below call the pxviews module's views over the demo capture
// and check them against counts made in Go over the capture's rows.

// view runs `pxviews.NAME(args)` over the capture and returns its rows.
func (e *captureEnv) view(t *testing.T, call string) result {
	t.Helper()
	src := fmt.Sprintf("import px\nimport pxviews\n\npx.display(pxviews.%s, 'out')\n", call)
	s := &scripts.Script{Name: "view", Path: "view.pxl", PXL: []byte(src)}
	tables, err := e.eng.Collect(context.Background(), engine.Query{Script: s, Now: e.now})
	if err != nil {
		t.Fatalf("pxviews.%s: %v", call, err)
	}
	var r result
	for _, tb := range tables {
		r.cols = tb.Relation.Names()
		for _, rec := range tb.Records {
			for i := 0; i < int(rec.NumRows()); i++ {
				row := map[string]any{}
				for c, n := range r.cols {
					row[n] = format.Value(rec.Column(c), i)
				}
				r.rows = append(r.rows, row)
			}
		}
	}
	return r
}

const viewWindow = "'-1h', px.now()"

// inbound are the server-side requests that the views count: no health
// or readiness checks, a known peer.
func (e *captureEnv) inbound() []map[string]any {
	var out []map[string]any
	for _, r := range e.served() {
		if p := r["req_path"]; p == "/healthz" || p == "/readyz" || r["remote_addr"] == "-" {
			continue
		}
		out = append(out, r)
	}
	return out
}

func TestViewInboundHTTPSummary(t *testing.T) {
	e := loadCapture(t)
	r := e.view(t, "inbound_http_summary("+viewWindow+")")
	wantColumns(t, "inbound_http_summary", r, "time_", "pod_id", "pod", "service", "namespace", "node",
		"requestor_ip", "requestor_pod", "requestor_service",
		"latency_quantiles", "latency_sum", "num_requests", "num_errors", "req_bytes", "resp_bytes")
	want, errs, lat := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, row := range e.inbound() {
		pod := e.name(row)
		want[pod]++
		if row["resp_status"].(int64) >= 400 {
			errs[pod]++
		}
		lat[pod] += float64(row["latency"].(int64))
	}
	if len(want) == 0 {
		t.Fatal("the capture holds no served requests")
	}
	got := r.by("pod", "num_requests")
	for pod, n := range want {
		wantEqual(t, pod+" requests", got[pod], n)
		wantEqual(t, pod+" errors", r.by("pod", "num_errors")[pod], errs[pod])
		wantEqual(t, pod+" latency sum", r.by("pod", "latency_sum")[pod], lat[pod])
	}
	if len(got) != len(want) {
		t.Errorf("pods %v, want %v", keysOf(got), keysOf(want))
	}
}

func TestViewHTTPGraph(t *testing.T) {
	e := loadCapture(t)
	r := e.view(t, "http_graph("+viewWindow+")")
	wantColumns(t, "http_graph", r, "time_", "responder_pod", "requestor_pod", "responder_namespace", "requestor_namespace",
		"responder_node", "requestor_node", "responder_ip", "requestor_ip",
		"responder_service", "requestor_service", "latency_p50", "latency_p90", "latency_p99",
		"latency_quantiles", "latency_sum", "num_requests", "num_errors", "req_bytes", "resp_bytes")
	// Every row of either side counts once, under the pod that answered
	// when the server side was traced.
	var total float64
	served := map[string]float64{}
	for _, row := range e.rows["http_events"] {
		if p := row["req_path"]; p == "/healthz" || p == "/readyz" || row["remote_addr"] == "-" {
			continue
		}
		total++
		if row["trace_role"].(int64) == 2 {
			served[e.name(row)]++
		}
	}
	wantEqual(t, "requests", r.sum("num_requests"), total)
	got := r.by("responder_pod", "num_requests")
	for pod, n := range served {
		if got[pod] < n {
			t.Errorf("%s answered %v requests in the graph, want at least the %v it served", pod, got[pod], n)
		}
	}
}

func TestViewInboundHTTPTimeseries(t *testing.T) {
	e := loadCapture(t)
	lat := e.view(t, "inbound_http_latency_timeseries("+viewWindow+", 1000*1000*1000)")
	thr := e.view(t, "inbound_http_throughput_timeseries("+viewWindow+", 1000*1000*1000)")
	want := map[string]float64{}
	for _, row := range e.inbound() {
		want[e.name(row)]++
	}
	for pod, n := range want {
		wantEqual(t, pod+" requests (latency series)", lat.by("pod", "num_requests")[pod], n)
		wantEqual(t, pod+" requests (throughput series)", thr.by("pod", "num_requests")[pod], n)
	}
	for _, row := range lat.rows {
		if ts := row["time_"].(time.Time).UnixNano(); ts%1e9 != 0 {
			t.Errorf("time_ %d is not on a 1 s bin", ts)
			break
		}
	}
}

// deltas sums, per pod, each process's growth (max - min) of the counters.
func (e *captureEnv) deltas(table string, counters ...string) map[string]float64 {
	type key struct {
		pod  string
		upid types.UInt128Value
	}
	lo, hi := map[key]float64{}, map[key]float64{}
	for _, row := range e.rows[table] {
		var v float64
		for _, c := range counters {
			v += float64(row[c].(int64))
		}
		k := key{e.name(row), row["upid"].(types.UInt128Value)}
		if old, ok := lo[k]; !ok || v < old {
			lo[k] = v
		}
		if v > hi[k] {
			hi[k] = v
		}
	}
	out := map[string]float64{}
	for k := range lo {
		out[k.pod] += hi[k] - lo[k]
	}
	return out
}

func TestViewPodResourceStats(t *testing.T) {
	e := loadCapture(t)
	r := e.view(t, "pod_resource_stats("+viewWindow+")")
	wantColumns(t, "pod_resource_stats", r, "time_", "pod_id", "pod", "service", "node", "namespace", "container_count",
		"pod_start_time", "pod_status", "cpu_usage", "rss", "vsize",
		"actual_disk_read_throughput", "actual_disk_write_throughput",
		"total_disk_read_throughput", "total_disk_write_throughput")
	// The sums of the summands are not those of the per-process rates,
	// as the view adds cpu times of several processes: the counters are
	// summed first, as the view does over one window of 1 h.
	cpu := e.deltas("process_stats", "cpu_utime_ns", "cpu_ktime_ns")
	got := r.by("pod", "cpu_usage")
	for _, pod := range []string{unit("catalog"), unit("frontend")} {
		want := cpu[pod] / 3600e9
		if math.Abs(got[pod]-want) > 1e-12+1e-9*want {
			t.Errorf("%s cpu_usage %v, want %v", pod, got[pod], want)
		}
		if got[pod] == 0 {
			t.Errorf("%s used no CPU in the view", pod)
		}
	}
	for _, row := range r.rows {
		if row["container_count"].(int64) < 1 {
			t.Errorf("%v: container_count %v", row["pod"], row["container_count"])
		}
	}
}

func TestViewConnectionThroughput(t *testing.T) {
	e := loadCapture(t)
	r := e.view(t, "connection_throughput_stats("+viewWindow+")")
	wantColumns(t, "connection_throughput_stats", r, "time_", "remote_addr", "node", "pod_id", "pod", "namespace", "service",
		"inbound_conn_throughput", "outbound_conn_throughput")
	// Each connection's growth (max - min) over the window, by the
	// side the process took.
	type key struct {
		upid     types.UInt128Value
		role     int64
		addr     string
		port     int64
		ssl      bool
		protocol int64
	}
	lo, hi, pod := map[key]float64{}, map[key]float64{}, map[key]string{}
	for _, row := range e.rows["conn_stats"] {
		k := key{row["upid"].(types.UInt128Value), row["trace_role"].(int64), row["remote_addr"].(string),
			row["remote_port"].(int64), row["ssl"].(bool), row["protocol"].(int64)}
		v := float64(row["bytes_recv"].(int64) + row["bytes_sent"].(int64))
		if old, ok := lo[k]; !ok || v < old {
			lo[k] = v
		}
		hi[k] = max(hi[k], v)
		pod[k] = e.name(row)
	}
	in, out := map[string]float64{}, map[string]float64{}
	for k := range lo {
		switch k.role {
		case 2:
			in[pod[k]] += hi[k] - lo[k]
		case 1:
			out[pod[k]] += hi[k] - lo[k]
		}
	}
	var moved float64
	for p, n := range in {
		wantEqual(t, p+" inbound bytes", r.by("pod", "inbound_conn_throughput")[p], n)
		moved += n
	}
	for p, n := range out {
		wantEqual(t, p+" outbound bytes", r.by("pod", "outbound_conn_throughput")[p], n)
		moved += n
	}
	if moved == 0 {
		t.Error("no connection moved bytes in the capture")
	}
}

func TestViewProcesses(t *testing.T) {
	e := loadCapture(t)
	r := e.view(t, "processes("+viewWindow+")")
	want := map[string]bool{}
	for _, row := range e.rows["process_stats"] {
		want[fmt.Sprint(row["upid"])] = true
	}
	got := map[string]bool{}
	for _, row := range r.rows {
		got[fmt.Sprint(row["upid"])] = true
	}
	if len(got) != len(want) {
		t.Errorf("%d processes, want %d", len(got), len(want))
	}
}

func TestViewsCompile(t *testing.T) {
	e := loadCapture(t)
	for _, call := range []string{
		"container_process_timeseries(" + viewWindow + ", 1000*1000*1000)",
		"container_process_summary(" + viewWindow + ")",
		"pod_network_timeseries(" + viewWindow + ", 1000*1000*1000)",
		"pod_network_summary(" + viewWindow + ")",
	} {
		if r := e.view(t, call); len(r.rows) == 0 {
			t.Errorf("pxviews.%s: no rows", call)
		}
	}
}
