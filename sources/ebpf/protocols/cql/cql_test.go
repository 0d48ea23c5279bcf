package cql

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

var target = dbtest.Target{Protocol: Protocol{}, Port: 9042}

// b builds a message body in the protocol's notations.
type b []byte

func (p b) short(v int) b    { return binary.BigEndian.AppendUint16(p, uint16(v)) }
func (p b) int(v int) b      { return binary.BigEndian.AppendUint32(p, uint32(int32(v))) }
func (p b) str(s string) b   { return append(p.short(len(s)), s...) }
func (p b) long(s string) b  { return append(p.int(len(s)), s...) }
func (p b) bytes(v []byte) b { return append(p.int(len(v)), v...) }
func (p b) raw(v ...byte) b  { return append(p, v...) }

// env is an envelope of version v (a response when resp) on stream.
func env(v byte, resp bool, flags byte, stream int16, op byte, body []byte) []byte {
	if resp {
		v |= 0x80
	}
	h := []byte{v, flags, byte(uint16(stream) >> 8), byte(stream), op, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[5:], uint32(len(body)))
	return append(h, body...)
}

func req(stream int16, op byte, body []byte) []byte  { return env(4, false, 0, stream, op, body) }
func resp(stream int16, op byte, body []byte) []byte { return env(4, true, 0, stream, op, body) }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// query is a QUERY body: the statement, consistency ONE and values.
func query(q string, values ...[]byte) []byte {
	p := b(nil).long(q).short(1)
	if len(values) == 0 {
		return p.raw(0)
	}
	p = p.raw(0x01).short(len(values))
	for _, v := range values {
		if v == nil {
			p = p.int(-1)
		} else {
			p = p.bytes(v)
		}
	}
	return p
}

var void = b(nil).int(1)

func row(r map[string]any) [4]any {
	return [4]any{r["req_op"], r["req_body"], r["resp_op"], r["resp_body"]}
}

func checkRows(t *testing.T, s *dbtest.Side, want ...[4]any) {
	t.Helper()
	rows := s.Rows()
	if len(rows) != len(want) {
		for i, r := range rows {
			t.Logf("row %d: %#v", i, row(r))
		}
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		if got := row(rows[i]); got != w {
			t.Errorf("row %d:\n got %#v\nwant %#v", i, got, w)
		}
	}
}

// both runs f on a parser of each side.
func both(t *testing.T, f func(t *testing.T, s *dbtest.Side)) {
	for _, role := range dbtest.Roles {
		t.Run(map[protocols.Role]string{protocols.RoleClient: "client", protocols.RoleServer: "server"}[role], func(t *testing.T) {
			f(t, target.Side(t, role, dbtest.Config))
		})
	}
}

// TestReplay replays gocql's sessions (recorded by realclient against
// its responder), whole and cut in pieces, on both sides: every row is
// what the session did, and no counter moves.
func TestReplay(t *testing.T) {
	for _, name := range []string{"gocql-v3-control", "gocql-v3-queries", "gocql-v4-control", "gocql-v4-queries"} {
		var wants []struct {
			ReqOp    int64
			ReqBody  string
			RespOp   int64
			RespBody string
		}
		data, err := os.ReadFile("testdata/" + name + ".rows.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &wants); err != nil {
			t.Fatal(err)
		}
		chunks := dbtest.Replay(t, "testdata/"+name+".bin")
		target.CheckReplay(t, name, chunks, []int{0, 1, 2, 5, 9, 64}, func(rows []map[string]any) {
			if len(rows) != len(wants) {
				t.Fatalf("%s: %d rows, want %d", name, len(rows), len(wants))
			}
			for i, w := range wants {
				if got := row(rows[i]); got != [4]any{w.ReqOp, w.ReqBody, w.RespOp, w.RespBody} {
					t.Errorf("%s row %d:\n got %#v\nwant %#v", name, i, got, w)
				}
			}
		})
	}
}

