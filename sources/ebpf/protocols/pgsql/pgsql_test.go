package pgsql

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/types"
)

// target is the parser under test, with its server on PostgreSQL's
// port: target.Side is one connection's parser, traced on one side, with
// its rows in a real pgsql_events table.
var target = dbtest.Target{Protocol: Protocol{}, Port: 5432}

// msg builds a tagged message from its payload's parts.
func msg(tag byte, parts ...any) []byte {
	var p []byte
	for _, x := range parts {
		switch v := x.(type) {
		case string: // a C string
			p = append(append(p, v...), 0)
		case []byte: // raw bytes
			p = append(p, v...)
		case int16:
			p = binary.BigEndian.AppendUint16(p, uint16(v))
		case int32:
			p = binary.BigEndian.AppendUint32(p, uint32(v))
		case byte:
			p = append(p, v)
		default:
			panic("msg: unexpected part")
		}
	}
	b := []byte{tag}
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)+4))
	return append(b, p...)
}

// cat joins messages (or their parts).
func cat(bs ...[]byte) []byte { return slices.Concat(bs...) }

// value is a DataRow or Bind value: its length and bytes.
func value(v []byte) []byte {
	if v == nil {
		return binary.BigEndian.AppendUint32(nil, 0xffffffff)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(v))), v...)
}

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

var (
	readyIdle     = msg('Z', byte('I'))
	parseComplete = msg('1')
	bindComplete  = msg('2')
	sync          = msg('S')
)

func rowDesc(cols ...any) []byte { // name, oid, format, …
	parts := []any{int16(len(cols) / 3)}
	for i := 0; i < len(cols); i += 3 {
		parts = append(parts, cols[i].(string), int32(0), int16(0), int32(cols[i+1].(int)), int16(-1), int32(-1), int16(cols[i+2].(int)))
	}
	return msg('T', parts...)
}

func dataRow(vals ...[]byte) []byte {
	parts := []any{int16(len(vals))}
	for _, v := range vals {
		parts = append(parts, value(v))
	}
	return msg('D', parts...)
}

func errorResp(code, text string) []byte {
	return msg('E', byte('S'), "ERROR", byte('V'), "ERROR", byte('C'), code, byte('M'), text, byte('F'), "x.c", byte('L'), "1", byte(0))
}

type want struct{ cmd, req, resp string }

// check checks rows against wants, in order.
func check(t *testing.T, rows []map[string]any, wants []want) {
	t.Helper()
	dbtest.CheckRows(t, rows, wants, func(r map[string]any, _ want) want {
		return want{r["req_cmd"].(string), r["req"].(string), r["resp"].(string)}
	})
}

var psqlRows = []want{
	{"Query", "create table t(id int primary key, name text)", "CREATE TABLE"},
	{"Query", "insert into t values (1,'a'),(2,null)", "INSERT 0 2"},
	{"Query", "select * from t order by id; select count(*) from t", "id,name\n1,a\n2,[NULL]\nSELECT 2\ncount\n2\nSELECT 1"},
	{"Query", "select * from nope", `ERROR RESPONSE [Severity=ERROR Code=42P01 Message=relation "nope" does not exist Position=15]`},
	{"Query", "update t set name = 'b' where id = 2", "UPDATE 1"},
}

// TestReplayPsql replays psql's session (SCRAM authentication, then the
// queries) in the pieces it was read in, and cut at every byte and at
// odd sizes, on both sides.
func TestReplayPsql(t *testing.T) {
	target.CheckReplay(t, "psql", dbtest.Replay(t, "testdata/psql.bin"), []int{0, 1, 2, 3, 7, 64},
		func(rows []map[string]any) { check(t, rows, psqlRows) })
}

func TestReplayCopyAndSSLRefused(t *testing.T) {
	h := target.Side(t, protocols.RoleServer, dbtest.Config)
	h.Replay(dbtest.Replay(t, "testdata/psql_copy_in.bin"), 0)
	check(t, h.Rows(), []want{{"Query", "copy t from stdin", "COPY 2"}})
	h = target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Replay(dbtest.Replay(t, "testdata/psql_ssl_refused.bin"), 0)
	check(t, h.Rows(), []want{{"Query", "select 42", "?column?\n42\nSELECT 1"}})
}

