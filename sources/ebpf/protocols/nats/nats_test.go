package nats

import (
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/nats/natstest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/types"
)

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// harness is one connection's parser, traced on one side, with its rows
// in a real nats_events.beta table.
type harness struct {
	*protocoltest.Harness
	c    *conn
	role protocols.Role
	ts   int64
}

func newHarness(t testing.TB, role protocols.Role, cfg protocols.Config) *harness {
	h := protocoltest.New(t, Protocol{}, protocols.Conn{
		Role: role, Stream: true,
		Local: netip.MustParseAddrPort("127.0.0.1:4222"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
	}, cfg)
	return &harness{Harness: h, c: h.Parser.(*conn), role: role, ts: 1_000_000}
}

// send feeds b as written by the client (toServer) or the server, in
// pieces of split bytes (all at once when split is 0), 1 µs apart.
func (h *harness) send(toServer bool, b string, split int) {
	for len(b) > 0 {
		n := len(b)
		if split > 0 {
			n = min(split, n)
		}
		h.ts += 1000
		h.c.Data(dbtest.Segment(dbtest.Chunk{ToServer: toServer, TS: h.ts, Data: []byte(b[:n])}, h.role))
		b = b[n:]
	}
}

// gap says n bytes written by the client (toServer) or the server were
// lost.
func (h *harness) gap(toServer bool, n int) {
	dir := protocols.Ingress
	if toServer == (h.role == protocols.RoleClient) {
		dir = protocols.Egress
	}
	h.c.Gap(dir, n)
}

func (h *harness) rows() []map[string]any { return h.Rows(Table.Name()) }

// TestReplay replays the sessions of nats.go with nats-server recorded by
// realclient (a plain and a verbose client), whole, cut at every byte and
// at odd sizes, on both sides, and checks their rows against those the
// client's operations should make.
func TestReplay(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bin")
	if len(files) == 0 {
		t.Fatal("no recordings in testdata")
	}
	for _, f := range files {
		chunks := dbtest.Replay(t, f)
		wants := natstest.Load(t, strings.TrimSuffix(f, ".bin")+".rows.json")
		for _, role := range roles {
			for _, split := range []int{0, 1, 2, 3, 7, 100, 1000} {
				h := newHarness(t, role, testConfig)
				for _, c := range chunks {
					h.send(c.ToServer, string(c.Data), split)
				}
				h.c.Close(h.ts)
				rows := h.rows()
				natstest.Check(t, rows, wants)
				if len(h.Counts) != 0 {
					t.Errorf("%s role %d split %d: counters %v", f, role, split, h.Counts)
				}
				for _, r := range rows {
					if strings.Contains(r["body"].(string), "pxq-secret") {
						t.Errorf("%s: the password shows in %s", f, r["body"])
					}
				}
				if t.Failed() {
					t.Fatalf("%s role %d split %d", f, role, split)
				}
			}
		}
	}
}

func TestEveryColumn(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.Conn.UPID = types.UInt128Value{High: 3, Low: 4}
	h.send(true, "CONNECT {\"verbose\":true}\r\n", 0)
	h.send(false, "+OK\r\n", 0)
	h.send(true, "PUB a.b reply 2\r\nhi\r\n", 0)
	h.send(false, "+OK\r\n", 0)
	rows := h.rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	want := map[string]any{
		"time_": h.ts, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(4222),
		"trace_role": int64(2), "encrypted": false,
		"cmd": "PUB", "body": `{"payload":"hi","payload_size":2,"reply-to":"reply","subject":"a.b"}`, "resp": "+OK",
	}
	if len(rows[1]) != len(Table.Relation()) || len(want) != len(rows[1]) {
		t.Fatalf("%d columns, declared %d, checked %d", len(rows[1]), len(Table.Relation()), len(want))
	}
	for k, v := range want {
		if rows[1][k] != v {
			t.Errorf("%s = %#v, want %#v", k, rows[1][k], v)
		}
	}
}

type row struct{ cmd, body, resp string }

func check(t *testing.T, h *harness, wants []row) {
	t.Helper()
	rows := h.rows()
	if len(rows) != len(wants) {
		for _, r := range rows {
			t.Logf("row %s %s %q", r["cmd"], r["body"], r["resp"])
		}
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		r := rows[i]
		if r["cmd"] != w.cmd || r["body"] != w.body || r["resp"] != w.resp {
			t.Errorf("row %d: %s %s %q, want %s %s %q", i, r["cmd"], r["body"], r["resp"], w.cmd, w.body, w.resp)
		}
	}
}

func counters(t *testing.T, h *harness, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if h.Counts[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, h.Counts[k], v, h.Counts)
		}
	}
	for k, v := range h.Counts {
		if _, ok := want[k]; !ok {
			t.Errorf("%s = %d, want 0", k, v)
		}
	}
}

