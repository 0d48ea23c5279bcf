package scripts_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/kafka"
)

// kafkaEnv replays every recording of test/kafka's produce/consume
// cycles (franz-go at each release's versions, sarama, kafka-go, kcat;
// a topic t-NAME and a group g-NAME each) through the Kafka parser, one
// cycle starting every 3 s, and adds a lagging group: copies of the
// franz-go cycle's last OffsetCommit, made earlier and for another
// group, committing offsets short of the log's end.
func kafkaEnv(t *testing.T) (*captureEnv, []map[string]any) {
	t.Helper()
	files, _ := filepath.Glob("../sources/ebpf/protocols/kafka/testdata/*.bin")
	if len(files) < 10 {
		t.Fatalf("%d Kafka recordings in sources/ebpf/protocols/kafka/testdata, want them all", len(files))
	}
	sort.Strings(files)
	eng := newBusEngine(t)
	r := newReplayer(t, eng)
	now := time.Now()
	start := now.Add(-time.Duration(len(files)+1) * 3 * time.Second)
	for i, f := range files {
		r.replay(kafka.Protocol{}, readRecording(t, f, true), 9092, start.Add(time.Duration(i)*3*time.Second), time.Millisecond)
	}
	r.flush()
	rows := storeRows(t, eng, kafka.Table.Name())
	var commit map[string]any
	for _, row := range rows {
		if row["req_cmd"] == int64(8) && strings.Contains(row["req_body"].(string), `"group_id":"g-franz-franz"`) {
			commit = row
		}
	}
	if commit == nil {
		t.Fatal("no OffsetCommit of g-franz-franz in the replayed rows")
	}
	w, err := kafka.Table.Writer(eng.Store().Table(kafka.Table.Name()))
	if err != nil {
		t.Fatal(err)
	}
	offsetRE := regexp.MustCompile(`"committed_offset":\d+`)
	for i, g := range []string{"g-lagging", "g-lagging"} {
		n := 0
		body := offsetRE.ReplaceAllStringFunc(commit["req_body"].(string), func(string) string {
			n++
			return fmt.Sprintf(`"committed_offset":%d`, n-1+i) // the second commit is the one kept
		})
		body = strings.Replace(body, `"group_id":"g-franz-franz"`, `"group_id":"`+g+`"`, 1)
		vals := []any{}
		for _, c := range kafka.Table.Relation() {
			v := commit[c.Name]
			switch c.Name {
			case "time_":
				v = now.Add(-time.Duration(2-i) * time.Second).UnixNano()
			case "req_body":
				v = body
			}
			vals = append(vals, v)
		}
		if err := w.AppendRow(vals...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return &captureEnv{eng: eng, now: now}, storeRows(t, eng, kafka.Table.Name())
}

// kafkaJSON decodes a JSON column; "" is nil.
func kafkaJSON(t *testing.T, s any) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s.(string)), &m); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return m
}

func list(v any) []any            { l, _ := v.([]any); return l }
func object(v any) map[string]any { m, _ := v.(map[string]any); return m }
func number(v any) int64          { f, _ := v.(float64); return int64(f) }

// kafkaPartition is one partition of a message's topics.
type kafkaPartition struct {
	topic string
	index int64
	p     map[string]any
}

func partitionsOf(m map[string]any) []kafkaPartition {
	var out []kafkaPartition
	for _, tp := range list(m["topics"]) {
		name, _ := object(tp)["name"].(string)
		for _, p := range list(object(tp)["partitions"]) {
			out = append(out, kafkaPartition{name, number(object(p)["index"]), object(p)})
		}
	}
	return out
}

func timeOf(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case time.Time:
		return v.UnixNano()
	}
	panic(fmt.Sprintf("time %T", v))
}

