package mongodb

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/types"
)

var target = dbtest.Target{Protocol: Protocol{}, Port: 27017}

// row is the part of a row the tests check.
type row struct{ cmd, req, status, resp string }

func asRow(r map[string]any, _ row) row {
	return row{r["req_cmd"].(string), r["req_body"].(string), r["resp_status"].(string), r["resp_body"].(string)}
}

// TestEveryColumn checks every column of the row of one command.
func TestEveryColumn(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(true, opMsgBytes(7, 0, 0, d{{"find", "items"}, {"filter", d{{"qty", d{{"$gte", 20}}}}}, {"$db", "pxq"}}), 0)
	start := s.TS
	s.Send(false, opMsgBytes(90, 7, 0, d{{"cursor", d{{"firstBatch", arr{}}, {"id", int64(0)}, {"ns", "pxq.items"}}}, {"ok", 1.0}}), 0)
	dbtest.CheckEveryColumn(t, s.Rows(), Table, map[string]any{
		"time_": s.TS, "upid": types.UInt128Value{}, "remote_addr": "127.0.0.1", "remote_port": int64(40000),
		"local_addr": "127.0.0.1", "local_port": int64(27017), "trace_role": int64(1), "encrypted": false,
		"req_cmd":     "find",
		"req_body":    `{"find":"items","filter":{"qty":{"$gte":20}},"$db":"pxq"}`,
		"resp_status": "cursor",
		"resp_body":   `{"cursor":{"firstBatch":[],"id":0,"ns":"pxq.items"},"ok":1.0}`,
		"latency":     s.TS - start,
	})
}

// TestStitchByID checks that replies pair with the command they name,
// whatever their order, on both sides and in pieces of any size.
func TestStitchByID(t *testing.T) {
	cmds := [][]byte{
		opMsgBytes(1, 0, 0, d{{"ping", 1}, {"$db", "admin"}}),
		opMsgBytes(2, 0, 0, d{{"count", "items"}, {"$db", "pxq"}}),
		opMsgBytes(3, 0, 0, d{{"bogus", 1}, {"$db", "pxq"}}),
	}
	replies := [][]byte{
		opMsgBytes(12, 2, 0, d{{"n", 5}, {"ok", 1.0}}),
		opMsgBytes(13, 3, 0, d{{"ok", 0.0}, {"errmsg", "no such command: 'bogus'"}, {"code", 59}, {"codeName", "CommandNotFound"}}),
		opMsgBytes(11, 1, 0, d{{"ok", 1.0}}),
	}
	want := []row{
		{"count", `{"count":"items","$db":"pxq"}`, "ok: 1", `{"n":5,"ok":1.0}`},
		{"bogus", `{"bogus":1,"$db":"pxq"}`, "ok: 0", `{"ok":0.0,"errmsg":"no such command: 'bogus'","code":59,"codeName":"CommandNotFound"}`},
		{"ping", `{"ping":1,"$db":"admin"}`, "ok: 1", `{"ok":1.0}`},
	}
	for _, role := range dbtest.Roles {
		for _, split := range []int{0, 1, 7, 16, 17} {
			s := target.Side(t, role, dbtest.Config)
			for _, c := range cmds {
				s.Send(true, c, split)
			}
			for _, r := range replies {
				s.Send(false, r, split)
			}
			dbtest.CheckRows(t, s.Rows(), want, asRow)
			if len(s.Counts) != 0 || s.Parser.Pending() != 0 {
				t.Errorf("role %d split %d: counters %v, %d pending", role, split, s.Counts, s.Parser.Pending())
			}
		}
	}
}

