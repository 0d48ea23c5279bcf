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
)

type row = map[string]any

func sides(port int) []struct {
	name string
	keep func(row) bool
} {
	return []struct {
		name string
		keep func(row) bool
	}{{"client", ebpftest.ClientRow(port)}, {"server", ebpftest.ServerRow(port)}}
}

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

func checkRows(t *testing.T, side string, got, wants []row) {
	t.Helper()
	if len(got) != len(wants) {
		for _, r := range got {
			t.Logf("%s row %q %q %q", side, r["req_cmd"], r["req_args"], r["resp"])
		}
		t.Fatalf("%s: %d rows, want %d", side, len(got), len(wants))
	}
	for i, w := range wants {
		ebpftest.Expect(t, got[i], w)
		if lat := got[i]["latency"].(int64); lat <= 0 || lat > int64(5*time.Second) {
			t.Errorf("%s row %d: latency %d", side, i, lat)
		}
	}
}

// commands selects a side's rows but redis-cli's own COMMAND DOCS and
// HELLO.
func commands(keep func(row) bool) func(row) bool {
	return func(r row) bool { return keep(r) && r["req_cmd"] != "COMMAND DOCS" && r["req_cmd"] != "HELLO" }
}

// TestTraceRedisCLI traces redis-cli (RESP2, then RESP3) and the server:
// both ends are traced, so each command is one row, the server's.
func TestTraceRedisCLI(t *testing.T) {
	s := dbtest.StartRedis(t)
	// Every process: redis-cli's pid is not known before it starts.
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}})
	cli := dbtest.Need(t, "redis-cli")
	for _, proto := range []string{"-2", "-3"} {
		if out, err := dbtest.Hold(t, nil, cliInput, cli, "-p", strconv.Itoa(s.Port), proto).Run(); err != nil {
			t.Fatalf("redis-cli: %v %s", err, out)
		}
	}
	wants := append(cliWants(`["f","1"]`), cliWants(`{"f":"1"}`)...)
	got := ebpftest.WaitRows(t, store, "redis_events", len(wants), 5*time.Second, commands(ebpftest.ServerRow(s.Port)))
	checkRows(t, "server", got, wants)
	if n := len(ebpftest.WaitRows(t, store, "redis_events", 0, 0, ebpftest.ClientRow(s.Port))); n != 0 {
		t.Errorf("%d client rows, want none (the server is traced)", n)
	}
}

// TestTraceRedisCLIClientSide traces redis-cli alone: its side makes the
// rows.
func TestTraceRedisCLIClientSide(t *testing.T) {
	s := dbtest.StartRedis(t)
	c := dbtest.Hold(t, nil, cliInput, dbtest.Need(t, "redis-cli"), "-p", strconv.Itoa(s.Port))
	_, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{uint32(c.Pid)}})
	if out, err := c.Run(); err != nil {
		t.Fatalf("redis-cli: %v %s", err, out)
	}
	wants := cliWants(`["f","1"]`)
	got := ebpftest.WaitRows(t, store, "redis_events", len(wants), 5*time.Second, commands(ebpftest.ClientRow(s.Port)))
	checkRows(t, "client", got, wants)
}

// TestTraceRedisBenchmark traces redis-benchmark with 16 pipelined
// commands per write at its full rate, and the server: every SET and GET
// it sends must be a row.
func TestTraceRedisBenchmark(t *testing.T) {
	s := dbtest.StartRedis(t)
	tr, store := ebpftest.Tracer(t, ebpf.Config{OnlyPIDs: []uint32{}})
	const n = 20000
	dbtest.Run(t, nil, dbtest.Need(t, "redis-benchmark"), "-p", strconv.Itoa(s.Port), "-n", strconv.Itoa(n), "-P", "16", "-c", "4", "-t", "set,get", "-q")
	for _, side := range sides(s.Port)[1:] { // both traced: the server's rows
		keep := func(r row) bool { return side.keep(r) && (r["req_cmd"] == "SET" || r["req_cmd"] == "GET") }
		got := ebpftest.WaitRows(t, store, "redis_events", 2*n, 10*time.Second, keep)
		bad := 0
		for _, r := range got {
			if r["req_cmd"] == "SET" && r["resp"] != "OK" || r["req_cmd"] == "GET" && !strings.HasPrefix(r["resp"].(string), "VXK") {
				bad++
			}
		}
		t.Logf("%s: %d rows for %d commands, %d wrong", side.name, len(got), 2*n, bad)
		if len(got) != 2*n || bad != 0 {
			t.Errorf("%s: %d rows (%d wrong), want %d", side.name, len(got), bad, 2*n)
		}
	}
	st := tr.Stats()
	t.Logf("lost events %d, redis counters: parse_errors %d unmatched %d", st.LostEvents, st.Counters["redis.parse_errors"], st.Counters["redis.unmatched_responses"])
}
