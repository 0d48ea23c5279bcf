package scripts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/compute"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/demo"
	"github.com/pxq-dev/pxq/engine"
	"github.com/pxq-dev/pxq/format"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/scripts"
	"github.com/pxq-dev/pxq/sources/tables"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// The tests below run every library script over the capture recorded from
// a real `pxq demo` run with eBPF (demo/testdata/capture) and check their
// output against counts made in Go over the same rows.

// captureEnv is an engine loaded with the demo capture, and the capture's
// rows as Go values.
type captureEnv struct {
	eng  *engine.Engine
	meta metadata.Provider
	now  time.Time
	rows map[string][]map[string]any // table → rows
}

var (
	capOnce sync.Once
	capEnv  *captureEnv
	capErr  error
)

func loadCapture(t *testing.T) *captureEnv {
	t.Helper()
	capOnce.Do(func() {
		c, err := capture.Open(filepath.Join("..", "demo", demo.ShippedDir))
		if err != nil {
			capErr = err
			return
		}
		meta := c.Metadata(nil)
		eng, err := engine.New(engine.Config{Meta: meta})
		if err != nil {
			capErr = err
			return
		}
		if err := c.Load(eng.Store()); err != nil {
			capErr = err
			return
		}
		e := &captureEnv{eng: eng, meta: meta, now: c.AsOf(), rows: map[string][]map[string]any{}}
		for _, tb := range eng.Store().Tables() {
			rel := tb.Relation()
			all, err := tb.ReadAll() // the capture's rows are in its files
			if err != nil {
				capErr = err
				return
			}
			for _, b := range all {
				for i := 0; i < int(b.Record.NumRows()); i++ {
					row := map[string]any{}
					for c, col := range rel {
						row[col.Name] = format.Value(b.Record.Column(c), i)
					}
					e.rows[tb.Name()] = append(e.rows[tb.Name()], row)
				}
			}
		}
		capEnv = e
	})
	if capErr != nil {
		t.Fatalf("loading the demo capture: %v", capErr)
	}
	return capEnv
}

// name names a row's process as the scripts do: by its pod, which on a
// plain host is its host entity (metadata.EntityOf of the process the
// capture recorded), else by its command line.
func (e *captureEnv) name(row map[string]any) string {
	u := row["upid"].(types.UInt128Value)
	p := e.meta.Process(u)
	if ent, ok := metadata.EntityOf(p); ok {
		return ent.QualifiedName()
	}
	if p != nil && p.Cmdline != "" {
		return p.Cmdline
	}
	return fmt.Sprintf("pid %d", u.PID())
}

// unit is the pod of a demo process: `pxq demo` runs each in a cgroup
// named like a systemd service.
func unit(name string) string { return demo.Slice + "/" + demo.UnitOf(name) }

// result is one output table as rows of Go values.
type result struct {
	cols []string
	rows []map[string]any
}

func (r result) sum(col string) float64 {
	var s float64
	for _, row := range r.rows {
		switch v := row[col].(type) {
		case int64:
			s += float64(v)
		case float64:
			s += v
		}
	}
	return s
}

func (r result) by(key, col string) map[string]float64 {
	m := map[string]float64{}
	for _, row := range r.rows {
		k := fmt.Sprint(row[key])
		switch v := row[col].(type) {
		case int64:
			m[k] += float64(v)
		case float64:
			m[k] += v
		}
	}
	return m
}

// run runs a library script over the capture and returns its tables.
func (e *captureEnv) run(t *testing.T, name string, args map[string]string) map[string]result {
	t.Helper()
	s, err := scripts.NewLibrary().Get(name)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := e.eng.Collect(context.Background(), engine.Query{Script: s, Args: args, Now: e.now})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := map[string]result{}
	for _, tb := range tables {
		r := result{cols: tb.Relation.Names()}
		for _, rec := range tb.Records {
			for i := 0; i < int(rec.NumRows()); i++ {
				row := map[string]any{}
				for c, n := range r.cols {
					row[n] = format.Value(rec.Column(c), i)
				}
				r.rows = append(r.rows, row)
			}
		}
		out[tb.Name] = r
	}
	return out
}

func wantColumns(t *testing.T, table string, r result, cols ...string) {
	t.Helper()
	if strings.Join(r.cols, ",") != strings.Join(cols, ",") {
		t.Errorf("%s: columns %v, want %v", table, r.cols, cols)
	}
}