// TestEveryColumn checks every column of one row.
func TestEveryColumn(t *testing.T) {
	s := target.Side(t, protocols.RoleServer, dbtest.Config)
	s.Send(true, req(3, opQuery, query("SELECT 1")), 0)
	s.Send(false, resp(3, opResult, void), 0)
	rows := s.Rows()
	dbtest.CheckEveryColumn(t, rows, Table, map[string]any{
		"time_": int64(1_002_000), "upid": s.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(9042),
		"trace_role": int64(2), "encrypted": false,
		"req_op": int64(opQuery), "req_body": "SELECT 1\nconsistency=ONE",
		"resp_op": int64(opResult), "resp_body": "Response type = VOID",
		"latency": int64(1000),
	})
}

// TestPipelining answers three requests out of order: each response
// pairs with the request of its stream id.
func TestPipelining(t *testing.T) {
	both(t, func(t *testing.T, s *dbtest.Side) {
		s.Send(true, cat(req(1, opQuery, query("SELECT a")), req(2, opQuery, query("SELECT b")), req(3, opQuery, query("SELECT c"))), 0)
		s.Send(false, cat(resp(3, opResult, void), resp(1, opError, b(nil).int(0x2200).str("no a"))), 0)
		s.Send(false, resp(2, opResult, b(nil).int(3).str("ks")), 0)
		checkRows(t, s,
			[4]any{int64(7), "SELECT c\nconsistency=ONE", int64(8), "Response type = VOID"},
			[4]any{int64(7), "SELECT a\nconsistency=ONE", int64(0), "[8704] no a"},
			[4]any{int64(7), "SELECT b\nconsistency=ONE", int64(8), "Response type = SET_KEYSPACE\nKeyspace = ks"},
		)
		if s.Parser.Pending() != 0 || len(s.Counts) != 0 {
			t.Errorf("pending %d, counters %v", s.Parser.Pending(), s.Counts)
		}
	})
}

