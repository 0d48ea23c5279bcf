package infer

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/all"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/table"
)

// detector returns a detector over every protocol, writing to real
// tables, the rows of a table so far, and the counters.
func detector(t *testing.T, segments int) (*Detector, func(name string) []map[string]any, map[string]int64) {
	store := table.NewStore(0)
	writers := map[*table.Decl]*table.Writer{}
	for _, p := range all.Protocols() {
		for _, d := range p.Tables() {
			w, err := d.Create(store)
			if err != nil {
				t.Fatal(err)
			}
			writers[d] = w
		}
	}
	counts := map[string]int64{}
	env := protocols.Env{Row: func(d *table.Decl) *table.Row { return writers[d].Row() },
		Cfg: protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 64, RequestTimeout: time.Minute}}
	d := New(all.Protocols(), segments, env, func(proto, name string, n int64) { counts[proto+"."+name] += n })
	rows := func(name string) []map[string]any {
		for d, w := range writers {
			if d.Name() == name {
				w.Flush()
			}
		}
		return protocoltest.TableRows(t, store.Table(name))
	}
	return d, rows, counts
}

// A connection that predates the tracer: the role comes from who sends
// the request, and a message split across reads (DNS over TCP: the
// 2-byte length, then the message) is recognised from the bytes kept.
func TestRoleAndSplitMessage(t *testing.T) {
	d, tableRows, counts := detector(t, 16)
	c := &protocols.Conn{Stream: true}
	p := d.Conn(c)
	q := []byte("\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x04test\x00\x00\x01\x00\x01")
	framed := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
	p.Data(protocols.Segment{Dir: protocols.Ingress, TS: 1, Data: framed})
	if c.Protocol != 0 || c.Role != protocols.RoleUnknown {
		t.Fatalf("inferred from a length alone: protocol %d role %d", c.Protocol, c.Role)
	}
	p.Data(protocols.Segment{Dir: protocols.Ingress, TS: 2, Data: q})
	if c.Protocol != 6 || c.Role != protocols.RoleServer {
		t.Fatalf("protocol %d role %d, want DNS (6), server (it received the query)", c.Protocol, c.Role)
	}
	a := append([]byte(nil), q...)
	a[2] |= 0x80 // the answer, with no records
	p.Data(protocols.Segment{Dir: protocols.Egress, TS: 5, Data: append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...)})
	rows := tableRows("dns_events")
	if len(rows) != 1 || rows[0]["latency"] != int64(3) || rows[0]["trace_role"] != int64(2) {
		t.Fatalf("rows %v (counters %v)", rows, counts)
	}
}

// A connection no rule recognises is given up after the segments allowed,
// and its bytes are dropped from then on.
func TestGivesUp(t *testing.T) {
	d, _, _ := detector(t, 3)
	c := &protocols.Conn{Stream: true, Role: protocols.RoleClient}
	p := d.Conn(c)
	for i := 0; i < 3; i++ {
		p.Data(protocols.Segment{Dir: protocols.Egress, TS: int64(i), Data: []byte("\x16\x03\x01 not a protocol we know")})
	}
	if !c.Unparsed || d.Unknown != 1 {
		t.Fatalf("unparsed %v, unknown %d", c.Unparsed, d.Unknown)
	}
	p.Data(protocols.Segment{Dir: protocols.Egress, TS: 9, Data: []byte("GET / HTTP/1.1\r\n\r\n")})
	if c.Protocol != 0 {
		t.Errorf("inferred after giving up: %d", c.Protocol)
	}
	if p.Pending() != 0 {
		t.Errorf("pending %d", p.Pending())
	}
}

// A request between two traced processes is one row, the server's; the
// client side of a connection to an untraced server, of a server another
// agent traces, and of DNS are kept.
func TestClientSideOfTracedServer(t *testing.T) {
	d, tableRows, _ := detector(t, 16)
	cluster := netip.MustParseAddr("10.244.1.7")
	d.Servers = NewServers(func(a netip.Addr) bool { return a == cluster })
	srvAddr := netip.MustParseAddrPort("127.0.0.1:8080")
	req := []byte("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	exchange := func(local, remote netip.AddrPort, role protocols.Role, ts int64) protocols.Parser {
		c := &protocols.Conn{Stream: true, Role: role, Local: local, Remote: remote}
		p := d.Conn(c)
		in, out := protocols.Ingress, protocols.Egress
		if role == protocols.RoleClient {
			in, out = out, in
		}
		p.Data(protocols.Segment{Dir: in, TS: ts, Data: req})
		p.Data(protocols.Segment{Dir: out, TS: ts + 1, Data: resp})
		return p
	}
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	// The client writes its request before the server's accept is seen,
	// and reads the answer after the server wrote it: the order the ring
	// gives them.
	cc := &protocols.Conn{Stream: true, Role: protocols.RoleClient, Local: client, Remote: srvAddr}
	cp := d.Conn(cc)
	cp.Data(protocols.Segment{Dir: protocols.Egress, TS: 1, Data: req})
	sc := &protocols.Conn{Stream: true, Role: protocols.RoleServer, Local: srvAddr, Remote: client}
	sp := d.Conn(sc)
	sp.Data(protocols.Segment{Dir: protocols.Ingress, TS: 2, Data: req})
	sp.Data(protocols.Segment{Dir: protocols.Egress, TS: 3, Data: resp})
	cp.Data(protocols.Segment{Dir: protocols.Ingress, TS: 4, Data: resp})
	if cp.Pending() != 0 {
		t.Errorf("the deduplicated client holds %d requests", cp.Pending())
	}
	// A later connection to the same server: its client side is left out
	// from its first answer on.
	exchange(netip.MustParseAddrPort("127.0.0.1:40001"), srvAddr, protocols.RoleClient, 10)
	// Not traced: another port; traced by another agent: a pod address.
	exchange(netip.MustParseAddrPort("127.0.0.1:40002"), netip.MustParseAddrPort("127.0.0.1:9999"), protocols.RoleClient, 20)
	exchange(netip.MustParseAddrPort("10.0.0.2:40003"), netip.AddrPortFrom(cluster, 80), protocols.RoleClient, 30)

	var roles []any
	for _, r := range tableRows("http_events") {
		roles = append(roles, fmt.Sprint(r["trace_role"], ":", r["remote_port"]))
	}
	want := []any{"2:40000", "1:9999"}
	if fmt.Sprint(roles) != fmt.Sprint(want) {
		t.Errorf("rows (role:remote port) = %v, want %v", roles, want)
	}
	if d.Servers.Dropped != 3 {
		t.Errorf("dropped %d client-side connections, want 3", d.Servers.Dropped)
	}
}
