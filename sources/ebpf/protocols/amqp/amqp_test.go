package amqp

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/amqp/amqptest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/types"
)

var roles = [2]protocols.Role{protocols.RoleClient, protocols.RoleServer}

var testConfig = protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}

// harness is one connection's parser, traced on one side, with its rows
// in a real amqp_events table.
type harness struct {
	*protocoltest.Harness
	c    *conn
	role protocols.Role
	ts   int64
}

func newHarness(t testing.TB, role protocols.Role, cfg protocols.Config) *harness {
	h := protocoltest.New(t, Protocol{}, protocols.Conn{
		Role: role, Stream: true,
		Local: netip.MustParseAddrPort("127.0.0.1:5672"), Remote: netip.MustParseAddrPort("127.0.0.1:40000"),
	}, cfg)
	return &harness{Harness: h, c: h.Parser.(*conn), role: role, ts: 1_000_000}
}

// send feeds b as written by the client (toServer) or the server, in
// pieces of split bytes (all at once when split is 0), 1 µs apart.
func (h *harness) send(toServer bool, b []byte, split int) {
	for len(b) > 0 {
		n := len(b)
		if split > 0 {
			n = min(split, n)
		}
		h.ts += 1000
		h.c.Data(dbtest.Segment(dbtest.Chunk{ToServer: toServer, TS: h.ts, Data: b[:n]}, h.role))
		b = b[n:]
	}
}

func (h *harness) gap(toServer bool, n int) {
	dir := protocols.Ingress
	if toServer == (h.role == protocols.RoleClient) {
		dir = protocols.Egress
	}
	h.c.Gap(dir, n)
}

func (h *harness) rows() []map[string]any { return h.Rows(Table.Name()) }

// Frames and values, encoded as the specification says, for the tests.

func frameOf(typ byte, ch uint16, payload []byte) []byte {
	b := []byte{typ, byte(ch >> 8), byte(ch)}
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return append(b, frameEnd)
}

func methodFrame(ch, class, id uint16, args ...[]byte) []byte {
	p := binary.BigEndian.AppendUint16(nil, class)
	p = binary.BigEndian.AppendUint16(p, id)
	for _, a := range args {
		p = append(p, a...)
	}
	return frameOf(frameMethod, ch, p)
}

func headerFrame(ch uint16, size uint64, flags uint16, props ...[]byte) []byte {
	p := []byte{0, 60, 0, 0}
	p = binary.BigEndian.AppendUint64(p, size)
	p = binary.BigEndian.AppendUint16(p, flags)
	for _, a := range props {
		p = append(p, a...)
	}
	return frameOf(frameHeader, ch, p)
}

func shortStr(s string) []byte { return append([]byte{byte(len(s))}, s...) }
func longStr(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}
func u16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func ftable(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return longStr(string(b))
}
func field(name string, typ byte, v []byte) []byte {
	return append(append(shortStr(name), typ), v...)
}
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// TestReplay replays the session of amqp091-go with rabbitmq-server
// recorded by realclient, whole, cut at every byte and at odd sizes, on
// both sides, and checks its rows against those the client's operations
// should make.
func TestReplay(t *testing.T) {
	chunks := dbtest.Replay(t, "testdata/amqp091_go.bin")
	wants := amqptest.Load(t, "testdata/amqp091_go.rows.json")
	for _, role := range roles {
		for _, split := range []int{0, 1, 2, 7, 100, 4096} {
			h := newHarness(t, role, testConfig)
			for _, c := range chunks {
				h.send(c.ToServer, c.Data, split)
			}
			h.c.Close(h.ts)
			rows := h.rows()
			amqptest.Check(t, rows, wants)
			if len(h.Counts) != 0 {
				t.Errorf("role %d split %d: counters %v", role, split, h.Counts)
			}
			for _, r := range rows {
				if strings.Contains(r["req_msg"].(string), `\u0000guest`) {
					t.Errorf("the password shows in %s", r["req_msg"])
				}
			}
			if t.Failed() {
				t.Fatalf("role %d split %d", role, split)
			}
		}
	}
}