// TestMessages renders each kind of message.
func TestMessages(t *testing.T) {
	id := []byte{0xca, 0xfe}
	prepared := b(nil).int(4).short(len(id)).raw(id...).
		int(1).int(3).int(1).short(0).str("ks").str("t"). // bind markers: global table spec, pk index 0
		str("k").short(tInt).str("s").short(tVarchar).str("l").short(tList).short(tInt).
		int(1).int(1).str("ks").str("t").str("v").short(tBoolean) // result: one column
	rowsNoMeta := b(nil).int(2).int(4).int(1).int(1).bytes([]byte{1})
	for _, c := range []struct {
		name      string
		req, resp []byte
		want      [4]any
	}{
		{"startup", req(0, opStartup, b(nil).short(2).str("DRIVER_NAME").str("x").str("CQL_VERSION").str("3.0.0")), resp(0, opReady, nil),
			[4]any{int64(1), `{"CQL_VERSION":"3.0.0","DRIVER_NAME":"x"}`, int64(2), ""}},
		{"options", req(0, opOptions, nil), resp(0, opSupported, b(nil).short(1).str("CQL_VERSION").short(2).str("3.0.0").str("3.4.5")),
			[4]any{int64(5), "", int64(6), `{"CQL_VERSION":["3.0.0","3.4.5"]}`}},
		{"authenticate", req(0, opStartup, b(nil).short(1).str("CQL_VERSION").str("3.0.0")), resp(0, opAuthenticate, b(nil).str("org.apache.cassandra.auth.PasswordAuthenticator")),
			[4]any{int64(1), `{"CQL_VERSION":"3.0.0"}`, int64(3), "org.apache.cassandra.auth.PasswordAuthenticator"}},
		{"auth response hidden", req(1, opAuthResponse, b(nil).bytes([]byte("\x00user\x00secret"))), resp(1, opAuthChallenge, b(nil).bytes([]byte{1, 2})),
			[4]any{int64(15), "<hidden>", int64(14), "0x0102"}},
		{"auth success", req(1, opAuthResponse, b(nil).bytes([]byte("x"))), resp(1, opAuthSuccess, b(nil).int(-1)),
			[4]any{int64(15), "<hidden>", int64(16), ""}},
		{"query values", req(2, opQuery, query("INSERT INTO t (a, b) VALUES (?, ?)", []byte{0, 0, 0, 42}, nil)), resp(2, opResult, void),
			[4]any{int64(7), "INSERT INTO t (a, b) VALUES (?, ?)\n[\"0x0000002a\",null]\nconsistency=ONE", int64(8), "Response type = VOID"}},
		{"named values", req(2, opQuery, b(nil).long("SELECT * FROM t WHERE a = :a").short(6).raw(0x41).short(1).str("a").bytes([]byte("x"))), resp(2, opResult, void),
			[4]any{int64(7), "SELECT * FROM t WHERE a = :a\n{\"a\":\"0x78\"}\nconsistency=LOCAL_QUORUM", int64(8), "Response type = VOID"}},
		{"schema change", req(3, opQuery, query("CREATE KEYSPACE k")), resp(3, opResult, b(nil).int(5).str("CREATED").str("KEYSPACE").str("k")),
			[4]any{int64(7), "CREATE KEYSPACE k\nconsistency=ONE", int64(8), "Response type = SCHEMA_CHANGE\nCREATED KEYSPACE keyspace=k"}},
		{"function change", req(3, opQuery, query("DROP FUNCTION k.f")), resp(3, opResult, b(nil).int(5).str("DROPPED").str("FUNCTION").str("k").str("f").short(1).str("int")),
			[4]any{int64(7), "DROP FUNCTION k.f\nconsistency=ONE", int64(8), "Response type = SCHEMA_CHANGE\nDROPPED FUNCTION keyspace=k name=f args=[\"int\"]"}},
		{"prepare", req(4, opPrepare, b(nil).long("SELECT v FROM ks.t WHERE k = ? AND s = ? AND l = ?")), resp(4, opResult, prepared),
			[4]any{int64(9), "SELECT v FROM ks.t WHERE k = ? AND s = ? AND l = ?", int64(8), "Response type = PREPARED\nPrepared id = 0xcafe"}},
		{"execute", req(5, opExecute, b(nil).short(2).raw(id...).short(4).raw(0x03).short(3).bytes([]byte{0xff, 0xff, 0xff, 0xfe}).bytes([]byte("é\"x")).bytes([]byte{0, 0, 0, 1})),
			resp(5, opResult, rowsNoMeta),
			[4]any{int64(10), "SELECT v FROM ks.t WHERE k = ? AND s = ? AND l = ?\n[-2,\"é\\\"x\",\"0x00000001\"]\nconsistency=QUORUM", int64(8), "Response type = ROWS\nNumber of columns = 1\n[\"v\"]\nNumber of rows = 1"}},
		{"execute unknown", req(5, opExecute, b(nil).short(2).raw(0xbe, 0xef).short(1).raw(0)), resp(5, opError, b(nil).int(0x2500).str("Unprepared").short(2).raw(0xbe, 0xef)),
			[4]any{int64(10), "prepared statement 0xbeef\nconsistency=ONE", int64(0), "[9472] Unprepared"}},
		{"batch", req(6, opBatch, b(nil).raw(1).short(2).raw(0).long("INSERT a").short(0).raw(1).short(2).raw(id...).short(1).bytes([]byte{0, 0, 0, 7}).short(4).raw(0)),
			resp(6, opResult, void),
			[4]any{int64(13), `{"type":"UNLOGGED","queries":[{"query":"INSERT a"},{"id":"0xcafe","query":"SELECT v FROM ks.t WHERE k = ? AND s = ? AND l = ?","values":[7]}],"consistency":"QUORUM"}`, int64(8), "Response type = VOID"}},
		{"register", req(7, opRegister, b(nil).short(1).str("STATUS_CHANGE")), resp(7, opReady, nil),
			[4]any{int64(11), `["STATUS_CHANGE"]`, int64(2), ""}},
		{"tracing and warnings", req(8, opQuery, query("SELECT x")),
			env(4, true, flagTracing|flagWarning|flagCustom, 8, opResult, cat(make([]byte, 16), b(nil).short(1).str("careful"), b(nil).short(1).str("k").bytes([]byte("v")), void)),
			[4]any{int64(7), "SELECT x\nconsistency=ONE", int64(8), "Response type = VOID"}},
		{"custom payload request", env(4, false, flagCustom, 9, opQuery, cat(b(nil).short(1).str("k").bytes([]byte("v")), query("SELECT y"))), resp(9, opResult, void),
			[4]any{int64(7), "SELECT y\nconsistency=ONE", int64(8), "Response type = VOID"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			both(t, func(t *testing.T, s *dbtest.Side) {
				s.Send(true, c.req, 0)
				s.Send(false, c.resp, 0)
				checkRows(t, s, c.want)
				if len(s.Counts) != 0 {
					t.Errorf("counters %v", s.Counts)
				}
			})
		})
	}
}

