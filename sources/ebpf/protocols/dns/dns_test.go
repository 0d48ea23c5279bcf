package dns

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
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

func TestTCPFraming(t *testing.T) {
	var rows [][]any
	counts := map[string]int64{}
	ci := &protocols.Conn{Stream: true, Role: protocols.RoleClient,
		Local: netip.MustParseAddrPort("127.0.0.1:5000"), Remote: netip.MustParseAddrPort("127.0.0.1:53")}
	p := Protocol{}.NewParser(protocols.Env{Conn: ci, Emit: func(_ string, vals ...any) { rows = append(rows, vals) },
		Count: func(name string, n int64) { counts[name] += n }})
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
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2 (counters %v)", len(rows), counts)
	}
	for i, name := range []string{"a.test", "b.test"} {
		if !strings.Contains(rows[i][9].(string), name) || !strings.Contains(rows[i][11].(string), "10.9.8.7") {
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
	if len(rows) != 3 || !strings.Contains(rows[2][9].(string), "d.test") {
		t.Fatalf("after a gap: %d rows %v", len(rows), rows)
	}
}