// TestSyntax takes what the protocol allows besides what clients send:
// commands in any case, tabs and several spaces between fields, lines
// ended by LF alone, empty lines, and JSON that is not an object.
func TestSyntax(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	h.send(true, "connect\t{\"verbose\":false,\"auth_token\":\"s3cret\"}\n\r\nsub  foo\tq  1\r\npub foo 3\nabc\nUnSub 1 2\r\nping\r\n", 0)
	h.send(false, "info [1]\r\nmsg foo 1 3\r\nabc\r\npong\n", 0)
	check(t, h, []row{
		{"CONNECT", `{"auth_token":"<hidden>","verbose":false}`, ""},
		{"SUB", `{"queue group":"q","sid":"1","subject":"foo"}`, ""},
		{"PUB", `{"payload":"abc","payload_size":3,"subject":"foo"}`, ""},
		{"UNSUB", `{"max_msgs":"2","sid":"1"}`, ""},
		{"PING", "", ""},
		{"INFO", `"[1]"`, ""},
		{"MSG", `{"payload":"abc","payload_size":3,"sid":"1","subject":"foo"}`, ""},
		{"PONG", "", ""},
	})
	counters(t, h, nil)
}

// TestMalformed: lines that are not commands, commands with wrong
// fields, a line longer than the bound and a payload longer than its
// line said are counted and skipped; the commands around them are rows.
func TestMalformed(t *testing.T) {
	cfg := testConfig
	cfg.MaxHeaderBytes = 64
	h := newHarness(t, protocols.RoleServer, cfg)
	h.send(true, "HELLO world\r\nPUB foo x\r\nSUB foo\r\nUNSUB 1 x\r\nPUB a 1\r\n1\r\n", 0)
	h.send(true, "SUB "+strings.Repeat("x", 100)+" 1\r\nSUB b 2\r\n", 7)
	h.send(true, "PUB c 1\r\nxyz\r\nPING\r\nHPUB d 5 3\r\n", 0)
	check(t, h, []row{
		{"PUB", `{"payload":"1","payload_size":1,"subject":"a"}`, ""},
		{"SUB", `{"sid":"2","subject":"b"}`, ""},
		{"PING", "", ""},
	})
	// HELLO, PUB foo x, SUB foo, UNSUB 1 x, the long line, PUB c (its
	// payload is longer), then "yz" read as a line, HPUB d (headers
	// larger than the whole).
	counters(t, h, map[string]int64{"parse_errors": 8})
}

// TestBounds: a payload beyond MaxBodyBytes keeps its prefix and its
// full size; headers beyond MaxHeaderBytes are cut.
func TestBounds(t *testing.T) {
	cfg := testConfig
	cfg.MaxBodyBytes, cfg.MaxHeaderBytes = 4, 32
	h := newHarness(t, protocols.RoleServer, cfg)
	hdr := "NATS/1.0\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n"
	h.send(true, "PUB x 10\r\n0123456789\r\n", 3)
	h.send(false, "HMSG x 9 "+strconv.Itoa(len(hdr))+" "+strconv.Itoa(len(hdr)+2)+"\r\n"+hdr+"ok\r\n", 5)
	long := "NATS/1.0\r\nA: " + strings.Repeat("a", 40) + "\r\n\r\n"
	h.send(false, "HMSG x 9 "+strconv.Itoa(len(long))+" "+strconv.Itoa(len(long))+"\r\n"+long+"\r\n", 0)
	check(t, h, []row{
		{"PUB", `{"payload":"0123","payload_size":10,"subject":"x"}`, ""},
		{"HMSG", `{"headers":{"A":"1,3","B":"2"},"payload":"ok","payload_size":2,"sid":"9","subject":"x"}`, ""},
		{"HMSG", `{"headers":{"A":"` + strings.Repeat("a", 32-13) + `"},"payload":"","payload_size":0,"sid":"9","subject":"x"}`, ""},
	})
	counters(t, h, nil)
}