// TestEvent: an EVENT the server pushes is a row of its own, as Pixie
// shows it: REGISTER, "-", latency 0.
func TestEvent(t *testing.T) {
	both(t, func(t *testing.T, s *dbtest.Side) {
		s.Send(true, req(1, opQuery, query("SELECT a")), 0)
		s.Send(false, env(4, true, 0, -1, opEvent, b(nil).str("TOPOLOGY_CHANGE").str("NEW_NODE").raw(4, 10, 0, 0, 7).int(9042)), 0)
		s.Send(false, env(4, true, 0, -1, opEvent, b(nil).str("SCHEMA_CHANGE").str("UPDATED").str("TABLE").str("ks").str("t")), 0)
		s.Send(false, resp(1, opResult, void), 0)
		checkRows(t, s,
			[4]any{int64(11), "-", int64(12), "TOPOLOGY_CHANGE NEW_NODE 10.0.0.7"},
			[4]any{int64(11), "-", int64(12), "SCHEMA_CHANGE UPDATED TABLE keyspace=ks name=t"},
			[4]any{int64(7), "SELECT a\nconsistency=ONE", int64(8), "Response type = VOID"},
		)
		if lat := s.Rows()[0]["latency"]; lat != int64(0) {
			t.Errorf("an event's latency %v", lat)
		}
	})
}

// TestCompressed: a compressed body is not decoded: the row has the
// opcodes and latency, empty bodies, and the messages are counted.
func TestCompressed(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(true, env(4, false, flagCompressed, 1, opQuery, []byte{1, 2, 3, 4, 5}), 0)
	s.Send(false, env(4, true, flagCompressed, 1, opResult, []byte{9, 9}), 0)
	checkRows(t, s, [4]any{int64(7), "", int64(8), ""})
	if s.Counts["compressed_messages"] != 2 {
		t.Errorf("counters %v", s.Counts)
	}
}

// TestResponseBeforeRequest: a response whose read returned before its
// request's write is held until the request comes.
func TestResponseBeforeRequest(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(false, resp(4, opResult, void), 0)
	s.Send(true, req(4, opQuery, query("SELECT a")), 0)
	checkRows(t, s, [4]any{int64(7), "SELECT a\nconsistency=ONE", int64(8), "Response type = VOID"})
	if r := s.Rows()[0]; r["latency"] != int64(0) || s.Counts["responses_before_request"] != 1 {
		t.Errorf("latency %v, counters %v", r["latency"], s.Counts)
	}
}

