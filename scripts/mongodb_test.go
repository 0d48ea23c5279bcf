package scripts_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/mongodb"
)

// TestMongoDBStats: px/mongodb_stats over the mongo-go-driver's session
// with FerretDB (protocols/mongodb's recording), replayed 5 times: per
// collection and command, the commands and those that failed, counted
// here from the rows; the handshakes left out.
func TestMongoDBStats(t *testing.T) {
	env, rows := sessionsEnv(t, mongodb.Protocol{}, "mongodb_events", 27017, 5, "../sources/ebpf/protocols/mongodb/testdata/session.bin")
	first := regexp.MustCompile(`^\{"[^"]*":"([^"]*)"`)
	type stat struct{ n, failed int64 }
	want := map[string]*stat{}
	for _, r := range rows {
		cmd, body := r["req_cmd"].(string), r["req_body"].(string)
		if cmd == "isMaster" || cmd == "hello" {
			continue
		}
		coll := ""
		if cmd == "getMore" {
			coll = kafkaJSON(t, body)["collection"].(string)
		} else if m := first.FindStringSubmatch(body); m != nil {
			coll = m[1]
		}
		k := coll + " " + cmd
		if want[k] == nil {
			want[k] = &stat{}
		}
		want[k].n++
		if r["resp_status"] == "ok: 0" || strings.Contains(r["resp_body"].(string), `"writeErrors":`) {
			want[k].failed++
		}
	}
	if want["items find"] == nil || want["items getMore"].n != 10 || want["items insert"].failed != 5 || want[" nosuchcmd"].failed != 5 {
		t.Fatalf("the recording has changed: %v", want)
	}
	out := env.run(t, "px/mongodb_stats", map[string]string{"start_time": "-10m", "min_latency_ms": "0"})
	got := out["mongodb_commands"]
	if len(got.rows) != len(want) {
		t.Errorf("%d rows, want %d", len(got.rows), len(want))
	}
	for _, row := range got.rows {
		k := row["collection"].(string) + " " + row["req_cmd"].(string)
		w := want[k]
		if w == nil {
			t.Errorf("row %q", k)
			continue
		}
		if row["commands"].(int64) != w.n || row["error_rate"].(float64) != float64(w.failed)/float64(w.n) {
			t.Errorf("%s: %v commands, error rate %v; want %d, %d failed", k, row["commands"], row["error_rate"], w.n, w.failed)
		}
		if db := row["database"]; db != "pxq" && db != "admin" {
			t.Errorf("%s: database %v", k, db)
		}
	}
	var n, all int64
	for _, row := range out["mongodb_latency"].rows {
		n += row["commands"].(int64)
	}
	for _, w := range want {
		all += w.n
	}
	if n != all {
		t.Errorf("latency series: %d commands, want %d", n, all)
	}
	if slow := len(out["mongodb_slowest"].rows); slow != 20 {
		t.Errorf("slowest: %d rows, want the 20 of max_rows", slow)
	}
}
