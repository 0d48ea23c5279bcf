package redis_test

// Real traffic: a Redis server and its clients (redis-cli, in RESP2 and
// RESP3, and redis-benchmark, pipelined) on 127.0.0.1, traced by the
// socket tracer on both sides.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf"
	"github.com/pxq-dev/pxq/sources/ebpf/ebpftest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtrace"
)

type row = map[string]any

const cliInput = "SET k v\nGET k\nGET nope\nINCR k\nHSET h f 1\nHGETALL h\nDEL k h\n"

func cliWants(hgetall string) []row {
	return []row{
		{"req_cmd": "SET", "req_args": `["k","v"]`, "resp": "OK"},
		{"req_cmd": "GET", "req_args": `["k"]`, "resp": "v"},
		{"req_cmd": "GET", "req_args": `["nope"]`, "resp": "<NULL>"},
		{"req_cmd": "INCR", "req_args": `["k"]`, "resp": "ERR value is not an integer or out of range"},
		{"req_cmd": "HSET", "req_args": `["h","f","1"]`, "resp": "1"},
		{"req_cmd": "HGETALL", "req_args": `["h"]`, "resp": hgetall},
		{"req_cmd": "DEL", "req_args": `["k","h"]`, "resp": "2"},
	}
}

// checkRows checks the rows traced on one side.
func checkRows(t *testing.T, side string, got, wants []row) {
	t.Helper()
	dbtest.ExpectTraced(t, side, got, wants, nil, "req_cmd", "req_args", "resp")
}

// command selects the rows but those of redis-cli's own COMMAND DOCS and
// HELLO.
func command(r row) bool { return r["req_cmd"] != "COMMAND DOCS" && r["req_cmd"] != "HELLO" }

// TestTraceRedisCLI traces redis-cli (RESP2, then RESP3) and the server:
// both ends are traced, so each command is one row, the server's.
func TestTraceRedisCLI(t *testing.T) {
	s := dbtest.StartRedis(t)
	cli := dbtest.Need(t, "redis-cli")
	wants := append(cliWants(`["f","1"]`), cliWants(`{"f":"1"}`)...)
	r := dbtrace.Run(t, dbtrace.Want{Table: "redis_events", Port: s.Port, N: len(wants), Keep: command}, dbtrace.Both,
		dbtest.Hold(t, nil, cliInput, cli, "-p", strconv.Itoa(s.Port), "-2"),
		dbtest.Hold(t, nil, cliInput, cli, "-p", strconv.Itoa(s.Port), "-3"))
	if r.Err != nil {
		t.Fatalf("redis-cli: %v %s", r.Err, r.Out)
	}
	checkRows(t, "server", r.Rows, wants)
}

// TestTraceRedisCLIClientSide traces redis-cli alone: its side makes the
// rows.
func TestTraceRedisCLIClientSide(t *testing.T) {
	s := dbtest.StartRedis(t)
	c := dbtest.Hold(t, nil, cliInput, dbtest.Need(t, "redis-cli"), "-p", strconv.Itoa(s.Port))
	wants := cliWants(`["f","1"]`)
	r := dbtrace.Run(t, dbtrace.Want{Table: "redis_events", Port: s.Port, N: len(wants), Keep: command}, dbtrace.Client, c)
	if r.Err != nil {
		t.Fatalf("redis-cli: %v %s", r.Err, r.Out)
	}
	checkRows(t, "client", r.Rows, wants)
}

// TestTraceRedisBenchmark traces redis-benchmark with 16 pipelined
// commands per write at its full rate, and the server: every SET and GET
// it sends must be a row.
func TestTraceRedisBenchmark(t *testing.T) {
	s := dbtest.StartRedis(t)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}})
	const n = 20000
	dbtest.Run(t, nil, dbtest.Need(t, "redis-benchmark"), "-p", strconv.Itoa(s.Port), "-n", strconv.Itoa(n), "-P", "16", "-c", "4", "-t", "set,get", "-q")
	// Both ends are traced: the server's rows.
	server := ebpftest.ServerRow(s.Port)
	keep := func(r row) bool { return server(r) && (r["req_cmd"] == "SET" || r["req_cmd"] == "GET") }
	got := ebpftest.WaitRows(t, store, "redis_events", 2*n, 10*time.Second, keep)
	bad := 0
	for _, r := range got {
		if r["req_cmd"] == "SET" && r["resp"] != "OK" || r["req_cmd"] == "GET" && !strings.HasPrefix(r["resp"].(string), "VXK") {
			bad++
		}
	}
	t.Logf("server: %d rows for %d commands, %d wrong", len(got), 2*n, bad)
	if len(got) != 2*n || bad != 0 {
		t.Errorf("server: %d rows (%d wrong), want %d", len(got), bad, 2*n)
	}
	st := tr.Stats()
	t.Logf("lost events %d, redis counters: parse_errors %d unmatched %d", st.LostEvents, st.Counters["redis.parse_errors"], st.Counters["redis.unmatched_responses"])
}