// TestGaps: bytes lost inside a body keep the envelope (its body empty
// when the lost bytes were in its kept part); lost across envelopes,
// the reader resumes at the next segment that starts one.
func TestGaps(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	q := req(1, opQuery, query("SELECT something long enough"))
	s.Send(true, q[:12], 0)
	s.Parser.Gap(protocols.Egress, 10)
	s.Send(true, q[22:], 0)
	s.Send(false, resp(1, opResult, void), 0)
	// Lost across envelopes: the rest of this request and the next
	// request's head.
	s.Send(true, req(2, opQuery, query("SELECT b"))[:5], 0)
	s.Parser.Gap(protocols.Egress, 30)
	s.Send(true, []byte("garbage"), 0)
	s.Send(true, req(3, opQuery, query("SELECT c")), 0)
	s.Send(false, resp(3, opResult, void), 0)
	checkRows(t, s,
		[4]any{int64(7), "", int64(8), "Response type = VOID"},
		[4]any{int64(7), "SELECT c\nconsistency=ONE", int64(8), "Response type = VOID"},
	)
	if s.Counts["damaged_messages"] != 1 || s.Counts["gap_resyncs"] != 1 {
		t.Errorf("counters %v", s.Counts)
	}
}

// TestBounds: a body longer than the bound keeps its start; the pending
// requests are bounded (4 × MaxPending); unanswered ones time out.
func TestBounds(t *testing.T) {
	cfg := dbtest.Config
	cfg.MaxHeaderBytes, cfg.MaxPending = 2048, 4
	s := target.Side(t, protocols.RoleClient, cfg)
	long := "SELECT '" + strings.Repeat("x", 5000) + "'"
	s.Send(true, req(1, opQuery, query(long)), 1000)
	s.Send(false, resp(1, opResult, void), 0)
	rows := s.Rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	// The body kept is the first MaxHeaderBytes: the statement's start.
	if body := rows[0]["req_body"].(string); body != long[:cfg.MaxHeaderBytes-4] {
		t.Errorf("req_body of %d bytes", len(body))
	}
	for i := range 6 {
		s.Send(true, req(int16(10+i), opQuery, query("SELECT 1")), 0)
	}
	for i := range 16 {
		s.Send(true, req(int16(20+i), opQuery, query("SELECT 1")), 0)
	}
	if s.Parser.Pending() != 16 || s.Counts["requests_dropped_pending_full"] != 6 {
		t.Errorf("pending %d, counters %v", s.Parser.Pending(), s.Counts)
	}
	s.Parser.Poll(s.TS + cfg.RequestTimeout.Nanoseconds() + 1)
	if s.Parser.Pending() != 0 || s.Counts["requests_timed_out"] != 16 {
		t.Errorf("pending %d, counters %v", s.Parser.Pending(), s.Counts)
	}
}

// frame5 wraps payload in a v5 frame (uncompressed).
func frame5(payload []byte, self bool) []byte {
	v := uint32(len(payload))
	if self {
		v |= 1 << 17
	}
	h := []byte{byte(v), byte(v >> 8), byte(v >> 16)}
	c := crc24(h)
	h = append(h, byte(c), byte(c>>8), byte(c>>16))
	sum := crc32.Update(crc32.ChecksumIEEE([]byte{0xfa, 0x2d, 0x55, 0xca}), crc32.IEEETable, payload)
	return binary.LittleEndian.AppendUint32(append(h, payload...), sum)
}

// TestV5Framing: after a v5 STARTUP is answered, the envelopes travel
// in frames: several in a self-contained frame, a large one across
// frames that are not; a frame whose payload CRC is wrong is counted.
func TestV5Framing(t *testing.T) {
	v5 := func(resp bool, stream int16, op byte, body []byte) []byte { return env(5, resp, 0, stream, op, body) }
	// v5 query parameters: consistency, int flags.
	q5 := func(q string) []byte { return b(nil).long(q).short(1).int(0) }
	both(t, func(t *testing.T, s *dbtest.Side) {
		s.Send(true, v5(false, 0, opStartup, b(nil).short(1).str("CQL_VERSION").str("3.0.0")), 0)
		s.Send(false, v5(true, 0, opReady, nil), 0)
		s.Send(true, frame5(cat(v5(false, 1, opQuery, q5("SELECT a")), v5(false, 2, opQuery, q5("SELECT b"))), true), 7)
		s.Send(false, frame5(cat(v5(true, 2, opResult, void), v5(true, 1, opResult, void)), true), 0)
		big := v5(false, 3, opQuery, q5("SELECT '"+strings.Repeat("y", 200_000)+"'"))
		s.Send(true, cat(frame5(big[:131071], false), frame5(big[131071:], false)), 4096)
		bad := frame5(v5(true, 3, opResult, void), true)
		bad[len(bad)-1] ^= 0xff
		s.Send(false, bad, 0)
		// The large statement keeps its first MaxHeaderBytes.
		cut := "SELECT '" + strings.Repeat("y", dbtest.Config.MaxHeaderBytes-4-8)
		checkRows(t, s,
			[4]any{int64(1), `{"CQL_VERSION":"3.0.0"}`, int64(2), ""},
			[4]any{int64(7), "SELECT b\nconsistency=ONE", int64(8), "Response type = VOID"},
			[4]any{int64(7), "SELECT a\nconsistency=ONE", int64(8), "Response type = VOID"},
			[4]any{int64(7), cut, int64(8), "Response type = VOID"},
		)
		if s.Counts["crc_errors"] != 1 || len(s.Counts) != 1 {
			t.Errorf("counters %v", s.Counts)
		}
	})
}