func TestEveryColumn(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	h.Conn.UPID = types.UInt128Value{High: 3, Low: 4}
	h.send(true, methodFrame(7, 50, 20, u16(0), shortStr("q"), shortStr("x"), shortStr("k"), []byte{0}, ftable()), 0)
	start := h.ts
	h.send(false, methodFrame(7, 50, 21), 0)
	rows := h.rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	want := map[string]any{
		"time_": h.ts, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(40000), "local_addr": "127.0.0.1", "local_port": int64(5672),
		"trace_role": int64(2), "encrypted": false,
		"frame_type": int64(1), "channel": int64(7),
		"req_class_id": int64(50), "req_method_id": int64(20), "resp_class_id": int64(50), "resp_method_id": int64(21),
		"req_msg":  `{"queue":"q","exchange":"x","routing_key":"k","no_wait":false,"arguments":{}}`,
		"resp_msg": `{}`, "latency": h.ts - start,
	}
	if len(rows[0]) != len(Table.Relation()) || len(want) != len(rows[0]) {
		t.Fatalf("%d columns, declared %d, checked %d", len(rows[0]), len(Table.Relation()), len(want))
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, rows[0][k], v)
		}
	}
}

type row struct {
	frameType, channel           int64
	reqClass, reqMethod, reqMsg  any
	respClass, respMethod, respM any
}

func check(t *testing.T, h *harness, wants []row) {
	t.Helper()
	rows := h.rows()
	if len(rows) != len(wants) {
		for _, r := range rows {
			t.Logf("row %v", r)
		}
		t.Fatalf("%d rows, want %d", len(rows), len(wants))
	}
	for i, w := range wants {
		r := rows[i]
		got := row{r["frame_type"].(int64), r["channel"].(int64), r["req_class_id"], r["req_method_id"], r["req_msg"], r["resp_class_id"], r["resp_method_id"], r["resp_msg"]}
		w.reqClass, w.reqMethod, w.respClass, w.respMethod = toInt64(w.reqClass), toInt64(w.reqMethod), toInt64(w.respClass), toInt64(w.respMethod)
		if got != w {
			t.Errorf("row %d:\n got %v\nwant %v", i, got, w)
		}
	}
}

