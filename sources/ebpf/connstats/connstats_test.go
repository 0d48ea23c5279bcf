package connstats

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/protocoltest"
	"github.com/pxq-dev/pxq/table"
)

// idle is a connection's next stage that parses nothing.
type idle struct{}

func (idle) Data(protocols.Segment)            {}
func (idle) Gap(protocols.Direction, int)      {}
func (idle) Poll(int64)                        {}
func (idle) Close(int64)                       {}
func (idle) Pending() int                      { return 0 }
func newIdle(*protocols.Conn) protocols.Parser { return idle{} }

type harness struct {
	t       *testing.T
	tracker *conntrack.Tracker
	counter *Counter
	w       *table.Writer
	store   *table.Store
}

func newHarness(t *testing.T) *harness {
	store := table.NewStore(0)
	w, err := Table.Create(store)
	if err != nil {
		t.Fatal(err)
	}
	c := New(w)
	return &harness{t: t, counter: c, w: w, store: store,
		tracker: conntrack.New(conntrack.Config{MaxConns: 16, Next: newIdle, Observer: c})}
}

var (
	local  = netip.MustParseAddrPort("10.0.0.1:53")
	unconn = netip.MustParseAddrPort("0.0.0.0:0")
)

// datagram is a recvfrom (in) or sendto of n bytes on fd 3, with peer.
func (h *harness) datagram(ts int64, pos uint64, in bool, peer netip.AddrPort, n uint32) {
	dir := protocols.Egress
	if in {
		dir = protocols.Ingress
	}
	h.tracker.Handle(&conntrack.Event{Kind: conntrack.Data, TS: ts, ConnID: 1, TGID: 100, FD: 3, Family: 2,
		Local: local, Remote: peer, PeerSet: true, Role: protocols.RoleServer, Dir: dir, Pos: pos, Span: n, Data: make([]byte, n)})
}

// rows writes a report at now and returns its rows, by remote port.
func (h *harness) rows(now int64) map[int64]map[string]any {
	h.counter.Write(now, h.tracker)
	if err := h.w.Flush(); err != nil {
		h.t.Fatal(err)
	}
	if _, refused := h.w.Counts(); refused != 0 {
		h.t.Fatalf("%d rows refused", refused)
	}
	out := map[int64]map[string]any{}
	for _, r := range protocoltest.TableRows(h.t, h.store.Table(Table.Name())) {
		if r["time_"] == now {
			out[r["remote_port"].(int64)] = r
		}
	}
	return out
}

func expect(t *testing.T, r map[string]any, want map[string]any) {
	t.Helper()
	if r == nil {
		t.Fatalf("no row, want %v", want)
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("port %v: %s = %v, want %v", r["remote_port"], k, r[k], v)
		}
	}
}

// TestDatagramPeers: an unconnected socket's peers are groups of their
// own, with their own bytes; a peer ends when idle, the rest with the
// socket; the socket's unspecified address never shows.
func TestDatagramPeers(t *testing.T) {
	h := newHarness(t)
	a, b := netip.MustParseAddrPort("10.0.0.2:4000"), netip.MustParseAddrPort("10.0.0.3:5000")
	h.datagram(1, 0, true, a, 30)
	h.datagram(2, 0, false, a, 100)
	h.datagram(3, 30, true, b, 40)
	h.datagram(4, 70, true, a, 30)
	rows := h.rows(10)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want one per peer: %v", len(rows), rows)
	}
	expect(t, rows[4000], map[string]any{"remote_addr": "10.0.0.2", "trace_role": int64(2), "conn_open": int64(1),
		"conn_active": int64(1), "bytes_recv": int64(60), "bytes_sent": int64(100)})
	expect(t, rows[5000], map[string]any{"remote_addr": "10.0.0.3", "conn_open": int64(1), "bytes_recv": int64(40), "bytes_sent": int64(0)})

	// b goes quiet past PeerIdle; a does not.
	later := int64(conntrack.PeerIdle) + 3
	h.datagram(later, 100, false, a, 10)
	h.tracker.Expire(later+1, 0)
	rows = h.rows(later + 2)
	expect(t, rows[5000], map[string]any{"conn_open": int64(1), "conn_close": int64(1), "conn_active": int64(0)})
	expect(t, rows[4000], map[string]any{"conn_active": int64(1), "bytes_sent": int64(110)})

	// The socket closes: its remaining peer closes with it. The close
	// event's totals are all datagram bytes: nothing is left to report
	// under the socket itself.
	h.tracker.Handle(&conntrack.Event{Kind: conntrack.Close, TS: later + 3, ConnID: 1, TGID: 100, FD: 3, Sent: 110, Recv: 100})
	rows = h.rows(later + 4)
	expect(t, rows[4000], map[string]any{"conn_open": int64(1), "conn_close": int64(1), "conn_active": int64(0), "bytes_recv": int64(60)})
	if _, ok := rows[0]; ok || len(rows) != 2 {
		t.Errorf("rows %v, want the two peers' only", rows)
	}
}