// TestV5Lost: in v5 framing, bytes lost across frames make the reader
// wait for a self-contained frame whose header's CRC24 holds; a v5
// STARTUP that asks for compression ends parsing (LZ4 frames are not
// read), counted.
func TestV5Lost(t *testing.T) {
	v5 := func(resp bool, stream int16, op byte, body []byte) []byte { return env(5, resp, 0, stream, op, body) }
	q5 := func(q string) []byte { return b(nil).long(q).short(1).int(0) }
	startup := v5(false, 0, opStartup, b(nil).short(1).str("CQL_VERSION").str("3.0.0"))
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(true, startup, 0)
	s.Send(false, v5(true, 0, opReady, nil), 0)
	f := frame5(v5(false, 1, opQuery, q5("SELECT a")), true)
	s.Send(true, f[:10], 0)
	s.Parser.Gap(protocols.Egress, len(f)) // the rest of the frame and the next's head
	s.Send(true, f[5:], 0)                 // not a frame's start
	s.Send(true, frame5(v5(false, 2, opQuery, q5("SELECT b")), true), 0)
	s.Send(false, frame5(cat(v5(true, 1, opResult, void), v5(true, 2, opResult, void)), true), 0)
	checkRows(t, s,
		[4]any{int64(1), `{"CQL_VERSION":"3.0.0"}`, int64(2), ""},
		[4]any{int64(7), "SELECT b\nconsistency=ONE", int64(8), "Response type = VOID"},
	)
	if s.Counts["gap_resyncs"] != 1 || s.Counts["unmatched_responses"] != 0 {
		t.Errorf("counters %v", s.Counts)
	}

	s = target.Side(t, protocols.RoleServer, dbtest.Config)
	s.Send(true, v5(false, 0, opStartup, b(nil).short(2).str("CQL_VERSION").str("3.0.0").str("COMPRESSION").str("lz4")), 0)
	s.Send(false, v5(true, 0, opReady, nil), 0)
	s.Send(true, []byte("\x10\x00\x02\x00\x00\x00\x00\x00 lz4 bytes"), 0)
	checkRows(t, s, [4]any{int64(1), `{"COMPRESSION":"lz4","CQL_VERSION":"3.0.0"}`, int64(2), ""})
	if s.Counts["compressed_conns"] != 1 || s.Counts["parse_errors"] != 0 {
		t.Errorf("counters %v", s.Counts)
	}
}

// TestWrongDirection: an envelope whose direction bit is not its
// side's is a parse error, and the reader resumes at the next envelope.
func TestWrongDirection(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(true, resp(1, opResult, void), 0)
	s.Send(true, req(2, opQuery, query("SELECT a")), 0)
	s.Send(false, resp(2, opResult, void), 0)
	checkRows(t, s, [4]any{int64(7), "SELECT a\nconsistency=ONE", int64(8), "Response type = VOID"})
	if s.Counts["parse_errors"] != 1 {
		t.Errorf("counters %v", s.Counts)
	}
}