// TestGaps: bytes lost inside a payload keep the message (its kept
// prefix, its full size); lost elsewhere, the reader waits for a line
// that starts a command, in this segment or a later one.
func TestGaps(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.send(true, "PUB a 10\r\n012", 0)
	h.gap(true, 4)
	h.send(true, "789\r\n", 0)
	h.send(true, "PUB b 2\r\n", 0)
	h.gap(true, 4) // the payload and its CRLF: past the payload
	h.send(true, "zz\r\n", 0)
	h.send(true, "zz\r\nPING\r\n", 0) // found again after a line end
	h.send(true, "SUB c 1\r\n", 0)
	h.gap(false, 10)
	h.send(false, "MSG c 1 1\r\n", 0)
	h.send(false, "x\r\n", 0)
	check(t, h, []row{
		{"PUB", `{"payload":"012","payload_size":10,"subject":"a"}`, ""},
		{"PING", "", ""},
		{"SUB", `{"sid":"1","subject":"c"}`, ""},
		{"MSG", `{"payload":"x","payload_size":1,"sid":"1","subject":"c"}`, ""},
	})
	counters(t, h, map[string]int64{"gap_resyncs": 2})
}

// TestVerbose: in verbose mode each command waits for its answer, and
// the client's PINGs wait behind them; a +OK seen without a CONNECT
// turns verbose mode on; an -ERR that answers nothing is a row.
func TestVerbose(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	h.send(true, "SUB a 1\r\n", 0) // no CONNECT seen: not verbose yet
	h.send(false, "+OK\r\n", 0)
	h.send(true, "PUB a 1\r\nx\r\nPING\r\nPUB a 1\r\ny\r\n", 0)
	if n := len(h.rows()); n != 1 {
		t.Fatalf("%d rows before the answers, want 1", n)
	}
	h.send(false, "+OK\r\n-ERR 'Maximum Payload Violation'\r\nPONG\r\n-ERR 'Stale Connection'\r\n", 0)
	check(t, h, []row{
		{"SUB", `{"sid":"1","subject":"a"}`, ""},
		{"PUB", `{"payload":"x","payload_size":1,"subject":"a"}`, "+OK"},
		{"PING", "", ""},
		{"PUB", `{"payload":"y","payload_size":1,"subject":"a"}`, "-ERR 'Maximum Payload Violation'"},
		{"PONG", "", ""},
		{"-ERR", "", "-ERR 'Stale Connection'"},
	})
	counters(t, h, map[string]int64{"unmatched_responses": 1})
}

// TestUnanswered: a verbose client's commands that get no answer are
// written without one, after the request timeout or at close; the queue
// is bounded.
func TestUnanswered(t *testing.T) {
	cfg := testConfig
	cfg.MaxPending = 2
	h := newHarness(t, protocols.RoleServer, cfg)
	h.send(true, "CONNECT {\"verbose\":true}\r\nSUB a 1\r\nPING\r\nSUB b 2\r\n", 0)
	// CONNECT, then SUB a, were written to make room; the PING held
	// behind SUB a went with it.
	if h.c.Pending() != 1 {
		t.Fatalf("pending %d, want 1", h.c.Pending())
	}
	h.c.Poll(h.ts + cfg.RequestTimeout.Nanoseconds() + 1)
	h.send(true, "SUB c 3\r\n", 0)
	h.c.Close(h.ts)
	check(t, h, []row{
		{"CONNECT", `{"verbose":true}`, ""},
		{"SUB", `{"sid":"1","subject":"a"}`, ""},
		{"PING", "", ""},
		{"SUB", `{"sid":"2","subject":"b"}`, ""},
		{"SUB", `{"sid":"3","subject":"c"}`, ""},
	})
	counters(t, h, map[string]int64{"requests_dropped_pending_full": 2, "requests_timed_out": 1, "closed_before_response": 1})
	if h.c.Pending() != 0 {
		t.Errorf("pending %d after close", h.c.Pending())
	}
}

// TestWrongSide: commands only the other side sends are counted, not
// rows.
func TestWrongSide(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.send(true, "MSG a 1 1\r\nx\r\n+OK\r\n", 0)
	h.send(false, "PUB a 1\r\nx\r\n", 0)
	check(t, h, nil)
	counters(t, h, map[string]int64{"unexpected_commands": 3})
}

// TestTLS: a server that requires TLS sends its INFO in plaintext, then
// both sides speak TLS: the INFO is a row, and nothing after it is
// parsed.
func TestTLS(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.send(false, "INFO {\"tls_required\":true}\r\n", 0)
	h.send(true, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 random bytes\r\n", 0)
	h.send(false, "\x16\x03\x03\x00\x7a\x02 more\n", 0)
	check(t, h, []row{{"INFO", `{"tls_required":true}`, ""}})
	counters(t, h, map[string]int64{"tls_conns": 1})
}