// TestReplayPgbench replays a pgbench client in the extended protocol:
// named statements (prepared, parsed once) and unnamed ones (parsed at
// each transaction).
func TestReplayPgbench(t *testing.T) {
	for _, mode := range []string{"prepared", "extended"} {
		h := target.Side(t, protocols.RoleClient, dbtest.Config)
		h.Replay(dbtest.Replay(t, "testdata/pgbench_"+mode+".bin"), 0)
		n := map[string]int{}
		for _, r := range h.Rows() {
			n[r["req_cmd"].(string)]++
			switch r["req_cmd"] {
			case "Execute":
				if !strings.HasPrefix(r["req"].(string), "query=[SELECT abalance FROM pgbench_accounts WHERE aid = $1;] params=[") || r["resp"] != "0\nSELECT 1" {
					t.Errorf("%s: Execute %q %q", mode, r["req"], r["resp"])
				}
			case "Describe":
				if r["req"] != "type=portal name=" || r["resp"] != "ROW DESCRIPTION [abalance int4]" {
					t.Errorf("%s: Describe %q %q", mode, r["req"], r["resp"])
				}
			case "Parse":
				if r["req"] != "SELECT abalance FROM pgbench_accounts WHERE aid = $1;" || r["resp"] != "PARSE COMPLETE" {
					t.Errorf("%s: Parse %q %q", mode, r["req"], r["resp"])
				}
			}
		}
		parses := 1
		if mode == "extended" {
			parses = 20
		}
		if n["Execute"] != 20 || n["Bind"] != 20 || n["Describe"] != 20 || n["Parse"] != parses {
			t.Errorf("%s: rows by command %v", mode, n)
		}
	}
}

// TestEveryColumn checks every column of a row.
func TestEveryColumn(t *testing.T) {
	h := target.Side(t, protocols.RoleServer, dbtest.Config)
	h.Conn.UPID = types.UInt128Value{High: 9, Low: 77}
	h.Send(true, msg('Q', "select 1"), 0)
	start := h.TS
	h.Send(false, cat(rowDesc("x", oidInt4, 0), dataRow([]byte("1")), msg('C', "SELECT 1"), readyIdle), 0)
	dbtest.CheckEveryColumn(t, h.Rows(), Table, map[string]any{
		"time_": h.TS, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(5432),
		"trace_role": int64(2), "encrypted": false,
		"req_cmd": "Query", "req": "select 1", "resp": "x\n1\nSELECT 1", "latency": h.TS - start,
	})
}

// TestExtendedErrorSkipsToSync: after an error in a Parse the server
// skips the Bind and Execute up to the Sync; they make no rows, and the
// next batch pairs right.
func TestExtendedErrorSkipsToSync(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	batch := func(q string, v string) []byte {
		return cat(msg('P', "", q, int16(0)), msg('B', "", "", int16(0), int16(1), value([]byte(v)), int16(0)),
			msg('E', "", int32(0)), sync)
	}
	// Both batches are written before either answer (pipelining).
	h.Send(true, cat(batch("select x from nope where a = $1", "1"), batch("select $1::int + 1", "41")), 0)
	h.Send(false, cat(errorResp("42P01", `relation "nope" does not exist`), readyIdle,
		parseComplete, bindComplete, dataRow([]byte("42")), msg('C', "SELECT 1"), readyIdle), 5)
	check(t, h.Rows(), []want{
		{"Parse", "select x from nope where a = $1", `ERROR RESPONSE [Severity=ERROR Code=42P01 Message=relation "nope" does not exist]`},
		{"Parse", "select $1::int + 1", "PARSE COMPLETE"},
		{"Bind", "portal= statement= parameters=[41]", "BIND COMPLETE"},
		{"Execute", "query=[select $1::int + 1] params=[41]", "42\nSELECT 1"},
	})
	if h.Counts["skipped_after_error"] != 2 {
		t.Errorf("counters %v", h.Counts)
	}
	// An error that comes before the rest of the batch was seen: the
	// messages that follow it, up to the Sync, are skipped as they come.
	h.Send(true, msg('P', "s1", "select bad", int16(0)), 0)
	h.Send(false, errorResp("42601", "syntax error"), 0)
	h.Send(true, cat(msg('B', "", "s1", int16(0), int16(0), int16(0)), msg('E', "", int32(0)), sync), 0)
	h.Send(false, readyIdle, 0)
	h.Send(true, msg('Q', "select 2"), 0)
	h.Send(false, cat(rowDesc("?column?", oidInt4, 0), dataRow([]byte("2")), msg('C', "SELECT 1"), readyIdle), 0)
	rows := h.Rows()[4:]
	check(t, rows, []want{
		{"Parse", "select bad", "ERROR RESPONSE [Severity=ERROR Code=42601 Message=syntax error]"},
		{"Query", "select 2", "?column?\n2\nSELECT 1"},
	})
}