func wantEqual(t *testing.T, what string, got, want float64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// served returns the server side of the captured HTTP requests.
func (e *captureEnv) served() []map[string]any {
	var out []map[string]any
	for _, r := range e.rows["http_events"] {
		if r["trace_role"].(int64) == 2 {
			out = append(out, r)
		}
	}
	return out
}

func TestCaptureHolds(t *testing.T) {
	e := loadCapture(t)
	for _, n := range []string{"http_events", "dns_events", "conn_stats", "process_stats", "network_stats", "stirling_error", "probe_status"} {
		if len(e.rows[n]) == 0 {
			t.Errorf("the capture has no %s rows", n)
		}
	}
	if len(e.served()) < 100 {
		t.Errorf("only %d served requests in the capture", len(e.served()))
	}
}

func TestHTTPData(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/http_data", map[string]string{"max_rows": "100000"})
	r := out["http_data"]
	wantColumns(t, "http_data", r, "time_", "source", "destination", "req_method", "req_path", "resp_status",
		"latency", "req_body_size", "resp_body_size", "req_headers", "req_body", "resp_body")
	wantEqual(t, "rows", float64(len(r.rows)), float64(len(e.rows["http_events"])))
	// Filtered on the destination: the catalog's requests, as it served
	// them.
	out = e.run(t, "px/http_data", map[string]string{"destination_filter": "catalog.service", "max_rows": "100000"})
	want := 0
	for _, row := range e.served() {
		if e.name(row) == unit(demo.Catalog) {
			want++
		}
	}
	if want == 0 {
		t.Errorf("no request served by %s", unit(demo.Catalog))
	}
	wantEqual(t, "catalog rows", float64(len(out["http_data"].rows)), float64(want))
	// max_rows caps the output.
	out = e.run(t, "px/http_data", map[string]string{"max_rows": "7"})
	wantEqual(t, "rows with max_rows=7", float64(len(out["http_data"].rows)), 7)
}

func TestHTTPRequestStats(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/http_request_stats", nil)
	r := out["http_request_stats"]
	wantColumns(t, "http_request_stats", r, "endpoint", "requests", "error_rate", "latency_p50", "latency_p90", "latency_p99", "bytes")
	want := map[string]float64{}
	errs := map[string]float64{}
	grpcErrs := 0
	for _, row := range e.served() {
		want[e.name(row)]++
		if failed(t, row) {
			errs[e.name(row)]++
			if row["resp_status"].(int64) < 400 {
				grpcErrs++
			}
		}
	}
	if grpcErrs == 0 {
		t.Error("the capture has no failed gRPC call (the demo's inventory answers NOT_FOUND and RESOURCE_EXHAUSTED)")
	}
	got := r.by("endpoint", "requests")
	if len(got) != len(want) || len(got) < 4 {
		t.Errorf("endpoints %v, want %v", got, want)
	}
	for _, s := range demo.Services {
		if got[unit(s)] == 0 {
			t.Errorf("no requests of %s: %v", unit(s), got)
		}
	}
	for k, n := range want {
		wantEqual(t, "requests of "+k, got[k], n)
	}
	for _, row := range r.rows {
		k := row["endpoint"].(string)
		if d := row["error_rate"].(float64) - errs[k]/want[k]; d > 1e-9 || d < -1e-9 {
			t.Errorf("error_rate of %s = %v, want %v", k, row["error_rate"], errs[k]/want[k])
		}
	}
	wantEqual(t, "status_codes total", out["status_codes"].sum("requests"), float64(len(e.served())))
}

// failed says whether a request failed as the library's RED scripts count
// it: an HTTP status of 400 or more, or a gRPC call whose grpc-status is
// not 0 (it answers HTTP 200).
func failed(t *testing.T, row map[string]any) bool {
	if row["resp_status"].(int64) >= 400 {
		return true
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(row["resp_headers"].(string)), &h); err != nil {
		t.Fatalf("resp_headers %q: %v", row["resp_headers"], err)
	}
	s, ok := h["grpc-status"]
	return ok && s != "0"
}

// TestGRPCStatsOnCapture counts the demo's gRPC calls once each, though the demo
// records both sides: from the server's rows (a client row counts only
// when its server is not traced), with their grpc-status codes.
func TestGRPCStatsOnCapture(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/grpc_stats", nil)
	want := map[string]float64{}
	n := 0
	for _, row := range e.served() {
		if row["content_type"].(int64) != 2 {
			continue
		}
		n++
		var h map[string]string
		if err := json.Unmarshal([]byte(row["resp_headers"].(string)), &h); err != nil {
			t.Fatal(err)
		}
		want[h["grpc-status"]]++
	}
	if n == 0 || len(want) < 3 {
		t.Fatalf("the capture has %d served gRPC calls, statuses %v: want OK, NOT_FOUND and RESOURCE_EXHAUSTED", n, want)
	}
	wantEqual(t, "calls", out["grpc_methods"].sum("calls"), float64(n))
	wantEqual(t, "calls by server", out["grpc_servers"].sum("calls"), float64(n))
	got := out["grpc_status_codes"].by("grpc_status", "calls")
	for code, name := range map[string]string{"0": "OK", "5": "NOT_FOUND", "8": "RESOURCE_EXHAUSTED"} {
		wantEqual(t, "calls "+name, got[name], want[code])
	}
}

func TestHTTPDataFiltered(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/http_data_filtered", map[string]string{"status_min": "500", "max_rows": "100000"})
	r := out["requests"]
	wantColumns(t, "requests", r, "time_", "endpoint", "client", "req_method", "req_path", "resp_status", "latency",
		"req_body_size", "resp_body_size", "req_body", "resp_body")
	want := 0
	for _, row := range e.served() {
		if row["resp_status"].(int64) >= 500 {
			want++
		}
	}
	if want == 0 {
		t.Fatal("the capture has no 5xx")
	}
	wantEqual(t, "5xx rows", float64(len(r.rows)), float64(want))
	out = e.run(t, "px/http_data_filtered", map[string]string{"method": "POST", "path": "/charge", "max_rows": "100000"})
	want = 0
	for _, row := range e.served() {
		if row["req_method"] == "POST" && row["req_path"] == "/charge" {
			want++
		}
	}
	wantEqual(t, "POST /charge rows", float64(len(out["requests"].rows)), float64(want))
}

func TestSlowRequests(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/slow_requests", map[string]string{"min_latency_ms": "50", "max_rows": "100000"})
	r := out["slow_requests"]
	wantColumns(t, "slow_requests", r, "time_", "endpoint", "req_method", "req_path", "resp_status", "latency", "endpoint_p90", "resp_body", "requests")
	if len(r.rows) == 0 {
		t.Fatal("no slow request (product 7 takes 200 ms)")
	}
	slowSeven := false
	for _, row := range r.rows {
		lat, p90 := row["latency"].(int64), row["endpoint_p90"].(int64)
		if lat < p90 || lat < 50e6 {
			t.Errorf("row with latency %d under p90 %d or 50 ms", lat, p90)
		}
		if row["req_path"] == "/products/7" {
			slowSeven = true
		}
	}
	if !slowSeven {
		t.Error("the slow product's lookups are not among the slow requests")
	}
	wantEqual(t, "endpoint_latency requests", out["endpoint_latency"].sum("requests"), float64(len(e.served())))
}

func TestLargestRequests(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/largest_requests", map[string]string{"min_bytes": "256", "max_rows": "100000"})
	want := 0
	for _, row := range e.served() {
		if row["req_body_size"].(int64)+row["resp_body_size"].(int64) >= 256 {
			want++
		}
	}
	if want == 0 {
		t.Fatal("no exchange of 256 bytes in the capture")
	}
	wantEqual(t, "largest_requests rows", float64(len(out["largest_requests"].rows)), float64(want))
	by := out["largest_by_path"]
	wantColumns(t, "largest_by_path", by, "endpoint", "req_method", "path", "requests", "max_request", "max_response", "mean_total")
	wantEqual(t, "largest_by_path requests", by.sum("requests"), float64(len(e.served())))
}

func TestHTTPErrors(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/http_errors", map[string]string{"max_rows": "100000"})
	want := map[string]float64{}
	n := 0
	for _, row := range e.served() {
		if s := row["resp_status"].(int64); s >= 400 {
			want[fmt.Sprint(s)]++
			n++
		}
	}
	r := out["errors_by_endpoint"]
	wantColumns(t, "errors_by_endpoint", r, "endpoint", "req_method", "path", "resp_status", "errors", "path_requests", "share_of_path", "latency")
	got := r.by("resp_status", "errors")
	for k, v := range want {
		wantEqual(t, "errors with status "+k, got[k], v)
	}
	for _, row := range r.rows {
		if row["path"] == "/admin" && row["share_of_path"].(float64) != 1 {
			t.Errorf("/admin never exists, yet its error share is %v", row["share_of_path"])
		}
	}
	wantEqual(t, "failed_requests rows", float64(len(out["failed_requests"].rows)), float64(n))
	wantEqual(t, "errors_chart total", out["errors_chart"].sum("errors"), float64(n))
}

func TestServiceStats(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/service_stats", map[string]string{"window_s": "1"})
	r := out["service_stats"]
	wantColumns(t, "service_stats", r, "service", "requests", "requests_per_s", "errors", "error_rate", "latency_p50", "latency_p99", "bytes_in", "bytes_out", "endpoints")
	wantEqual(t, "requests", r.sum("requests"), float64(len(e.served())))
	errs := 0
	for _, row := range e.served() {
		if failed(t, row) {
			errs++
		}
	}
	wantEqual(t, "errors", r.sum("errors"), float64(errs))
	ts := out["service_ts"]
	wantEqual(t, "time series requests", ts.sum("requests"), float64(len(e.served())))
	if len(ts.rows) <= len(r.rows) {
		t.Errorf("%d points for %d services over a %s capture with 1 s bins", len(ts.rows), len(r.rows), "6 s")
	}
	// The charts show the global func's output; they make no table of
	// their own.
	if len(out) != 2 {
		t.Errorf("tables: %v, want service_stats and service_ts", keys(out))
	}
}

func TestEndpointStats(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/endpoint_stats", nil)
	r := out["endpoint_stats"]
	wantEqual(t, "requests", r.sum("requests"), float64(len(e.served())))
	paths := r.by("path", "requests")
	if paths["/products/{id}"] == 0 || paths["/product/{id}"] == 0 {
		t.Errorf("ids are not folded in paths: %v", paths)
	}
	out = e.run(t, "px/endpoint_stats", map[string]string{"service": "payments"})
	for _, row := range out["endpoint_stats"].rows {
		if row["service"] != unit(demo.Payments) {
			t.Errorf("service filter let %v through", row["service"])
		}
	}
}

func TestHTTPGraph(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/http_graph", nil)
	r := out["edges"]
	wantColumns(t, "edges", r, "requestor", "responder", "requests", "error_rate", "latency_p50", "latency_p99", "bytes")
	// Each client-side request is one edge crossing; the server of a port
	// is the process that served requests on it.
	servers := map[int64]string{}
	for _, row := range e.served() {
		servers[row["local_port"].(int64)] = e.name(row)
	}
	want := map[string]float64{}
	for _, row := range e.rows["http_events"] {
		if row["trace_role"].(int64) == 1 {
			want[e.name(row)+" -> "+servers[row["remote_port"].(int64)]]++
		}
	}
	got := map[string]float64{}
	for _, row := range r.rows {
		got[row["requestor"].(string)+" -> "+row["responder"].(string)] += float64(row["requests"].(int64))
	}
	for _, edge := range []string{
		unit(demo.LoadGen) + " -> " + unit(demo.Frontend),
		unit(demo.Frontend) + " -> " + unit(demo.Catalog),
		unit(demo.Frontend) + " -> " + unit(demo.Checkout),
		unit(demo.Checkout) + " -> " + unit(demo.Catalog),
		unit(demo.Checkout) + " -> " + unit(demo.Payments),
		unit(demo.Checkout) + " -> " + unit(demo.Inventory),
	} {
		if want[edge] == 0 {
			t.Errorf("the capture has no %s", edge)
		}
		wantEqual(t, edge, got[edge], want[edge])
	}
	if len(got) != len(want) {
		t.Errorf("edges %v, want %v", got, want)
	}
	// The demo traces every client: each served request is counted once,
	// from its client's row.
	wantEqual(t, "requests", r.sum("requests"), float64(len(e.served())))
	if len(out["graph"].rows) != len(r.rows) {
		t.Errorf("graph and edges differ")
	}
}

// TestHTTPGraphServerSide runs px/http_graph over the capture without the
// client rows of requests whose server it traced, as the tracer records
// them by default (the demo keeps both sides): every request is then
// counted from its server's row, its client being the pod that holds
// 127.0.0.1, the host itself.
func TestHTTPGraphServerSide(t *testing.T) {
	e := loadCapture(t)
	c, err := capture.Open(filepath.Join("..", "demo", demo.ShippedDir))
	if err != nil {
		t.Fatal(err)
	}
	loaded := table.NewStore(0)
	if err := c.Load(loaded); err != nil {
		t.Fatal(err)
	}
	served := map[int64]bool{}
	for _, row := range e.served() {
		served[row["local_port"].(int64)] = true
	}
	eng, err := engine.New(engine.Config{Meta: c.Metadata(nil)})
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, tb := range loaded.Tables() {
		var recs []arrow.Record
		all, err := tb.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range all {
			rec := b.Record
			if tb.Name() == "http_events" {
				role := rec.Column(tb.Relation().Index("trace_role")).(*array.Int64)
				port := rec.Column(tb.Relation().Index("remote_port")).(*array.Int64)
				keep := array.NewBooleanBuilder(memory.DefaultAllocator)
				for i := 0; i < role.Len(); i++ {
					client := role.Value(i) == 1 && served[port.Value(i)]
					keep.Append(!client)
					if client {
						dropped++
					}
				}
				mask := keep.NewArray()
				if rec, err = compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions()); err != nil {
					t.Fatal(err)
				}
			}
			recs = append(recs, rec)
		}
		if _, err := eng.Store().LoadRecords(tb.Name(), tb.Relation(), recs); err != nil {
			t.Fatal(err)
		}
	}
	if dropped == 0 {
		t.Fatal("the capture has no client row of a traced server")
	}
	if len(c.Manifest.Hosts) != 1 {
		t.Fatalf("capture hosts %v, want one", c.Manifest.Hosts)
	}
	host := metadata.HostNamespace + "/" + c.Manifest.Hosts[0]
	want := map[string]float64{}
	for _, row := range e.served() {
		want[host+" -> "+e.name(row)]++
	}
	s, err := scripts.NewLibrary().Get("px/http_graph")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := eng.Collect(context.Background(), engine.Query{Script: s, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, tb := range tables {
		if tb.Name != "edges" {
			continue
		}
		req, rqs, rsp := tb.Relation.Index("requests"), tb.Relation.Index("requestor"), tb.Relation.Index("responder")
		for _, rec := range tb.Records {
			for i := 0; i < int(rec.NumRows()); i++ {
				got[fmt.Sprint(format.Value(rec.Column(rqs), i))+" -> "+fmt.Sprint(format.Value(rec.Column(rsp), i))] +=
					float64(format.Value(rec.Column(req), i).(int64))
			}
		}
	}
	if len(got) != len(want) || len(want) < len(demo.Services) {
		t.Errorf("edges %v, want %v", got, want)
	}
	for edge, n := range want {
		wantEqual(t, edge, got[edge], n)
	}
}

func TestHTTPTimeseries(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/http_timeseries", map[string]string{"window_s": "1"})
	r := out["ts"]
	wantColumns(t, "ts", r, "timestamp", "endpoint", "requests", "requests_per_s", "error_rate", "latency_p50", "latency_p90", "latency_p99")
	wantEqual(t, "requests", r.sum("requests"), float64(len(e.served())))
	bins := map[int64]bool{}
	for _, row := range r.rows {
		ts := row["timestamp"].(time.Time).UnixNano()
		if ts%int64(time.Second) != 0 {
			t.Errorf("timestamp %v is not on a 1 s bin", row["timestamp"])
		}
		bins[ts] = true
		if row["requests_per_s"].(float64) != float64(row["requests"].(int64)) {
			t.Errorf("requests_per_s %v for %v requests in 1 s", row["requests_per_s"], row["requests"])
		}
	}
	if len(bins) < 4 {
		t.Errorf("%d time bins over a 6 s capture", len(bins))
	}
}

// connTotals adds up, per process, the latest counters of each connection
// group of one trace role, as the conn scripts do.
func (e *captureEnv) connTotals(role int64, col string) map[string]float64 {
	type key struct {
		upid types.UInt128Value
		addr string
		port int64
	}
	latest := map[key]int64{}
	names := map[key]string{}
	for _, row := range e.rows["conn_stats"] {
		if row["trace_role"].(int64) != role {
			continue
		}
		k := key{row["upid"].(types.UInt128Value), row["remote_addr"].(string), row["remote_port"].(int64)}
		latest[k] = max(latest[k], row[col].(int64))
		names[k] = e.name(row)
	}
	out := map[string]float64{}
	for k, v := range latest {
		out[names[k]] += float64(v)
	}
	return out
}

func TestConns(t *testing.T) {
	e := loadCapture(t)
	for _, c := range []struct {
		script string
		role   int64
		cols   []string
	}{
		{"px/inbound_conns", 2, []string{"endpoint", "client", "conn_open", "conn_close", "conn_active", "bytes_recv", "bytes_sent"}},
		{"px/outbound_conns", 1, []string{"endpoint", "server", "conn_open", "conn_close", "conn_active", "bytes_sent", "bytes_recv"}},
	} {
		name := strings.TrimPrefix(c.script, "px/")
		r := e.run(t, c.script, nil)[name]
		wantColumns(t, name, r, c.cols...)
		if len(r.rows) == 0 {
			t.Errorf("%s: no rows", name)
		}
		for _, col := range []string{"conn_open", "bytes_sent", "bytes_recv"} {
			want := e.connTotals(c.role, col)
			got := r.by("endpoint", col)
			for k, v := range want {
				wantEqual(t, name+" "+col+" of "+k, got[k], v)
			}
		}
	}
}

func TestNetFlowGraph(t *testing.T) {
	e := loadCapture(t)
	r := e.run(t, "px/net_flow_graph", nil)["flows"]
	wantColumns(t, "flows", r, "from_entity", "to_entity", "bytes_up", "bytes_down", "bytes_total")
	var want float64
	for _, role := range []int64{1, 2} {
		for _, v := range e.connTotals(role, "bytes_sent") {
			want += v
		}
		for _, v := range e.connTotals(role, "bytes_recv") {
			want += v
		}
	}
	wantEqual(t, "bytes_total", r.sum("bytes_total"), want)
	edges := map[string]bool{}
	for _, row := range r.rows {
		edges[row["from_entity"].(string)] = true
	}
	if !edges[unit(demo.LoadGen)] {
		t.Errorf("the load generator sends nothing in the flow graph: %v", edges)
	}
}

func TestProcessStats(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/process_stats", nil)
	r := out["process_stats"]
	wantColumns(t, "process_stats", r, "process", "pid", "samples", "cpu", "rss", "vsize", "threads", "read_per_s", "write_per_s", "major_faults", "minor_faults")
	samples := map[string]float64{}
	for _, row := range e.rows["process_stats"] {
		samples[e.name(row)]++
	}
	got := r.by("process", "samples")
	if len(got) != len(samples) {
		t.Errorf("processes %v, want %v", got, samples)
	}
	for k, v := range samples {
		wantEqual(t, "samples of "+k, got[k], v)
	}
	for _, row := range r.rows {
		if c := row["cpu"].(float64); c < 0 || c > 4 {
			t.Errorf("%s: cpu %v", row["process"], c)
		}
		if row["rss"].(int64) <= 0 {
			t.Errorf("%s: rss %v", row["process"], row["rss"])
		}
	}
	if len(out["memory"].rows) < len(samples) {
		t.Errorf("memory time series: %d points", len(out["memory"].rows))
	}
}

// TestKubernetesListings runs the scripts that list Kubernetes objects
// over a capture from a host without Kubernetes: they list its host
// entities (docs/metadata.md), here the demo's units in Slice and the
// pxq process itself, as metadata.EntityOf names the processes sampled.
func TestKubernetesListings(t *testing.T) {
	e := loadCapture(t)
	type pod struct {
		namespace, node, service string
		upids                    map[types.UInt128Value]bool
	}
	pods := map[string]*pod{}
	for _, row := range e.rows["process_stats"] {
		u := row["upid"].(types.UInt128Value)
		p := e.meta.Process(u)
		ent, ok := metadata.EntityOf(p)
		if !ok {
			continue
		}
		q := pods[ent.QualifiedName()]
		if q == nil {
			q = &pod{namespace: ent.Namespace, node: p.Hostname, upids: map[types.UInt128Value]bool{}}
			if ent.Service != "" {
				q.service = ent.Namespace + "/" + ent.Service
			}
			pods[ent.QualifiedName()] = q
		}
		q.upids[u] = true
	}
	for _, s := range append([]string{demo.DNS, demo.LoadGen}, demo.Services...) {
		if q := pods[unit(s)]; q == nil || q.namespace != demo.Slice || q.service != unit(s) {
			t.Errorf("the capture's processes have no unit %s in %s (pods: %v)", unit(s), demo.Slice, keysOf(pods))
		}
	}
	requests := map[string]float64{}
	for _, row := range e.served() {
		if q := pods[e.name(row)]; q != nil && q.service != "" {
			requests[q.service]++
		}
	}
	listings := map[string][]string{
		"px/pod_stats":  {"pod", "namespace", "node", "status", "processes", "cpu", "rss", "read_per_s", "write_per_s"},
		"px/namespaces": {"namespace", "pods", "services", "pods_link"},
		"px/pods":       {"pod", "namespace", "node", "status", "start_time", "processes", "last_seen", "details"},
		"px/services":   {"service", "namespace", "pods", "requests", "stats"},
		"px/nodes":      {"node", "pods", "cpu"},
	}
	out := map[string]result{}
	for script, cols := range listings {
		name := strings.TrimPrefix(script, "px/")
		r, ok := e.run(t, script, nil)[name]
		if !ok {
			t.Errorf("%s: no table %s", script, name)
			continue
		}
		wantColumns(t, name, r, cols...)
		out[name] = r
	}
	// Pods, with their namespace, node and processes, in pods and
	// pod_stats.
	for _, name := range []string{"pods", "pod_stats"} {
		r := out[name]
		wantEqual(t, name+" rows", float64(len(r.rows)), float64(len(pods)))
		for _, row := range r.rows {
			q := pods[row["pod"].(string)]
			if q == nil {
				t.Errorf("%s: pod %v is no entity of the capture", name, row["pod"])
				continue
			}
			if row["namespace"] != q.namespace || row["node"] != q.node || q.node == "" {
				t.Errorf("%s: pod %v in %v on %v, want %s on %s", name, row["pod"], row["namespace"], row["node"], q.namespace, q.node)
			}
			wantEqual(t, name+" processes of "+row["pod"].(string), float64(row["processes"].(int64)), float64(len(q.upids)))
			if status := fmt.Sprint(row["status"]); status != "Running" {
				t.Errorf("%s: pod %v is %s, want Running", name, row["pod"], status)
			}
		}
	}
	// Namespaces count their pods and services; services their pods and
	// the requests they served.
	nsPods, nsSvcs, svcPods, nodePods := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	seenSvc := map[string]bool{}
	for _, q := range pods {
		nsPods[q.namespace]++
		nodePods[q.node]++
		if q.service != "" {
			svcPods[q.service]++
			if !seenSvc[q.service] {
				seenSvc[q.service] = true
				nsSvcs[q.namespace]++
			}
		}
	}
	ns := out["namespaces"]
	wantEqual(t, "namespaces", float64(len(ns.rows)), float64(len(nsPods)))
	for _, row := range ns.rows {
		n := row["namespace"].(string)
		wantEqual(t, "pods of namespace "+n, float64(row["pods"].(int64)), nsPods[n])
		wantEqual(t, "services of namespace "+n, float64(row["services"].(int64)), nsSvcs[n])
	}
	wantEqual(t, "pods of "+demo.Slice, nsPods[demo.Slice], float64(len(demo.Services)+2))
	svcs := out["services"]
	wantEqual(t, "services", float64(len(svcs.rows)), float64(len(svcPods)))
	for _, row := range svcs.rows {
		n := row["service"].(string)
		wantEqual(t, "pods of service "+n, float64(row["pods"].(int64)), svcPods[n])
		wantEqual(t, "requests of service "+n, float64(row["requests"].(int64)), requests[n])
	}
	nodes := out["nodes"]
	wantEqual(t, "nodes", float64(len(nodes.rows)), float64(len(nodePods)))
	for _, row := range nodes.rows {
		wantEqual(t, "pods of node "+row["node"].(string), float64(row["pods"].(int64)), nodePods[row["node"].(string)])
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestSchemasAndTables(t *testing.T) {
	e := loadCapture(t)
	r := e.run(t, "px/schemas", nil)["schemas"]
	want := 0
	for _, tb := range e.eng.Store().Tables() {
		want += len(tb.Relation())
	}
	wantEqual(t, "schema rows", float64(len(r.rows)), float64(want))
	r = e.run(t, "px/schemas", map[string]string{"table_name": "http_events"})["schemas"]
	wantEqual(t, "http_events columns", float64(len(r.rows)), float64(len(tables.All["http_events"].Relation)))

	r = e.run(t, "px/tables", nil)["tables"]
	wantColumns(t, "tables", r, "table_name", "table_desc", "batches", "size", "columns")
	wantEqual(t, "tables", float64(len(r.rows)), float64(len(e.eng.Store().Tables())))
}

func TestSourceStats(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/source_stats", nil)
	c := out["counters"]
	if len(c.rows) != 1 {
		t.Fatalf("counters: %d rows, want the socket tracer's latest", len(c.rows))
	}
	var last time.Time
	var ctx string
	for _, row := range e.rows["stirling_error"] {
		if ts := row["time_"].(time.Time); ts.After(last) {
			last, ctx = ts, row["context"].(string)
		}
	}
	var counters map[string]any
	if err := json.Unmarshal([]byte(ctx), &counters); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "bpf_events", float64(c.rows[0]["bpf_events"].(int64)), counters["bpf_events"].(float64))
	if counters["bpf_events"].(float64) == 0 {
		t.Error("the tracer read no event")
	}
	probes := map[string]bool{}
	for _, row := range e.rows["probe_status"] {
		probes[row["tracepoint"].(string)] = true
	}
	p := out["probes"]
	wantEqual(t, "probes", float64(len(p.rows)), float64(len(probes)))
	for _, row := range p.rows {
		if row["ok"] != true {
			t.Errorf("probe %s not ok", row["tracepoint"])
		}
	}
}

func TestDNSData(t *testing.T) {
	e := loadCapture(t)
	out := e.run(t, "px/dns_data", map[string]string{"max_rows": "100000"})
	wantEqual(t, "dns_data rows", float64(len(out["dns_data"].rows)), float64(len(e.rows["dns_events"])))
	clients := 0
	for _, row := range e.rows["dns_events"] {
		if row["trace_role"].(int64) == 1 {
			clients++
		}
	}
	s := out["dns_stats"]
	wantColumns(t, "dns_stats", s, "name", "qtype", "queries", "failed", "latency", "max_latency")
	wantEqual(t, "queries", s.sum("queries"), float64(clients))
	names := s.by("name", "queries")
	for _, svc := range demo.Services {
		if names[svc+"."+demo.Domain] == 0 && svc != demo.Payments {
			t.Errorf("no query for %s.%s: %v", svc, demo.Domain, names)
		}
	}
	for _, row := range out["dns_data"].rows {
		if row["qtype"] == "A" && row["answer"] != "127.0.0.1" && row["rcode"].(int64) == 0 {
			t.Errorf("A answer %v", row["answer"])
		}
	}
}

func TestNetworkStats(t *testing.T) {
	e := loadCapture(t)
	r := e.run(t, "px/network_stats", nil)["network_stats"]
	if len(r.rows) != 1 || r.rows[0]["pod"] != "host network" {
		t.Fatalf("want one row for the host's network: %v", r.rows)
	}
	wantEqual(t, "samples", float64(r.rows[0]["samples"].(int64)), float64(len(e.rows["network_stats"])))
}

// TestEveryScriptRunsOnCapture runs each library script with its defaults
// over the capture, so that a new script cannot go untested.
func TestEveryScriptRunsOnCapture(t *testing.T) {
	e := loadCapture(t)
	all, err := scripts.NewLibrary().List()
	if err != nil {
		t.Fatal(err)
	}
	// The demo shop has no database: those scripts run over generated
	// rows of the database tables.
	db, _ := dbEnv(t, 300)
	dbScripts := map[string]bool{"px/pgsql_stats": true, "px/mysql_stats": true, "px/redis_stats": true}
	// Tables the demo does not fill, whose scripts their own tests run
	// over rows of the real thing.
	ownTests := map[string]string{
		"px/jvm_stats":                       "TestJVMStatsScript (a real JVM)",
		"px/perf_flamegraph":                 "sources/profiler's TestFlamegraphScript (real programs profiled)",
		"px/kafka_overview":                  "TestKafkaOverview (test/kafka's recorded cycles)",
		"px/kafka_consumer_lag":              "TestKafkaConsumerLag (test/kafka's recorded cycles)",
		"px/kafka_producer_consumer_latency": "TestKafkaProducerConsumerLatency (test/kafka's recorded cycles)",
		"px/nats_stats":                      "TestNATSStats (nats.go with nats-server, recorded)",
		"px/amqp_stats":                      "TestAMQPStats (amqp091-go with RabbitMQ, recorded)",
		"px/mongodb_stats":                   "TestMongoDBStats (mongo-go-driver with FerretDB, recorded)",
	}
	for _, s := range all {
		if _, ok := ownTests[s.Name]; ok {
			continue
		}
		env, args := e, map[string]string(nil)
		if dbScripts[s.Name] {
			env, args = db, map[string]string{"start_time": "-1h"}
		}
		out := env.run(t, s.Name, args)
		total := 0
		for _, r := range out {
			total += len(r.rows)
		}
		if total == 0 {
			t.Errorf("%s: no rows over the demo capture", s.Name)
		}
	}
}

func keys(m map[string]result) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
