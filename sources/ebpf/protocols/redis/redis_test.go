package redis

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/types"
)

// target is the parser under test, with its server on Redis's port.
var target = dbtest.Target{Protocol: Protocol{}, Port: 6379}

// harness is one connection's parser, traced on one side, with its rows
// in a real redis_events table (target.Side), fed RESP as text.
type harness struct{ *dbtest.Side }

func newHarness(t testing.TB, role protocols.Role, cfg protocols.Config) harness {
	return harness{target.Side(t, role, cfg)}
}

// send feeds b as written by the client (toServer) or the server, in
// pieces of split bytes (all at once when split is 0).
func (h harness) send(toServer bool, b string, split int) { h.Send(toServer, []byte(b), split) }

// TestReplay replays the recorded redis-cli sessions (RESP2, RESP3,
// subscribers) as read and cut at every byte and at odd sizes, on both
// sides.
func TestReplay(t *testing.T) {
	for _, c := range []struct {
		file string
		rows []want
	}{
		{"redis_cli", cliRows}, {"redis_cli_resp3", cliRESP3Rows},
		{"pubsub-2", pubsubRows(false)}, {"pubsub-3", pubsubRows(true)},
	} {
		target.CheckReplay(t, c.file, dbtest.Replay(t, "testdata/"+c.file+".bin"), []int{0, 1, 3, 7, 1000},
			func(rows []map[string]any) { check(t, rows, c.rows) })
	}
}

func TestEveryColumn(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, dbtest.Config)
	h.Conn.UPID = types.UInt128Value{High: 3, Low: 4}
	h.send(true, "*2\r\n$3\r\nget\r\n$1\r\nk\r\n", 0)
	start := h.TS
	h.send(false, "$1\r\nv\r\n", 0)
	dbtest.CheckEveryColumn(t, h.Rows(), Table, map[string]any{
		"time_": h.TS, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(6379),
		"trace_role": int64(2), "encrypted": false,
		"req_cmd": "GET", "req_args": `["k"]`, "resp": "v", "latency": h.TS - start,
	})
}

// TestReplyTypes renders every RESP2 and RESP3 type, nested, with
// attributes, nulls and an inline command.
func TestReplyTypes(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, dbtest.Config)
	cases := []struct{ req, resp string }{
		{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"},
		{"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n", "_\r\n"},
		{"*1\r\n$4\r\nTIME\r\n", "*2\r\n$10\r\n1700000000\r\n:12\r\n"},
		{"*1\r\n$1\r\nA\r\n", "%2\r\n+k\r\n,3.14\r\n$1\r\nb\r\n#t\r\n"},
		{"*1\r\n$1\r\nB\r\n", "~2\r\n(12345678901234567890\r\n=15\r\ntxt:Some string\r\n"},
		{"*1\r\n$1\r\nC\r\n", "|1\r\n+ttl\r\n:3\r\n*1\r\n*2\r\n_\r\n*-1\r\n"},
		{"*1\r\n$1\r\nD\r\n", "!21\r\nSYNTAX invalid syntax\r\n"},
		{"*1\r\n$1\r\nE\r\n", "*-1\r\n"},
		{"*1\r\n$1\r\nF\r\n", "=15\r\ntxt:Some string\r\n"},
		{"*1\r\n$1\r\nG\r\n", "*3\r\n$1\r\n\"\r\n$2\r\n\n\x01\r\n$3\r\n\xff\xfe\xfd\r\n"},
		{"set a \"b\"\r\n", "+OK\r\n"},
	}
	for _, c := range cases {
		h.send(true, c.req, 0)
		h.send(false, c.resp, 0)
	}
	check(t, h.Rows(), []want{
		{"PING", "[]", "PONG"},
		{"GET", `["x"]`, "<NULL>"},
		{"TIME", "[]", `["1700000000","12"]`},
		{"A", "[]", `{"k":"3.14","b":"true"}`},
		{"B", "[]", `["12345678901234567890","Some string"]`},
		{"C", "[]", `[["<NULL>","[NULL]"]]`},
		{"D", "[]", "SYNTAX invalid syntax"},
		{"E", "[]", "[NULL]"},
		{"F", "[]", "Some string"},
		{"G", "[]", `["\"","\n\u0001","\ufffd\ufffd\ufffd"]`},
		{"SET", `["a","\"b\""]`, "OK"},
	})
	for _, r := range h.Rows() {
		if s := r["resp"].(string); strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{") {
			if s != "[NULL]" && !json.Valid([]byte(s)) {
				t.Errorf("resp %q is not JSON", s)
			}
		}
		if !json.Valid([]byte(r["req_args"].(string))) {
			t.Errorf("req_args %q is not JSON", r["req_args"])
		}
	}
}