// TestBinaryValues: a statement whose parameter types are described,
// bound with binary values and binary results (as pgx does), shows them
// as text.
func TestBinaryValues(t *testing.T) {
	h := target.Side(t, protocols.RoleServer, dbtest.Config)
	q := "select $1::int4, $2::text, $3::int8, $4::bool, $5::uuid, $6::float8, $7::timestamptz, $8::bytea"
	h.Send(true, cat(msg('P', "stmt_1", q, int16(0)), msg('D', byte('S'), "stmt_1"), sync), 0)
	h.Send(false, cat(parseComplete,
		msg('t', int16(8), int32(oidInt4), int32(oidText), int32(oidInt8), int32(oidBool), int32(oidUUID), int32(oidFloat8), int32(oidTimestampTZ), int32(oidBytea)),
		rowDesc("int4", oidInt4, 0, "text", oidText, 0, "int8", oidInt8, 0, "bool", oidBool, 0), readyIdle), 0)
	uuid := []byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}
	ts := int64(24*3600) * 1_000_000 // 2000-01-02 00:00:00 UTC, in µs
	h.Send(true, cat(msg('B', "", "stmt_1", int16(1), int16(1), int16(8),
		value(be32(-7)), value([]byte("héllo")), value(be64(1<<40)), value([]byte{1}), value(uuid),
		value(be64(int64(0x400921FB54442D18))), value(be64(ts)), value([]byte{0xde, 0xad}),
		int16(1), int16(1)), msg('E', "", int32(0)), sync), 0)
	h.Send(false, cat(bindComplete, dataRow(be32(-7), []byte("héllo"), be64(1<<40), nil), msg('C', "SELECT 1"), readyIdle), 0)
	check(t, h.Rows(), []want{
		{"Parse", q, "PARSE COMPLETE"},
		{"Describe", "type=statement name=stmt_1", "PARAMETER DESCRIPTION [int4, text, int8, bool, uuid, float8, timestamptz, bytea] ROW DESCRIPTION [int4 int4, text text, int8 int8, bool bool]"},
		{"Bind", `portal= statement=stmt_1 parameters=[-7, héllo, 1099511627776, true, 12345678-9abc-def0-1234-56789abcdef0, 3.141592653589793, 2000-01-02 00:00:00Z, \xdead]`, "BIND COMPLETE"},
		{"Execute", `query=[` + q + `] params=[-7, héllo, 1099511627776, true, 12345678-9abc-def0-1234-56789abcdef0, 3.141592653589793, 2000-01-02 00:00:00Z, \xdead]`, "-7,héllo,1099511627776,[NULL]\nSELECT 1"},
	})
}

// TestPortalSuspendedAndClose: Execute with a row limit, then Close.
func TestPortalSuspendedAndClose(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, cat(msg('P', "", "select generate_series(1,3)", int16(0)), msg('B', "c1", "", int16(0), int16(0), int16(0)),
		msg('E', "c1", int32(2)), msg('E', "c1", int32(2)), msg('C', byte('P'), "c1"), sync), 0)
	h.Send(false, cat(parseComplete, bindComplete, dataRow([]byte("1")), dataRow([]byte("2")), msg('s'),
		dataRow([]byte("3")), msg('C', "SELECT 1"), msg('3'), readyIdle), 0)
	check(t, h.Rows(), []want{
		{"Parse", "select generate_series(1,3)", "PARSE COMPLETE"},
		{"Bind", "portal=c1 statement= parameters=[]", "BIND COMPLETE"},
		{"Execute", "query=[select generate_series(1,3)] params=[]", "1\n2\nPORTAL SUSPENDED"},
		{"Execute", "query=[select generate_series(1,3)] params=[]", "3\nSELECT 1"},
		{"Close", "type=portal name=c1", "CLOSE COMPLETE"},
	})
}

// TestTruncation: a result larger than MaxBodyBytes keeps its first rows
// and its command tag; a long query is cut at MaxHeaderBytes.
func TestTruncation(t *testing.T) {
	cfg := dbtest.Config
	cfg.MaxBodyBytes, cfg.MaxHeaderBytes = 256, 64
	h := target.Side(t, protocols.RoleClient, cfg)
	long := "select '" + strings.Repeat("x", 200) + "'"
	h.Send(true, msg('Q', long), 0)
	var resp [][]byte
	resp = append(resp, rowDesc("v", oidText, 0))
	for i := 0; i < 1000; i++ {
		resp = append(resp, dataRow([]byte(strings.Repeat("y", 50))))
	}
	resp = append(resp, msg('C', "SELECT 1000"), readyIdle)
	h.Send(false, cat(resp...), 4096)
	rows := h.Rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	req, r := rows[0]["req"].(string), rows[0]["resp"].(string)
	if req != long[:64] {
		t.Errorf("req %q", req)
	}
	if len(r) > 256 || !strings.HasPrefix(r, "v\n"+strings.Repeat("y", 50)+"\n") || !strings.HasSuffix(r, "...\nSELECT 1000") {
		t.Errorf("resp (%d bytes) %q", len(r), r)
	}
}

