package dns

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/types"
)

// msg builds a DNS message: a query for name (type A) or its answer.
func msg(id uint16, name string, answer bool) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[4:], 1) // one question
	if answer {
		b[2] = 0x81
		b[3] = 0x80
		binary.BigEndian.PutUint16(b[6:], 1)
	}
	for _, l := range strings.Split(name, ".") {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0, 0, 1, 0, 1)
	if answer {
		b = append(b, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 8, 7)
	}
	return b
}

func framed(ms ...[]byte) []byte {
	var out []byte
	for _, m := range ms {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return out
}

func newHarness(t testing.TB, stream bool) *protocoltest.Harness {
	return protocoltest.New(t, Protocol{}, protocols.Conn{Stream: stream, Role: protocols.RoleClient,
		Local: netip.MustParseAddrPort("127.0.0.1:5000"), Remote: netip.MustParseAddrPort("127.0.0.1:53")},
		protocols.Config{RequestTimeout: time.Minute})
}

func TestTCPFraming(t *testing.T) {
	h := newHarness(t, true)
	p := h.Parser
	if ok, req := (Protocol{}).Infer(framed(msg(1, "a.test", false)), true); !ok || !req {
		t.Fatal("a framed query is not inferred as a DNS request")
	}
	if ok, _ := (Protocol{}).Infer(msg(1, "a.test", false), true); ok {
		t.Error("an unframed message on a stream is inferred as DNS")
	}
	// Two queries in one write; answers split at every byte boundary.
	p.Data(protocols.Segment{Dir: protocols.Egress, TS: 100, Data: framed(msg(1, "a.test", false), msg(2, "b.test", false))})
	answers := framed(msg(1, "a.test", true), msg(2, "b.test", true))
	for i := range answers {
		p.Data(protocols.Segment{Dir: protocols.Ingress, TS: 200 + int64(i), Data: answers[i : i+1]})
	}
	rows := h.Rows(Table.Name())
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2 (counters %v)", len(rows), h.Counts)
	}
	for i, name := range []string{"a.test", "b.test"} {
		if !strings.Contains(rows[i]["req_body"].(string), name) || !strings.Contains(rows[i]["resp_body"].(string), "10.9.8.7") {
			t.Errorf("row %d: %v", i, rows[i])
		}
	}
	// A gap drops the partial message; the stream resynchronises at the
	// next whole message.
	p.Data(protocols.Segment{Dir: protocols.Egress, TS: 300, Data: framed(msg(3, "c.test", false))})
	part := framed(msg(3, "c.test", true))
	p.Data(protocols.Segment{Dir: protocols.Ingress, TS: 301, Data: part[:5]})
	p.Gap(protocols.Ingress, 10)
	p.Data(protocols.Segment{Dir: protocols.Egress, TS: 302, Data: framed(msg(4, "d.test", false))})
	p.Data(protocols.Segment{Dir: protocols.Ingress, TS: 303, Data: framed(msg(4, "d.test", true))})
	rows = h.Rows(Table.Name())
	if len(rows) != 3 || !strings.Contains(rows[2]["req_body"].(string), "d.test") {
		t.Fatalf("after a gap: %d rows %v", len(rows), rows)
	}
}

// TestEveryColumn checks every column of a dns_events row of an
// unconnected socket: the peer is the datagram's.
func TestEveryColumn(t *testing.T) {
	h := newHarness(t, false)
	h.Conn.Remote = netip.AddrPort{}
	h.Conn.UPID = types.UInt128Value{High: 1<<40 | 9, Low: 42}
	peer := netip.MustParseAddrPort("10.0.0.53:5353")
	h.Parser.Data(protocols.Segment{Dir: protocols.Egress, TS: 1000, Data: msg(7, "svc.test", false), Remote: peer})
	h.Parser.Data(protocols.Segment{Dir: protocols.Ingress, TS: 1500, Data: msg(7, "svc.test", true), Remote: peer})
	rows := h.Rows(Table.Name())
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1 (counters %v)", len(rows), h.Counts)
	}
	want := map[string]any{
		"time_": int64(1500), "upid": h.Conn.UPID,
		"remote_addr": "10.0.0.53", "remote_port": int64(5353), "local_addr": "127.0.0.1", "local_port": int64(5000),
		"trace_role": int64(1), "encrypted": false,
		"req_header":  `{"txid":7,"qr":false,"opcode":0,"aa":false,"tc":false,"rd":false,"ra":false,"ad":false,"cd":false,"rcode":0,"num_queries":1,"num_answers":0,"num_auth":0,"num_addl":0}`,
		"req_body":    `{"queries":[{"name":"svc.test","type":"A"}]}`,
		"resp_header": `{"txid":7,"qr":true,"opcode":0,"aa":false,"tc":false,"rd":true,"ra":true,"ad":false,"cd":false,"rcode":0,"num_queries":1,"num_answers":1,"num_auth":0,"num_addl":0}`,
		"resp_body":   `{"answers":[{"name":"svc.test","type":"A","addr":"10.9.8.7"}]}`,
		"latency":     int64(500),
	}
	if len(rows[0]) != len(want) {
		t.Fatalf("%d columns, checked %d", len(rows[0]), len(want))
	}
	for k, v := range want {
		if rows[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, rows[0][k], v)
		}
	}
}

// FuzzDNSParser feeds two byte strings as the query and answer sides of
// a socket, as datagrams and as a TCP stream cut in pieces, with gaps: the
// parser must not panic, must keep its buffers bounded, and every row it
// writes must be complete with JSON in its JSON columns.
func FuzzDNSParser(f *testing.F) {
	f.Add(msg(1, "a.test", false), msg(1, "a.test", true), uint8(3))
	f.Add(framed(msg(1, "a.test", false), msg(2, "b.test", false)), framed(msg(2, "b.test", true), msg(1, "a.test", true)), uint8(1))
	f.Add([]byte("\x00\x01\xc0\x0c"), msg(9, "x.y.z", true), uint8(200))
	f.Fuzz(func(t *testing.T, a, b []byte, split uint8) {
		if _, err := Parse(a); err == nil {
			Protocol{}.Infer(a, false)
		}
		Protocol{}.Infer(a, true)
		for _, stream := range []bool{false, true} {
			h := newHarness(t, stream)
			c := h.Parser.(*conn)
			step := int(split%32) + 1
			if !stream {
				step = max(len(a), len(b), 1) // one datagram each
			}
			for i := 0; i < len(a) || i < len(b); i += step {
				if i < len(a) {
					c.Data(protocols.Segment{Dir: protocols.Egress, TS: int64(i), Data: a[i:min(i+step, len(a))]})
				}
				if i < len(b) {
					c.Data(protocols.Segment{Dir: protocols.Ingress, TS: int64(i) + 1, Data: b[i:min(i+step, len(b))]})
				}
				if stream && i%5 == 4 {
					c.Gap(protocols.Ingress, int(split))
				}
			}
			if len(c.buf[0]) > maxTCPBuffer || len(c.buf[1]) > maxTCPBuffer || len(c.pending) > maxPending {
				t.Fatalf("buffers not bounded: %d, %d bytes, %d pending", len(c.buf[0]), len(c.buf[1]), len(c.pending))
			}
			c.Poll(1 << 40)
			c.Close(1 << 40)
			for _, r := range h.Rows(Table.Name()) {
				for _, col := range []string{"req_header", "req_body", "resp_header", "resp_body"} {
					if !json.Valid([]byte(r[col].(string))) {
						t.Fatalf("%s not JSON: %q", col, r[col])
					}
				}
			}
		}
	})
}
