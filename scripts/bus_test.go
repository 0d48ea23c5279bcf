package scripts_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http2"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/nats"
)

// sessionsEnv replays each recording sessions times (a connection each,
// one every 7 s, so that they fall in several time bins) through p's
// parser and returns the engine and the rows of table.
func sessionsEnv(t *testing.T, p protocols.Protocol, table string, port uint16, sessions int, files ...string) (*captureEnv, []map[string]any) {
	t.Helper()
	eng := newBusEngine(t)
	r := newReplayer(t, eng)
	now := time.Now()
	start := now.Add(-time.Duration(sessions+1) * 7 * time.Second)
	for i := 0; i < sessions; i++ {
		for _, f := range files {
			r.replay(p, readRecording(t, f, false), port, start.Add(time.Duration(i)*7*time.Second), 100*time.Microsecond)
		}
	}
	r.flush()
	rows := storeRows(t, eng, table)
	if len(rows) == 0 {
		t.Fatalf("no rows in %s", table)
	}
	return &captureEnv{eng: eng, now: now}, rows
}

// binOf is a time's 10 s bin.
func binOf(v any) int64 {
	ts := timeOf(v)
	return ts - ts%int64(10*time.Second)
}

// TestNATSStats: per subject, the PUB and HPUB rows (published) and MSG
// and HMSG rows (delivered) of nats.go's sessions with nats-server, their
// payload sizes, per 10 s bin; the -ERR answers.
func TestNATSStats(t *testing.T) {
	env, rows := sessionsEnv(t, nats.Protocol{}, nats.Table.Name(), 4222, 20,
		"../sources/ebpf/protocols/nats/testdata/nats_go.bin", "../sources/ebpf/protocols/nats/testdata/nats_go_verbose.bin")
	type counts struct{ pub, msg, pubBytes, msgBytes int64 }
	want := map[string]*counts{}
	bins := map[string][2]int64{}
	errs := 0
	for _, r := range rows {
		body := kafkaJSON(t, r["body"])
		cmd := r["cmd"].(string)
		if cmd == "-ERR" || (len(r["resp"].(string)) >= 4 && r["resp"].(string)[:4] == "-ERR") {
			errs++
		}
		if cmd != "PUB" && cmd != "HPUB" && cmd != "MSG" && cmd != "HMSG" {
			continue
		}
		subj := body["subject"].(string)
		c := want[subj]
		if c == nil {
			c = &counts{}
			want[subj] = c
		}
		k := fmt.Sprintf("%d/%s", binOf(r["time_"]), subj)
		b := bins[k]
		if cmd == "PUB" || cmd == "HPUB" {
			c.pub++
			c.pubBytes += number(body["payload_size"])
			b[0]++
		} else {
			c.msg++
			c.msgBytes += number(body["payload_size"])
			b[1]++
		}
		bins[k] = b
	}
	if len(want) < 3 || errs == 0 {
		t.Fatalf("subjects %v, %d errors: the recordings have changed", want, errs)
	}
	out := env.run(t, "px/nats_stats", map[string]string{"start_time": "-10m"})
	got := out["nats_subjects"]
	if len(got.rows) != len(want) {
		t.Errorf("%d subjects, want %d", len(got.rows), len(want))
	}
	for _, row := range got.rows {
		w := want[row["subject"].(string)]
		g := counts{row["published"].(int64), row["delivered"].(int64), row["published_bytes"].(int64), row["delivered_bytes"].(int64)}
		if w == nil || g != *w {
			t.Errorf("%v: %+v, want %+v", row["subject"], g, w)
		}
	}
	gotBins := map[string][2]int64{}
	for _, row := range out["ts"].rows {
		gotBins[fmt.Sprintf("%d/%s", timeOf(row["timestamp"]), row["subject"])] = [2]int64{row["published"].(int64), row["delivered"].(int64)}
	}
	if fmt.Sprint(gotBins) != fmt.Sprint(bins) {
		t.Errorf("time series %v, want %v", gotBins, bins)
	}
	var gotErrs int64
	for _, row := range out["nats_errors"].rows {
		gotErrs += row["count"].(int64)
	}
	if gotErrs != int64(errs) {
		t.Errorf("%d errors, want %d", gotErrs, errs)
	}
}