// TestKafkaOverview: records and bytes produced and fetched per topic,
// in total and per time bin, as the rows' record sets add up.
func TestKafkaOverview(t *testing.T) {
	env, rows := kafkaEnv(t)
	type sums struct{ pr, pb, fr, fb int64 }
	want := map[string]*sums{}
	bins := map[string]int64{} // bin/topic/direction → records
	const window = 10 * int64(time.Second)
	for _, r := range rows {
		var m map[string]any
		switch r["req_cmd"] {
		case int64(0):
			m = kafkaJSON(t, r["req_body"])
		case int64(1):
			m = kafkaJSON(t, r["resp"])
		default:
			continue
		}
		for _, p := range partitionsOf(m) {
			s := want[p.topic]
			if s == nil {
				s = &sums{}
				want[p.topic] = s
			}
			ms := object(p.p["message_set"])
			dir := "produced"
			if r["req_cmd"] == int64(0) {
				s.pr += number(ms["records"])
				s.pb += number(ms["size"])
			} else {
				dir = "fetched"
				s.fr += number(ms["records"])
				s.fb += number(ms["size"])
			}
			ts := timeOf(r["time_"])
			bins[fmt.Sprintf("%d/%s/%s", ts-ts%window, p.topic, dir)] += number(ms["records"])
		}
	}
	if len(want) < 10 {
		t.Fatalf("%d topics in the recordings", len(want))
	}
	out := env.run(t, "px/kafka_overview", map[string]string{"start_time": "-10m"})
	got := out["kafka_topic_throughput"]
	if len(got.rows) != len(want) {
		t.Errorf("%d topics, want %d", len(got.rows), len(want))
	}
	for _, row := range got.rows {
		s := want[row["topic"].(string)]
		if s == nil {
			t.Errorf("topic %v not in the rows", row["topic"])
			continue
		}
		g := sums{row["produced_records"].(int64), row["produced_bytes"].(int64), row["fetched_records"].(int64), row["fetched_bytes"].(int64)}
		if g != *s {
			t.Errorf("%s: produced %d records %d bytes, fetched %d records %d bytes; want %+v", row["topic"], g.pr, g.pb, g.fr, g.fb, *s)
		}
		// Every cycle produced records and consumed them all.
		if s.pr == 0 || s.fr < s.pr {
			t.Errorf("%s: produced %d records, fetched %d", row["topic"], s.pr, s.fr)
		}
	}
	t.Logf("%d topics, e.g. %v", len(got.rows), got.rows[0])
	ts := out["ts"]
	gotBins := map[string]int64{}
	for _, row := range ts.rows {
		gotBins[fmt.Sprintf("%d/%s/%s", timeOf(row["timestamp"]), row["topic"], row["direction"])] += row["records"].(int64)
	}
	if fmt.Sprint(gotBins) != fmt.Sprint(bins) {
		t.Errorf("time series %v, want %v", gotBins, bins)
	}
	if tr := out["kafka_truncated"]; len(tr.rows) != 0 {
		t.Errorf("truncated: %v", tr.rows)
	}
	if len(out["kafka_clients"].rows) < len(want) {
		t.Errorf("clients: %v", out["kafka_clients"].rows)
	}
}

// TestKafkaConsumerLag: per group, topic and partition, the highest
// committed offset and the highest log end offset seen, and their
// difference. Every recorded group consumed to the end (lag 0); the
// lagging group commits 0, 1, 2 and then 1, 2, 3 of partitions whose log
// ends at 4: lags 3, 2 and 1.
func TestKafkaConsumerLag(t *testing.T) {
	env, rows := kafkaEnv(t)
	type key struct {
		group, topic string
		partition    int64
	}
	committed := map[key]int64{}
	end := map[[2]string]int64{} // topic, partition
	commit := func(k key, off int64) {
		if old, ok := committed[k]; !ok || off > old {
			committed[k] = off
		}
	}
	logEnd := func(topic string, part, off int64) {
		k := [2]string{topic, fmt.Sprint(part)}
		if old, ok := end[k]; !ok || off > old {
			end[k] = off
		}
	}
	for _, r := range rows {
		req, resp := kafkaJSON(t, r["req_body"]), kafkaJSON(t, r["resp"])
		switch r["req_cmd"] {
		case int64(8):
			g, _ := req["group_id"].(string)
			for _, p := range partitionsOf(req) {
				commit(key{g, p.topic, p.index}, number(p.p["committed_offset"]))
			}
		case int64(9):
			g, _ := req["group_id"].(string)
			m := resp
			if gs := list(resp["groups"]); len(gs) > 0 {
				m = object(gs[0])
				g = m["group_id"].(string)
			}
			for _, p := range partitionsOf(m) {
				if off := number(p.p["committed_offset"]); off >= 0 {
					commit(key{g, p.topic, p.index}, off)
				}
			}
		case int64(1):
			for _, p := range partitionsOf(resp) {
				if number(p.p["error_code"]) == 0 {
					logEnd(p.topic, p.index, number(p.p["high_watermark"]))
				}
			}
		case int64(2):
			latest := false
			for _, p := range partitionsOf(req) {
				latest = latest || number(p.p["timestamp"]) == -1
				if number(p.p["timestamp"]) == -2 {
					latest = false
					break
				}
			}
			for _, p := range partitionsOf(resp) {
				if _, ok := p.p["offset"]; latest && ok && number(p.p["error_code"]) == 0 {
					logEnd(p.topic, p.index, number(p.p["offset"]))
				}
			}
		}
	}
	want := map[key][3]int64{}
	lagging := 0
	for k, c := range committed {
		e, ok := end[[2]string{k.topic, fmt.Sprint(k.partition)}]
		if !ok || k.group == "" {
			continue
		}
		want[k] = [3]int64{c, e, max(e-c, 0)}
		if k.group == "g-lagging" {
			lagging++
			if e-c <= 0 {
				t.Errorf("%v: lagging group at %d of %d", k, c, e)
			}
		} else if e != c {
			t.Logf("%v: committed %d of %d", k, c, e)
		}
	}
	if lagging != 3 || len(want) < 30 {
		t.Fatalf("%d partitions with a lag (%d of the lagging group): %v", len(want), lagging, want)
	}
	out := env.run(t, "px/kafka_consumer_lag", map[string]string{"start_time": "-10m"})
	got := out["kafka_partition_lag"]
	if len(got.rows) != len(want) {
		t.Errorf("%d partitions, want %d", len(got.rows), len(want))
	}
	groups := map[[2]string]int64{}
	for _, row := range got.rows {
		k := key{row["group"].(string), row["topic"].(string), row["partition"].(int64)}
		g := [3]int64{row["committed_offset"].(int64), row["log_end_offset"].(int64), row["lag"].(int64)}
		if g != want[k] {
			t.Errorf("%v: committed, end, lag %v, want %v", k, g, want[k])
		}
		groups[[2]string{k.group, k.topic}] += g[2]
	}
	for _, row := range out["kafka_group_lag"].rows {
		k := [2]string{row["group"].(string), row["topic"].(string)}
		if row["total_lag"].(int64) != groups[k] {
			t.Errorf("%v: total lag %v, want %d", k, row["total_lag"], groups[k])
		}
	}
	if len(out["kafka_group_lag"].rows) != len(groups) {
		t.Errorf("%d groups, want %d", len(out["kafka_group_lag"].rows), len(groups))
	}
}