// TestPeersBounded: past MaxPeers, the least recently active peer ends.
func TestPeersBounded(t *testing.T) {
	h := newHarness(t)
	pos := uint64(0)
	for i := 0; i <= conntrack.MaxPeers; i++ {
		p := netip.AddrPortFrom(netip.MustParseAddr("10.1.0.1"), uint16(1000+i))
		h.datagram(int64(i+1), pos, true, p, 1)
		pos++
	}
	rows := h.rows(int64(time.Hour))
	if len(rows) != conntrack.MaxPeers+1 {
		t.Fatalf("%d rows, want %d", len(rows), conntrack.MaxPeers+1)
	}
	expect(t, rows[1000], map[string]any{"conn_close": int64(1), "conn_active": int64(0), "bytes_recv": int64(1)})
	expect(t, rows[1001], map[string]any{"conn_close": int64(0), "conn_active": int64(1)})
}

// TestConnectedAndUnconnected: a connected socket is one group under its
// peer; an unconnected one with no datagram peer reports nothing.
func TestConnectedAndUnconnected(t *testing.T) {
	h := newHarness(t)
	peer := netip.MustParseAddrPort("10.0.0.9:8080")
	h.tracker.Handle(&conntrack.Event{Kind: conntrack.Open, TS: 1, ConnID: 7, TGID: 100, FD: 4, Family: 2,
		Local: local, Remote: peer, Role: protocols.RoleClient, Stream: true})
	h.tracker.Handle(&conntrack.Event{Kind: conntrack.Data, TS: 2, ConnID: 7, TGID: 100, FD: 4, Family: 2,
		Local: local, Remote: peer, Role: protocols.RoleClient, Stream: true, Dir: protocols.Egress, Pos: 0, Span: 20, Data: make([]byte, 20)})
	// An unconnected UDP socket seen only through its open: no peer yet.
	h.tracker.Handle(&conntrack.Event{Kind: conntrack.Open, TS: 3, ConnID: 8, TGID: 100, FD: 5, Family: 2,
		Local: local, Remote: unconn})
	rows := h.rows(10)
	if len(rows) != 1 {
		t.Fatalf("%d rows, want the connected socket's: %v", len(rows), rows)
	}
	expect(t, rows[8080], map[string]any{"remote_addr": "10.0.0.9", "trace_role": int64(1), "conn_open": int64(1), "bytes_sent": int64(20)})
}

// TestLostDatagramsOfOnePeer: the bytes of datagrams whose events were
// lost (a gap in the socket's positions) go to the socket's one peer, as
// a DNS client's do; with two peers they stay the socket's own, as no
// one knows whose they were.
func TestLostDatagramsOfOnePeer(t *testing.T) {
	h := newHarness(t)
	a, b := netip.MustParseAddrPort("10.0.0.2:53"), netip.MustParseAddrPort("10.0.0.3:54")
	h.datagram(1, 0, false, a, 40)
	h.datagram(2, 0, true, a, 80)
	// One query and its answer lost: the next events start past them.
	h.datagram(3, 80, false, a, 40)
	h.datagram(4, 160, true, a, 80)
	rows := h.rows(10)
	if len(rows) != 1 {
		t.Fatalf("rows %v, want the peer's only", rows)
	}
	expect(t, rows[53], map[string]any{"remote_addr": "10.0.0.2", "bytes_sent": int64(120), "bytes_recv": int64(240), "conn_open": int64(1)})

	h.tracker.Handle(&conntrack.Event{Kind: conntrack.Close, TS: 20, ConnID: 1, TGID: 100, FD: 3, Sent: 120, Recv: 240})
	rows = h.rows(21)
	expect(t, rows[53], map[string]any{"conn_open": int64(1), "conn_close": int64(1), "conn_active": int64(0), "bytes_recv": int64(240)})

	// Two peers: a loss is the socket's.
	h = newHarness(t)
	h.datagram(1, 0, false, a, 40)
	h.datagram(2, 40, false, b, 40)
	h.datagram(3, 120, false, a, 40)
	rows = h.rows(10)
	if len(rows) != 3 {
		t.Fatalf("rows %v, want the two peers' and the socket's", rows)
	}
	expect(t, rows[53], map[string]any{"bytes_sent": int64(80)})
	expect(t, rows[54], map[string]any{"bytes_sent": int64(40)})
	expect(t, rows[0], map[string]any{"remote_addr": "", "bytes_sent": int64(40)})
}
