package conntrack

import (
	"net/netip"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// recorder is a next stage that keeps what it is given.
type recorder struct {
	conn   *protocols.Conn
	data   []string
	gaps   int
	closed bool
}

func (r *recorder) Data(seg protocols.Segment) {
	r.data = append(r.data, seg.Dir.String()+":"+string(seg.Data))
}
func (r *recorder) Gap(dir protocols.Direction, n int) { r.gaps += n }
func (r *recorder) Poll(int64)                         {}
func (r *recorder) Close(int64)                        { r.closed = true }
func (r *recorder) Pending() int                       { return 0 }

// A connection's first TLS event switches it to its plaintext: what was
// parsed of the socket's bytes (the handshake) is dropped with its stage,
// a new stage gets the plaintext from its own offsets, and the socket's
// bytes after that are only counted, in the connection's byte counts.
func TestTLSSwitch(t *testing.T) {
	var stages []*recorder
	tr := New(Config{MaxConns: 8, Next: func(c *protocols.Conn) protocols.Parser {
		r := &recorder{conn: c}
		stages = append(stages, r)
		return r
	}})
	ap := netip.MustParseAddrPort
	base := Event{ConnID: 1, TGID: 7, FD: 3, Local: ap("127.0.0.1:40000"), Remote: ap("127.0.0.1:443"),
		Family: 2, Role: protocols.RoleClient, Stream: true}
	ev := func(kind Kind, tls TLSKind, dir protocols.Direction, pos uint64, span uint32, data string) {
		e := base
		e.Kind, e.TLS, e.Dir, e.Pos, e.Span, e.Data = kind, tls, dir, pos, span, []byte(data)
		if data != "" && span == 0 {
			e.Span = uint32(len(data))
		}
		tr.Handle(&e)
	}
	ev(Open, NotTLS, 0, 0, 0, "")
	ev(Data, NotTLS, protocols.Egress, 0, 0, "\x16\x03\x01hello") // a ClientHello, before TLS was known
	ev(Data, TLSCipher, protocols.Ingress, 0, 100, "")            // the server's handshake, not copied
	ev(Data, TLSPlain, protocols.Egress, 0, 0, "GET / HTTP/1.1\r\n\r\n")
	ev(Data, TLSCipher, protocols.Egress, 8, 60, "")
	ev(Data, NotTLS, protocols.Ingress, 100, 0, "late ciphertext copy")
	ev(Data, TLSPlain, protocols.Ingress, 0, 0, "HTTP/1.1 200 OK\r\n\r\n")

	if len(stages) != 2 {
		t.Fatalf("%d stages, want the first and the plaintext's", len(stages))
	}
	first, plain := stages[0], stages[1]
	if !first.closed || len(first.data) != 1 {
		t.Errorf("first stage: closed %v, data %q", first.closed, first.data)
	}
	want := []string{"egress:GET / HTTP/1.1\r\n\r\n", "ingress:HTTP/1.1 200 OK\r\n\r\n"}
	if len(plain.data) != 2 || plain.data[0] != want[0] || plain.data[1] != want[1] || plain.gaps != 0 {
		t.Errorf("plaintext stage: %q, %d gap bytes; want %q", plain.data, plain.gaps, want)
	}
	if !plain.conn.Encrypted || plain.conn.Role != protocols.RoleClient || plain.conn.Remote != base.Remote {
		t.Errorf("conn %+v", plain.conn)
	}
	c := tr.conns[Key{7, 3}]
	if c.Sent != 68 || c.Recv != 120 {
		t.Errorf("sent %d recv %d, want the socket's 68 and 120", c.Sent, c.Recv)
	}
	if tr.Stats.TLSConns != 1 {
		t.Errorf("TLSConns %d", tr.Stats.TLSConns)
	}
}