func toInt64(v any) any {
	if i, ok := v.(int); ok {
		return int64(i)
	}
	return v
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

// TestFieldValues decodes every field value type in a table (the
// arguments of a queue.declare), nested tables and arrays included.
func TestFieldValues(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	args := ftable(
		field("t", 't', []byte{1}), field("b", 'b', []byte{0xff}), field("B", 'B', []byte{0xff}),
		field("s", 's', u16(0xfffe)), field("u", 'u', u16(0xfffe)), field("I", 'I', u32(0xfffffffd)),
		field("i", 'i', u32(0xfffffffd)), field("l", 'l', u64(1<<40)), field("f", 'f', u32(math.Float32bits(1.5))),
		field("d", 'd', u64(math.Float64bits(-2.25))), field("D", 'D', cat([]byte{2}, u32(12345))),
		field("S", 'S', longStr("a\"b")), field("x", 'x', longStr("\x00\x01")), field("T", 'T', u64(1700000000)),
		field("V", 'V', nil), field("F", 'F', ftable(field("n", 'I', u32(1)))),
		field("A", 'A', longStr(string(cat([]byte{'I'}, u32(1), []byte{'S'}, longStr("two"))))),
	)
	h.send(true, methodFrame(1, 50, 10, u16(0), shortStr("q"), []byte{0b10010}, args), 0)
	h.send(false, methodFrame(1, 50, 11, shortStr("q"), u32(5), u32(1)), 0)
	check(t, h, []row{{1, 1, 50, 10,
		`{"queue":"q","passive":false,"durable":true,"exclusive":false,"auto_delete":false,"no_wait":true,"arguments":{"t":true,"b":-1,"B":255,"s":-2,"u":65534,"I":-3,"i":4294967293,"l":1099511627776,"f":1.5,"d":-2.25,"D":123.45,"S":"a\"b","x":"\u0000\u0001","T":1700000000,"V":null,"F":{"n":1},"A":[1,"two"]}}`,
		0, 0, ""}})
	// no_wait was set: the declare is a row alone, its declare-ok unmatched.
	counters(t, h, map[string]int64{"unmatched_responses": 1})
}

// TestContent: a publish with every property, and a body in two frames
// beyond MaxBodyBytes; a delivery without properties and an empty body;
// content frames of two channels interleaved.
func TestContent(t *testing.T) {
	cfg := testConfig
	cfg.MaxBodyBytes = 6
	h := newHarness(t, protocols.RoleServer, cfg)
	props := cat(shortStr("text/plain"), shortStr("gzip"), ftable(field("h", 'S', longStr("v"))), []byte{2, 9},
		shortStr("c-1"), shortStr("r"), shortStr("60000"), shortStr("m-1"), u64(1700000000), shortStr("t"),
		shortStr("guest"), shortStr("app"), shortStr("cl"))
	publish := methodFrame(1, 60, 40, u16(0), shortStr("x"), shortStr("k"), []byte{1})
	h.send(true, cat(publish, headerFrame(1, 10, 0xfffc, props), frameOf(frameBody, 1, []byte("01234"))), 3)
	h.send(true, frameOf(frameBody, 1, []byte("56789")), 0)
	deliver := func(ch uint16, tag uint64) []byte {
		return methodFrame(ch, 60, 60, shortStr("c"), u64(tag), []byte{0}, shortStr("x"), shortStr("k"))
	}
	h.send(false, cat(deliver(1, 1), headerFrame(1, 0, 0)), 0)
	h.send(false, cat(deliver(2, 2), deliver(3, 3), headerFrame(3, 1, 0), headerFrame(2, 1, 0),
		frameOf(frameBody, 2, []byte("b")), frameOf(frameBody, 3, []byte("c"))), 0)
	d := func(tag, body string) string {
		return `{"consumer_tag":"c","delivery_tag":` + tag + `,"redelivered":false,"exchange":"x","routing_key":"k","body_size":` + map[bool]string{true: "0", false: "1"}[body == ""] + `,"properties":{},"body":"` + body + `"}`
	}
	check(t, h, []row{
		{3, 1, 60, 40, `{"exchange":"x","routing_key":"k","mandatory":true,"immediate":false,"body_size":10,"properties":{"content_type":"text/plain","content_encoding":"gzip","headers":{"h":"v"},"delivery_mode":2,"priority":9,"correlation_id":"c-1","reply_to":"r","expiration":"60000","message_id":"m-1","timestamp":1700000000,"type":"t","user_id":"guest","app_id":"app","cluster_id":"cl"},"body":"012345"}`, 0, 0, ""},
		{2, 1, 0, 0, "", 60, 60, d("1", "")},
		{3, 2, 0, 0, "", 60, 60, d("2", "b")},
		{3, 3, 0, 0, "", 60, 60, d("3", "c")},
	})
	counters(t, h, nil)
}

// TestRefusals: a channel close answers the method it refuses, then
// waits for its close-ok; a connection close answers the latest method
// waiting on any channel (a hard error); a method waiting when the
// connection ends is written without an answer.
func TestRefusals(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, testConfig)
	closeArgs := func(code uint16, text string, class, id uint16) []byte {
		return cat(u16(code), shortStr(text), u16(class), u16(id))
	}
	h.send(true, methodFrame(1, 50, 10, u16(0), shortStr("q"), []byte{1}, ftable()), 0)
	h.send(false, methodFrame(1, 20, 40, closeArgs(404, "NOT_FOUND", 50, 10)), 0)
	h.send(true, methodFrame(1, 20, 41), 0)
	h.send(true, methodFrame(2, 40, 10, u16(0), shortStr("e"), shortStr("bad"), []byte{0}, ftable()), 0)
	h.send(false, methodFrame(0, 10, 50, closeArgs(503, "COMMAND_INVALID", 40, 10)), 0)
	h.send(true, methodFrame(3, 60, 10, u32(0), u16(5), []byte{0}), 0) // the socket closes before its answer
	h.c.Close(h.ts)
	refused := `{"reply_code":404,"reply_text":"NOT_FOUND","class_id":50,"method_id":10}`
	hard := `{"reply_code":503,"reply_text":"COMMAND_INVALID","class_id":40,"method_id":10}`
	check(t, h, []row{
		{1, 1, 50, 10, `{"queue":"q","passive":true,"durable":false,"exclusive":false,"auto_delete":false,"no_wait":false,"arguments":{}}`, 20, 40, refused},
		{1, 1, 20, 41, `{}`, 20, 40, refused},
		{1, 2, 40, 10, `{"exchange":"e","type":"bad","passive":false,"durable":false,"auto_delete":false,"internal":false,"no_wait":false,"arguments":{}}`, 10, 50, hard},
		// At the end, the client's qos and the server's connection close
		// still wait for their answers.
		{1, 3, 60, 10, `{"prefetch_size":0,"prefetch_count":5,"global":false}`, 0, 0, ""},
		{1, 0, 0, 0, "", 10, 50, hard},
	})
	counters(t, h, map[string]int64{"closed_before_response": 2})
}