// TestSections checks an insert's document sequence, shown under its
// name in the command's document, and a checksum after the sections.
func TestSections(t *testing.T) {
	s := target.Side(t, protocols.RoleServer, dbtest.Config)
	s.Send(true, opMsgBytes(5, 0, flagChecksum, d{{"insert", "items"}, {"ordered", true}, {"$db", "pxq"}},
		seq{"documents", []d{{{"_id", 1}, {"name", "a"}}, {{"_id", 2}, {"name", "b"}}}}), 0)
	s.Send(false, opMsgBytes(6, 5, flagChecksum, d{{"n", 2}, {"ok", 1.0}}), 0)
	dbtest.CheckRows(t, s.Rows(), []row{{"insert",
		`{"insert":"items","ordered":true,"$db":"pxq","documents":[{"_id":1,"name":"a"},{"_id":2,"name":"b"}]}`,
		"ok: 1", `{"n":2,"ok":1.0}`}}, asRow)
}

// TestMoreToCome checks a command that asks for no reply (a row of its
// own at once, latency 0) and a command answered by a stream of replies
// (exhaust): each reply answers the one before and makes a row.
func TestMoreToCome(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(true, opMsgBytes(1, 0, flagMoreToCome, d{{"insert", "logs"}, {"writeConcern", d{{"w", 0}}}, {"$db", "pxq"}},
		seq{"documents", []d{{{"m", "x"}}}}), 0)
	s.Send(true, opMsgBytes(2, 0, flagExhaust, d{{"hello", 1}, {"maxAwaitTimeMS", 10000}, {"$db", "admin"}}), 0)
	s.Send(false, opMsgBytes(100, 2, flagMoreToCome, d{{"isWritablePrimary", true}, {"ok", 1.0}}), 0)
	s.Send(false, opMsgBytes(101, 100, flagMoreToCome, d{{"isWritablePrimary", false}, {"ok", 1.0}}), 0)
	s.Send(false, opMsgBytes(102, 101, 0, d{{"isWritablePrimary", true}, {"ok", 1.0}}), 0)
	hello := `{"hello":1,"maxAwaitTimeMS":10000,"$db":"admin"}`
	rows := s.Rows()
	dbtest.CheckRows(t, rows, []row{
		{"insert", `{"insert":"logs","writeConcern":{"w":0},"$db":"pxq","documents":[{"m":"x"}]}`, "", ""},
		{"hello", hello, "ok: 1", `{"isWritablePrimary":true,"ok":1.0}`},
		{"hello", hello, "ok: 1", `{"isWritablePrimary":false,"ok":1.0}`},
		{"hello", hello, "ok: 1", `{"isWritablePrimary":true,"ok":1.0}`},
	}, asRow)
	for i, r := range rows {
		if lat := r["latency"].(int64); (i == 0) != (lat == 0) || lat > 3000 {
			t.Errorf("row %d: latency %d", i, lat)
		}
	}
	if len(s.Counts) != 0 || s.Parser.Pending() != 0 {
		t.Errorf("counters %v, %d pending", s.Counts, s.Parser.Pending())
	}
}