// TestKafkaProducerConsumerLatency: each batch a Produce wrote (topic,
// partition, base offset) is matched to the first Fetch response that
// returned it (fetch offset ≤ base offset < fetch offset + records),
// and its latency is from the Produce request to that response.
func TestKafkaProducerConsumerLatency(t *testing.T) {
	env, rows := kafkaEnv(t)
	type batch struct {
		topic        string
		part, offset int64
		produced     int64
	}
	type fetch struct {
		topic             string
		part, from, count int64
		at                int64
	}
	var batches []batch
	var fetches []fetch
	for _, r := range rows {
		at := timeOf(r["time_"])
		switch r["req_cmd"] {
		case int64(0):
			for _, p := range partitionsOf(kafkaJSON(t, r["resp"])) {
				if number(p.p["error_code"]) == 0 {
					batches = append(batches, batch{p.topic, p.index, number(p.p["base_offset"]), at - r["latency"].(int64)})
				}
			}
		case int64(1):
			from := map[[2]string]int64{}
			for _, p := range partitionsOf(kafkaJSON(t, r["req_body"])) {
				from[[2]string{p.topic, fmt.Sprint(p.index)}] = number(p.p["fetch_offset"])
			}
			for _, p := range partitionsOf(kafkaJSON(t, r["resp"])) {
				f, ok := from[[2]string{p.topic, fmt.Sprint(p.index)}]
				if n := number(object(p.p["message_set"])["records"]); ok && n > 0 {
					fetches = append(fetches, fetch{p.topic, p.index, f, n, at})
				}
			}
		}
	}
	type stat struct{ n, max int64 }
	want := map[string]*stat{}
	for _, b := range batches {
		first := int64(-1)
		for _, f := range fetches {
			if f.topic == b.topic && f.part == b.part && f.from <= b.offset && b.offset < f.from+f.count && f.at >= b.produced && (first < 0 || f.at < first) {
				first = f.at
			}
		}
		if first < 0 {
			continue
		}
		s := want[b.topic]
		if s == nil {
			s = &stat{}
			want[b.topic] = s
		}
		s.n++
		s.max = max(s.max, first-b.produced)
	}
	if len(want) < 10 {
		t.Fatalf("batches fetched in %d topics: %v", len(want), want)
	}
	out := env.run(t, "px/kafka_producer_consumer_latency", map[string]string{"start_time": "-10m"})
	got := out["kafka_topic_latency"]
	if len(got.rows) != len(want) {
		t.Errorf("%d topics, want %d", len(got.rows), len(want))
	}
	for _, row := range got.rows {
		w := want[row["topic"].(string)]
		if w == nil {
			t.Errorf("topic %v", row["topic"])
			continue
		}
		if row["batches"].(int64) != w.n || row["latency_max"].(int64) != w.max {
			t.Errorf("%v: %v batches, latency max %v; want %d, %d", row["topic"], row["batches"], row["latency_max"], w.n, w.max)
		}
		if p50 := row["latency_p50"].(int64); p50 <= 0 || p50 > w.max {
			t.Errorf("%v: p50 %d, max %d", row["topic"], p50, w.max)
		}
	}
	var n int64
	for _, row := range out["kafka_partition_latency"].rows {
		n += row["batches"].(int64)
	}
	var wn int64
	for _, w := range want {
		wn += w.n
	}
	if n != wn {
		t.Errorf("%d batches by partition, want %d", n, wn)
	}
}
