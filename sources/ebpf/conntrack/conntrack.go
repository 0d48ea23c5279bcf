// Package conntrack keeps the user-space state of traced connections,
// keyed like the BPF side by (tgid, fd): addresses, role, the two ordered
// streams, the inferred protocol and its parser, and byte counts.
//
// The table is bounded: connections idle past a timeout are evicted, and
// when it is full the least recently active one makes room.
package conntrack

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/stream"
)

// Key identifies a connection on the node at one time: a process's fd.
type Key struct {
	TGID uint32
	FD   int32
}

// Conn is one traced connection.
type Conn struct {
	Key
	ID   uint64 // BPF's id: changes when the fd is reused
	Info protocols.Conn

	Family   uint16
	Streams  [2]stream.Stream // by protocols.Direction
	Sinks    [2]stream.Sink   // where each stream delivers
	Protocol protocols.Protocol
	Parser   protocols.Parser
	// Tries counts segments looked at without recognising a protocol.
	Tries int
	// Probe holds, per direction of a stream, the first bytes seen while
	// no protocol is recognised, so that inference sees a message split
	// across reads (a 2-byte length, then the message).
	Probe [2][]byte
	// Unknown is set once inference gave up; data is then only counted.
	Unknown bool

	Sent, Recv uint64 // bytes, from stream offsets (exact even when events were lost)
	LastActive int64  // ns since the epoch

	// Group is the conn_stats group the connection reports to, fixed at
	// its first report; Reported* are the bytes already reported.
	Group                      any
	ReportedSent, ReportedRecv uint64
	Opened                     bool // counted as opened in its group
}

// Tracker holds the connections.
type Tracker struct {
	conns map[Key]*Conn
	byPID map[uint32]map[int32]*Conn
	max   int
}

// New returns a tracker that holds at most max connections.
func New(max int) *Tracker {
	return &Tracker{conns: map[Key]*Conn{}, byPID: map[uint32]map[int32]*Conn{}, max: max}
}

// Len returns the number of connections held.
func (t *Tracker) Len() int { return len(t.conns) }

// Get returns the connection at k, or nil.
func (t *Tracker) Get(k Key) *Conn { return t.conns[k] }

// Add stores c. If the tracker is full, it first returns the least recently
// active connection as evicted (the caller closes it).
func (t *Tracker) Add(c *Conn) (evicted *Conn) {
	if len(t.conns) >= t.max {
		for _, o := range t.conns {
			if evicted == nil || o.LastActive < evicted.LastActive {
				evicted = o
			}
		}
		if evicted != nil {
			t.Remove(evicted)
		}
	}
	t.conns[c.Key] = c
	m := t.byPID[c.TGID]
	if m == nil {
		m = map[int32]*Conn{}
		t.byPID[c.TGID] = m
	}
	m[c.FD] = c
	return evicted
}

// Remove deletes c.
func (t *Tracker) Remove(c *Conn) {
	if t.conns[c.Key] != c {
		return
	}
	delete(t.conns, c.Key)
	if m := t.byPID[c.TGID]; m != nil {
		delete(m, c.FD)
		if len(m) == 0 {
			delete(t.byPID, c.TGID)
		}
	}
}

// Process returns the connections of one process.
func (t *Tracker) Process(tgid uint32) []*Conn {
	m := t.byPID[tgid]
	out := make([]*Conn, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	return out
}

// Idle returns the connections inactive since before cutoff.
func (t *Tracker) Idle(cutoff int64) []*Conn {
	var out []*Conn
	for _, c := range t.conns {
		if c.LastActive < cutoff {
			out = append(out, c)
		}
	}
	return out
}

// All calls f for every connection.
func (t *Tracker) All(f func(*Conn)) {
	for _, c := range t.conns {
		f(c)
	}
}

// Addr builds an address from the BPF layout: 16 bytes of which an IPv4
// address uses the first 4.
func Addr(family uint16, b [16]byte, port uint16) netip.AddrPort {
	switch family {
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[0], b[1], b[2], b[3]}), port)
	case 10:
		return netip.AddrPortFrom(netip.AddrFrom16(b), port)
	}
	return netip.AddrPort{}
}