// TestLegacyHandshake checks OP_QUERY commands and their OP_REPLY, as
// drivers send their first isMaster, wrapped with a read preference
// too; a query of a collection, a compressed message and the removed
// opcodes are counted as not parsed, and their replies dropped.
func TestLegacyHandshake(t *testing.T) {
	s := target.Side(t, protocols.RoleServer, dbtest.Config)
	s.Send(true, opQueryBytes(1, "admin.$cmd", d{{"isMaster", 1}, {"helloOk", true}, {"client", d{{"application", d{{"name", "app"}}}}}}), 0)
	s.Send(false, opReplyBytes(2, 1, d{{"helloOk", true}, {"ismaster", true}, {"maxWireVersion", 21}, {"ok", 1.0}}), 0)
	s.Send(true, opQueryBytes(3, "admin.$cmd", d{{"$query", d{{"ismaster", 1}}}, {"$readPreference", d{{"mode", "primaryPreferred"}}}}), 0)
	s.Send(false, opReplyBytes(4, 3, d{{"ismaster", true}, {"ok", 1}}), 0)
	s.Send(true, opQueryBytes(5, "pxq.items", d{{"qty", 1}}), 0)
	s.Send(false, opReplyBytes(6, 5, d{{"qty", 1}}, d{{"qty", 1}}), 0)
	s.Send(true, msgHeader(7, 0, opCompressed, []byte{0xdd, 7, 0, 0, 10, 0, 0, 0, 0, 1, 2, 3}), 0)
	s.Send(false, msgHeader(8, 7, opCompressed, []byte{0xdd, 7, 0, 0, 10, 0, 0, 0, 0, 1, 2, 3}), 0)
	s.Send(true, msgHeader(9, 0, opInsert, []byte("\x00\x00\x00\x00pxq.items\x00\x05\x00\x00\x00\x00")), 0)
	dbtest.CheckRows(t, s.Rows(), []row{
		{"isMaster", `{"isMaster":1,"helloOk":true,"client":{"application":{"name":"app"}}}`, "ok: 1",
			`{"helloOk":true,"ismaster":true,"maxWireVersion":21,"ok":1.0}`},
		{"ismaster", `{"$query":{"ismaster":1},"$readPreference":{"mode":"primaryPreferred"}}`, "ok: 1", `{"ismaster":true,"ok":1}`},
	}, asRow)
	if s.Counts["not_parsed"] != 5 || len(s.Counts) != 1 || s.Parser.Pending() != 0 {
		t.Errorf("counters %v, %d pending", s.Counts, s.Parser.Pending())
	}
}

// TestBounds checks that a body past the bounds is cut, stays JSON and
// says so, and that the command's name and the reply's status are kept.
func TestBounds(t *testing.T) {
	cfg := dbtest.Config
	cfg.MaxHeaderBytes, cfg.MaxBodyBytes = 200, 100
	s := target.Side(t, protocols.RoleClient, cfg)
	var docs []d
	for i := range 100 {
		docs = append(docs, d{{"_id", i}, {"text", strings.Repeat("x", 50)}})
	}
	s.Send(true, opMsgBytes(1, 0, 0, d{{"insert", "items"}, {"$db", "pxq"}}, seq{"documents", docs}), 1000)
	batch := arr{}
	for i := range 50 {
		batch = append(batch, d{{"_id", i}})
	}
	s.Send(false, opMsgBytes(2, 1, 0, d{{"cursor", d{{"firstBatch", batch}}}, {"ok", 1.0}}), 0)
	s.Send(true, opMsgBytes(3, 0, 0, d{{"getMore", int64(7)}, {"collection", strings.Repeat("c", 500)}}), 0)
	s.Send(false, opMsgBytes(4, 3, 0, d{{"ok", 1.0}, {"note", strings.Repeat("é", 500)}}), 0)
	rows := s.Rows()
	if len(rows) != 2 || len(s.Counts) != 0 {
		t.Fatalf("%d rows, counters %v", len(rows), s.Counts)
	}
	for i, r := range rows {
		got := asRow(r, row{})
		if len(got.req) > cfg.MaxHeaderBytes || len(got.resp) > cfg.MaxBodyBytes || !json.Valid([]byte(got.req)) || !json.Valid([]byte(got.resp)) ||
			!strings.HasSuffix(got.req, `"$truncated":true}`) || !strings.HasSuffix(got.resp, `"$truncated":true}`) {
			t.Errorf("row %d: %+v", i, got)
		}
	}
	if got := asRow(rows[0], row{}); got.cmd != "insert" || got.status != "cursor" || !strings.HasPrefix(got.req, `{"insert":"items","$db":"pxq","documents":[{"_id":0,`) {
		t.Errorf("row 0: %+v", got)
	}
	if got := asRow(rows[1], row{}); got.cmd != "getMore" || got.status != "ok: 1" || !strings.HasPrefix(got.req, `{"getMore":7,"collection":"ccc`) {
		t.Errorf("row 1: %+v", got)
	}
}