// TestGaps: bytes lost inside a body keep the message (its kept prefix,
// its body size); lost across frames, the reader finds the next frame in
// a later segment, even in its middle, and the content in flight is
// written with what came.
func TestGaps(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	publish := methodFrame(1, 60, 40, u16(0), shortStr("x"), shortStr("k"), []byte{0})
	h.send(true, cat(publish, headerFrame(1, 8, 0), frameOf(frameBody, 1, []byte("0123"))[:9]), 0)
	h.gap(true, 2)
	h.send(true, frameOf(frameBody, 1, []byte("0123"))[11:], 0)
	h.send(true, frameOf(frameBody, 1, []byte("4567")), 0)
	h.send(true, cat(publish, headerFrame(1, 8, 0), frameOf(frameBody, 1, []byte("ab"))), 0)
	h.gap(true, 30)
	ack := methodFrame(1, 60, 80, u64(9), []byte{0})
	h.send(true, cat([]byte("rest of a lost frame"), ack, ack), 0)
	check(t, h, []row{
		{3, 1, 60, 40, `{"exchange":"x","routing_key":"k","mandatory":false,"immediate":false,"body_size":8,"properties":{},"body":"014567"}`, 0, 0, ""},
		{3, 1, 60, 40, `{"exchange":"x","routing_key":"k","mandatory":false,"immediate":false,"body_size":8,"properties":{},"body":"ab"}`, 0, 0, ""},
		{1, 1, 60, 80, `{"delivery_tag":9,"multiple":false}`, 0, 0, ""},
		{1, 1, 60, 80, `{"delivery_tag":9,"multiple":false}`, 0, 0, ""},
	})
	counters(t, h, map[string]int64{"gap_resyncs": 1, "content_cut_by_gap": 1})
}

// TestMalformed: a wrong frame end, an unknown frame type, a size beyond
// any frame, content without its method, an unknown method and a method
// frame too short are counted; the frames around them are rows.
func TestMalformed(t *testing.T) {
	h := newHarness(t, protocols.RoleServer, testConfig)
	ack := methodFrame(1, 60, 80, u64(1), []byte{0})
	bad := append([]byte(nil), ack...)
	bad[len(bad)-1] = 0
	h.send(true, bad, 0) // wrong end: lost until a segment holds a frame again
	h.send(true, cat(ack), 0)
	h.send(true, cat([]byte{9, 0, 1, 0, 0, 0, 0, frameEnd}), 0) // type 9
	h.send(true, ack, 0)
	h.send(true, cat([]byte{1, 0, 1, 0x7f, 0, 0, 0}), 0) // 2 GiB
	h.send(true, cat(ack, headerFrame(1, 1, 0), frameOf(frameBody, 1, []byte("x")), methodFrame(1, 99, 1), frameOf(frameMethod, 1, []byte{0, 60})), 0)
	a := row{1, 1, 60, 80, `{"delivery_tag":1,"multiple":false}`, 0, 0, ""}
	check(t, h, []row{a, a, a, {1, 1, 99, 1, `{}`, 0, 0, ""}})
	counters(t, h, map[string]int64{"parse_errors": 4, "unexpected_content": 2, "unknown_methods": 1})
}

// TestBounds: a method frame beyond MaxHeaderBytes is decoded as far as
// it was kept.
func TestBounds(t *testing.T) {
	cfg := testConfig
	cfg.MaxHeaderBytes = 40
	h := newHarness(t, protocols.RoleServer, cfg)
	h.send(true, methodFrame(1, 40, 10, u16(0), shortStr("exchange-name"), shortStr("topic"), []byte{0},
		ftable(field("alternate-exchange", 'S', longStr(strings.Repeat("a", 100))))), 9)
	h.send(false, methodFrame(1, 40, 11), 0)
	check(t, h, []row{{1, 1, 40, 10, `{"exchange":"exchange-name","type":"topic","passive":false,"durable":false,"auto_delete":false,"internal":false,"no_wait":false,"truncated":true}`, 40, 11, `{}`}})
	counters(t, h, nil)
}

// TestUnanswered: asks older than the request timeout are written
// without an answer; the asks kept are bounded.
func TestUnanswered(t *testing.T) {
	cfg := testConfig
	cfg.MaxPending = 2
	h := newHarness(t, protocols.RoleServer, cfg)
	for ch := uint16(1); ch <= 3; ch++ {
		h.send(true, methodFrame(ch, 20, 10, shortStr("")), 0)
	}
	if h.c.Pending() != 2 {
		t.Fatalf("pending %d", h.c.Pending())
	}
	h.c.Poll(h.ts + cfg.RequestTimeout.Nanoseconds())
	check(t, h, []row{
		{1, 3, 20, 10, `{}`, 0, 0, ""},
		{1, 1, 20, 10, `{}`, 0, 0, ""},
		{1, 2, 20, 10, `{}`, 0, 0, ""},
	})
	counters(t, h, map[string]int64{"requests_dropped_pending_full": 1, "requests_timed_out": 2})
	if h.c.Pending() != 0 {
		t.Errorf("pending %d", h.c.Pending())
	}
}