// TestGaps: lost bytes inside a row keep the query's row; lost bytes
// across messages drop what cannot be paired, and the connection pairs
// right again from the next ReadyForQuery.
func TestGaps(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, msg('Q', "select v from big"), 0)
	row := dataRow([]byte(strings.Repeat("z", 5000)))
	h.Send(false, cat(rowDesc("v", oidText, 0), row[:100]), 0)
	h.Parser.Gap(protocols.Ingress, 4000) // inside the value
	h.Send(false, cat(row[4100:], msg('C', "SELECT 1"), readyIdle), 0)
	rows := h.Rows()
	if len(rows) != 1 || rows[0]["req"] != "select v from big" || !strings.HasSuffix(rows[0]["resp"].(string), "SELECT 1") {
		t.Fatalf("rows %v", rows)
	}
	// A gap over message boundaries in the answer.
	h.Send(true, msg('Q', "select 1"), 0)
	h.Send(false, rowDesc("a", oidInt4, 0), 0)
	h.Parser.Gap(protocols.Ingress, 30)
	h.Send(false, cat(msg('C', "SELECT 1"), readyIdle), 0)
	h.Send(true, msg('Q', "select 2"), 0)
	h.Send(false, cat(rowDesc("b", oidInt4, 0), dataRow([]byte("2")), msg('C', "SELECT 1"), readyIdle), 0)
	check(t, h.Rows()[1:], []want{{"Query", "select 2", "b\n2\nSELECT 1"}})
	if h.Counts["gap_resyncs"] != 1 || h.Counts["requests_lost_in_gap"] != 1 {
		t.Errorf("counters %v", h.Counts)
	}
}

// TestSSLAccepted: after the server accepts SSL the bytes are TLS and
// nothing is parsed.
func TestSSLAccepted(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(true, []byte{0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f}, 0)
	h.Send(false, []byte("S"), 0)
	h.Send(true, []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 0)
	h.Send(false, msg('Q', "not really"), 0)
	if rows := h.Rows(); len(rows) != 0 || h.Counts["tls_conns"] != 1 {
		t.Fatalf("rows %v counters %v", rows, h.Counts)
	}
}

// TestMidStream: a connection seen from the middle of an answer drops
// that answer and pairs the next query.
func TestMidStream(t *testing.T) {
	h := target.Side(t, protocols.RoleClient, dbtest.Config)
	h.Send(false, cat(dataRow([]byte("old")), msg('C', "SELECT 9"), readyIdle), 0)
	h.Send(true, msg('Q', "select 1"), 0)
	h.Send(false, cat(rowDesc("a", oidInt4, 0), dataRow([]byte("1")), msg('C', "SELECT 1"), readyIdle), 0)
	check(t, h.Rows(), []want{{"Query", "select 1", "a\n1\nSELECT 1"}})
}

func TestCloseAndTimeout(t *testing.T) {
	cfg := dbtest.Config
	h := target.Side(t, protocols.RoleClient, cfg)
	h.Send(true, msg('Q', "select pg_sleep(100)"), 0)
	if h.Parser.Pending() != 1 {
		t.Fatalf("pending %d", h.Parser.Pending())
	}
	h.Parser.Poll(h.TS + cfg.RequestTimeout.Nanoseconds() + 1)
	if h.Parser.Pending() != 0 || h.Counts["requests_timed_out"] != 1 {
		t.Fatalf("pending %d counters %v", h.Parser.Pending(), h.Counts)
	}
	// Its late answer is dropped up to its ReadyForQuery.
	h.Send(false, cat(rowDesc("a", oidInt4, 0), dataRow([]byte("1")), msg('C', "SELECT 1"), readyIdle), 0)
	h.Send(true, msg('Q', "select 3"), 0)
	h.Parser.Close(h.TS)
	if h.Counts["closed_before_response"] != 1 || len(h.Rows()) != 0 {
		t.Fatalf("counters %v", h.Counts)
	}
}