// TestGaps checks bytes lost within a body (the message goes on, cut
// where they were lost) and outside one (sync lost until a segment
// begins with a header; the command whose reply was lost times out).
func TestGaps(t *testing.T) {
	for _, role := range dbtest.Roles {
		s := target.Side(t, role, dbtest.Config)
		in := protocols.Ingress
		out := protocols.Egress
		if role == protocols.RoleServer {
			in, out = out, in
		}
		// The reply's last 20 bytes are lost: its row shows what came
		// before.
		s.Send(true, opMsgBytes(1, 0, 0, d{{"ping", 1}}), 0)
		reply := opMsgBytes(2, 1, 0, d{{"ok", 1.0}, {"pad", strings.Repeat("p", 30)}})
		s.Send(false, reply[:len(reply)-20], 0)
		s.Parser.Gap(in, 20)
		// A gap of the client's between messages: the next command is
		// not read until a segment begins with a header.
		s.Parser.Gap(out, 5)
		s.Send(true, opMsgBytes(3, 0, 0, d{{"ping", 2}})[5:], 0)
		s.Send(true, opMsgBytes(4, 0, 0, d{{"ping", 3}}), 0)
		s.Send(false, opMsgBytes(5, 3, 0, d{{"ok", 1.0}}), 0)
		s.Send(false, opMsgBytes(6, 4, 0, d{{"ok", 1.0}}), 0)
		dbtest.CheckRows(t, s.Rows(), []row{
			// Of the 30 bytes of text, its NUL and the document's, 20 are lost.
			{"ping", `{"ping":1}`, "ok: 1", `{"ok":1.0,"pad":"` + strings.Repeat("p", 30+2-20) + `","$truncated":true}`},
			{"ping", `{"ping":3}`, "ok: 1", `{"ok":1.0}`},
		}, asRow)
		if s.Counts["gap_resyncs"] != 1 || s.Counts["unmatched_responses"] != 1 || len(s.Counts) != 2 {
			t.Errorf("role %d: counters %v", role, s.Counts)
		}
	}
}

// TestMalformed checks that bytes that are not MongoDB's, or break
// BSON's rules, make no row and are counted.
func TestMalformed(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	bad := opMsgBytes(1, 0, 0, d{{"find", "x"}})
	bad[len(bad)-1] = 7 // the document does not end with its NUL
	s.Send(true, bad, 0)
	s.Send(false, opMsgBytes(2, 1, 0, d{{"ok", 1.0}}), 0)
	s.Send(true, opMsgBytes(3, 0, 1<<5, d{{"find", "x"}}), 0) // an undefined required flag bit
	s.Send(false, opMsgBytes(4, 3, 0, d{{"ok", 1.0}}), 0)
	s.Send(true, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0)
	s.Parser.Close(s.TS)
	if n := len(s.Rows()); n != 0 {
		t.Errorf("%d rows", n)
	}
	if s.Counts["parse_errors"] != 3 || len(s.Counts) != 1 {
		t.Errorf("counters %v", s.Counts)
	}
}

// TestTimeoutAndClose checks that unanswered commands are dropped after
// the request timeout, and counted at close.
func TestTimeoutAndClose(t *testing.T) {
	s := target.Side(t, protocols.RoleClient, dbtest.Config)
	s.Send(true, opMsgBytes(1, 0, 0, d{{"ping", 1}}), 0)
	s.Parser.Poll(s.TS + int64(dbtest.Config.RequestTimeout) + 1)
	s.Send(true, opMsgBytes(2, 0, 0, d{{"ping", 1}}), 0)
	s.Send(true, opMsgBytes(3, 0, 0, d{{"ping", 1}})[:20], 0)
	s.Parser.Close(s.TS)
	if s.Counts["requests_timed_out"] != 1 || s.Counts["closed_before_response"] != 1 || s.Counts["incomplete_at_close"] != 1 || s.Parser.Pending() != 0 {
		t.Errorf("counters %v", s.Counts)
	}
}