// TestAMQPStats: publishes per exchange and routing key (Basic.Publish
// rows), deliveries per queue (Basic.Deliver by its consumer's
// Basic.Consume on the connection and channel, Basic.GetOk by its Get),
// from amqp091-go's sessions with RabbitMQ.
func TestAMQPStats(t *testing.T) {
	env, rows := sessionsEnv(t, amqp.Protocol{}, amqp.Table.Name(), 5672, 10, "../sources/ebpf/protocols/amqp/testdata/amqp091_go.bin")
	type route struct{ exchange, key string }
	published := map[route][2]int64{}
	consumers := map[string]string{} // connection, channel, consumer tag → queue
	conn := func(r map[string]any) string {
		return fmt.Sprint(r["remote_port"], "/", r["channel"])
	}
	for _, r := range rows {
		if r["req_class_id"] == int64(60) && r["req_method_id"] == int64(20) && r["resp_method_id"] == int64(21) {
			consumers[conn(r)+"/"+kafkaJSON(t, r["resp_msg"])["consumer_tag"].(string)] = kafkaJSON(t, r["req_msg"])["queue"].(string)
		}
	}
	type dq struct{ queue, exchange, key string }
	delivered := map[dq][3]int64{} // count, by get, bytes
	for _, r := range rows {
		switch {
		case r["req_class_id"] == int64(60) && r["req_method_id"] == int64(40):
			m := kafkaJSON(t, r["req_msg"])
			k := route{m["exchange"].(string), m["routing_key"].(string)}
			p := published[k]
			published[k] = [2]int64{p[0] + 1, p[1] + number(m["body_size"])}
		case r["resp_class_id"] == int64(60) && (r["resp_method_id"] == int64(60) || r["resp_method_id"] == int64(71)):
			m := kafkaJSON(t, r["resp_msg"])
			var q string
			get := int64(0)
			if r["resp_method_id"] == int64(60) {
				q = consumers[conn(r)+"/"+m["consumer_tag"].(string)]
			} else {
				q, get = kafkaJSON(t, r["req_msg"])["queue"].(string), 1
			}
			k := dq{q, m["exchange"].(string), m["routing_key"].(string)}
			d := delivered[k]
			delivered[k] = [3]int64{d[0] + 1, d[1] + get, d[2] + number(m["body_size"])}
		}
	}
	if len(published) < 2 || len(delivered) < 2 {
		t.Fatalf("published %v, delivered %v: the recording has changed", published, delivered)
	}
	out := env.run(t, "px/amqp_stats", map[string]string{"start_time": "-10m"})
	got := out["amqp_publishes"]
	if len(got.rows) != len(published) {
		t.Errorf("%d routes, want %d (%v)", len(got.rows), len(published), published)
	}
	for _, row := range got.rows {
		k := route{row["exchange"].(string), row["routing_key"].(string)}
		if g := [2]int64{row["published"].(int64), row["bytes"].(int64)}; g != published[k] {
			t.Errorf("%v: published %v, want %v", k, g, published[k])
		}
	}
	got = out["amqp_deliveries"]
	if len(got.rows) != len(delivered) {
		t.Errorf("%d deliveries, want %d (%v)", len(got.rows), len(delivered), delivered)
	}
	for _, row := range got.rows {
		k := dq{row["queue"].(string), row["exchange"].(string), row["routing_key"].(string)}
		if k.queue == "" {
			t.Errorf("a delivery without its queue: %v", row)
		}
		if g := [3]int64{row["delivered"].(int64), row["by_get"].(int64), row["bytes"].(int64)}; g != delivered[k] {
			t.Errorf("%v: delivered %v, want %v", k, g, delivered[k])
		}
	}
	var n, wn int64
	for _, row := range out["messages_per_s"].rows {
		n += row["messages"].(int64)
	}
	for _, p := range published {
		wn += p[0]
	}
	for _, d := range delivered {
		wn += d[0]
	}
	if n != wn {
		t.Errorf("time series: %d messages, want %d", n, wn)
	}
}

// TestGRPCStats: calls, error rate, statuses and latency per gRPC method,
// from grpc-go's unary and streaming calls (one failing with NOT_FOUND,
// one UNIMPLEMENTED) recorded by the HTTP/2 parser's live test.
func TestGRPCStats(t *testing.T) {
	env, rows := sessionsEnv(t, http2.Protocol{}, "http_events", 50051, 30, "../sources/ebpf/protocols/http2/testdata/grpc.bin")
	type stat struct {
		calls, failed, maxLat int64
		statuses              map[string]int64
	}
	want := map[string]*stat{}
	names := map[string]string{"0": "OK", "5": "NOT_FOUND", "12": "UNIMPLEMENTED"}
	for _, r := range rows {
		if r["content_type"] != int64(2) {
			continue
		}
		path := r["req_path"].(string)
		s := want[path]
		if s == nil {
			s = &stat{statuses: map[string]int64{}}
			want[path] = s
		}
		code := kafkaJSON(t, r["resp_headers"])["grpc-status"].(string)
		if names[code] == "" {
			t.Fatalf("%s: grpc-status %s", path, code)
		}
		s.calls++
		if code != "0" {
			s.failed++
		}
		s.statuses[names[code]]++
		s.maxLat = max(s.maxLat, r["latency"].(int64))
	}
	if len(want) < 4 {
		t.Fatalf("methods %v: the recording has changed", want)
	}
	out := env.run(t, "px/grpc_stats", map[string]string{"start_time": "-10m"})
	got := out["grpc_methods"]
	if len(got.rows) != len(want) {
		t.Errorf("%d methods, want %d", len(got.rows), len(want))
	}
	for _, row := range got.rows {
		path := "/" + row["service"].(string) + "/" + row["method"].(string)
		w := want[path]
		if w == nil {
			t.Errorf("method %s", path)
			continue
		}
		rate := float64(w.failed) / float64(w.calls)
		if row["calls"].(int64) != w.calls || row["error_rate"].(float64) != rate {
			t.Errorf("%s: %v calls, error rate %v; want %d, %v", path, row["calls"], row["error_rate"], w.calls, rate)
		}
		if p99 := row["latency_p99"].(int64); p99 <= 0 || p99 > w.maxLat {
			t.Errorf("%s: p99 %d, max %d", path, p99, w.maxLat)
		}
	}
	for _, row := range out["grpc_status_codes"].rows {
		path := "/" + row["service"].(string) + "/" + row["method"].(string)
		if w := want[path]; w == nil || row["calls"].(int64) != w.statuses[row["grpc_status"].(string)] {
			t.Errorf("%s %v: %v calls, want %v", path, row["grpc_status"], row["calls"], want[path])
		}
	}
	var calls int64
	for _, row := range out["ts"].rows {
		calls += row["calls"].(int64)
	}
	if n := int64(len(rows)); calls != n {
		t.Errorf("time series: %d calls, want %d", calls, n)
	}
}