// TestPipelinedAndSplit: many commands in one write, their replies in
// one write, cut at every size.
func TestPipelinedAndSplit(t *testing.T) {
	var req, resp strings.Builder
	var wants []want
	for i := 0; i < 20; i++ {
		k := strings.Repeat("k", i)
		req.WriteString("*2\r\n$3\r\nGET\r\n$" + itoa(len(k)) + "\r\n" + k + "\r\n")
		resp.WriteString("$" + itoa(i) + "\r\n" + strings.Repeat("v", i) + "\r\n")
		wants = append(wants, want{"GET", `["` + k + `"]`, strings.Repeat("v", i)})
	}
	for _, split := range []int{0, 1, 2, 5, 13} {
		for _, role := range dbtest.Roles {
			h := newHarness(t, role, dbtest.Config)
			h.send(true, req.String(), split)
			h.send(false, resp.String(), split)
			check(t, h.Rows(), wants)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestTruncationAndGaps: a large value is kept to the bound; bytes lost
// inside it keep the row; lost across messages, the next reply pairs
// with the last command sent before it.
func TestTruncationAndGaps(t *testing.T) {
	cfg := dbtest.Config
	cfg.MaxBodyBytes, cfg.MaxHeaderBytes = 64, 64
	h := newHarness(t, protocols.RoleClient, cfg)
	big := strings.Repeat("x", 10000)
	h.send(true, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000\r\n"+big+"\r\n", 0)
	h.send(false, "+OK\r\n", 0)
	h.send(true, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 0)
	reply := "$10000\r\n" + big + "\r\n"
	h.send(false, reply[:100], 0)
	h.Parser.Gap(protocols.Ingress, 5000)
	h.send(false, reply[5100:], 0)
	h.send(true, "*1\r\n$4\r\nPING\r\n", 0)
	h.send(false, "+PO", 0)
	h.Parser.Gap(protocols.Ingress, 10)
	h.send(true, "*1\r\n$4\r\nPING\r\n", 0)
	h.send(false, "+PONG\r\n", 0)
	rows := h.Rows()
	check(t, rows, []want{
		{"SET", `["k","` + big[:57] + `]`, "OK"},
		{"GET", `["k"]`, big[:64]},
		{"PING", "[]", "PONG"},
	})
	if h.Counts["gap_resyncs"] != 1 || h.Counts["requests_lost_in_gap"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestUnsubscribeAllAndMonitor: an UNSUBSCRIBE without channels ends at
// a count of 0; MONITOR's stream answers nothing.
func TestUnsubscribeAllAndMonitor(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, dbtest.Config)
	h.send(true, "*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\nn*\r\n", 0)
	h.send(false, "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n", 0)
	h.send(false, "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$2\r\nn1\r\n$2\r\nhi\r\n", 0)
	h.send(true, "*1\r\n$12\r\nPUNSUBSCRIBE\r\n", 0)
	h.send(false, "*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n", 0)
	// Not subscribed any more: an array that looks like a message is a
	// reply.
	h.send(true, "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n", 0)
	h.send(false, "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n", 0)
	h.send(true, "*1\r\n$7\r\nMONITOR\r\n", 0)
	h.send(false, "+OK\r\n+1700000000.123456 [0 127.0.0.1:5000] \"get\" \"k\"\r\n", 0)
	check(t, h.Rows(), []want{
		{"PSUBSCRIBE", `["n*"]`, `["psubscribe","n*","1"]`},
		{"PUSH PUB", "", `["pmessage","n*","n1","hi"]`},
		{"PUNSUBSCRIBE", "[]", `["punsubscribe","n*","0"]`},
		{"LRANGE", `["l","0","-1"]`, `["message","a","b"]`},
		{"MONITOR", "[]", "OK"},
	})
	if h.Counts["unmatched_responses"] != 0 {
		t.Errorf("counters %v", h.Counts)
	}
}

func TestCloseAndTimeout(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, dbtest.Config)
	h.send(true, "*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n", 0)
	h.Parser.Poll(h.TS + dbtest.Config.RequestTimeout.Nanoseconds() + 1)
	if h.Parser.Pending() != 0 || h.Counts["requests_timed_out"] != 1 {
		t.Fatalf("pending %d counters %v", h.Parser.Pending(), h.Counts)
	}
	h.send(true, "*1\r\n$4\r\nPING\r\n", 0)
	h.Parser.Close(h.TS)
	if h.Counts["closed_before_response"] != 1 || len(h.Rows()) != 0 {
		t.Fatalf("counters %v", h.Counts)
	}
}
