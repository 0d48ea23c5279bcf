// Package conntrack is the tracer's connection tracking stage: it takes
// the decoded events of the BPF side (from the ring reader), keeps the
// user-space state of every traced connection, keyed like the BPF side by
// (tgid, fd), and feeds each direction's bytes through its reassembly
// stream (package stream) to the connection's next stage, protocol
// inference and then the protocol's parser. Ended connections, and the
// peers of unconnected datagram sockets, go to an Observer (conn_stats).
//
// The table is bounded: connections idle past a timeout are evicted, and
// when it is full the least recently active one makes room.
package conntrack

import (
	"net/netip"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/stream"
	"github.com/pxq-dev/pxq/types"
)

// Key identifies a connection on the node at one time: a process's fd.
type Key struct {
	TGID uint32
	FD   int32
}

// Kind is what an Event reports.
type Kind uint8

// Event kinds, as numbered by the BPF side.
const (
	Data  Kind = 1 // bytes read or written
	Open  Kind = 2 // connect or accept
	Close Kind = 3 // close
	Exit  Kind = 4 // the process exited
)

// Event is one event of the BPF side, decoded by the ring reader.
type Event struct {
	Kind    Kind
	TS      int64  // ns since the epoch
	ConnID  uint64 // BPF's id of the connection: changes when the fd is reused
	TGID    uint32
	FD      int32
	StartNS uint64 // the process's start, ns since boot

	Local, Remote netip.AddrPort
	Family        uint16
	Role          protocols.Role
	Stream        bool // a SOCK_STREAM socket
	// PeerSet says that Remote is this datagram's peer, named by the
	// syscall (sendto, recvfrom, sendmsg, recvmsg), not the socket's.
	PeerSet bool

	// Data: the bytes at offset Pos of direction Dir of the connection's
	// stream; Span is how many stream bytes the call moved (more than
	// len(Data) when the rest was not copied).
	Dir  protocols.Direction
	Pos  uint64
	Span uint32
	Data []byte
	// TLS says what the bytes of a Data event of a TLS connection are:
	// the plaintext of an SSL call (offsets count plaintext bytes), or
	// ciphertext, counted but not copied.
	TLS TLSKind

	// Close: the bytes the connection sent and received in all.
	Sent, Recv uint64
}

// TLSKind is what the bytes of a data event of a TLS connection are.
type TLSKind uint8

// TLS kinds, as numbered by the BPF side.
const (
	NotTLS    TLSKind = 0 // socket bytes of a connection not known to be TLS
	TLSPlain  TLSKind = 1 // plaintext, from a TLS library's read or write
	TLSCipher TLSKind = 2 // ciphertext of a TLS connection: Span only
)

// Conn is one traced connection.
type Conn struct {
	Key
	ID     uint64 // BPF's id: changes when the fd is reused
	Family uint16
	Info   protocols.Conn

	Streams [2]stream.Stream // by protocols.Direction
	// Next is the stage the ordered bytes go to: protocol inference,
	// then the protocol's parser.
	Next protocols.Parser

	Sent, Recv uint64 // bytes, from stream offsets (exact even when events were lost)
	LastActive int64  // ns since the epoch

	// Peers are the peers of an unconnected datagram socket (a DNS
	// server's, or a client's that uses sendto), each counted in
	// conn_stats as a connection of its own; PeerSent and PeerRecv are
	// the bytes counted in Peers, out of Sent and Recv.
	Peers              map[netip.AddrPort]*Peer
	PeerSent, PeerRecv uint64

	// Report is the conn_stats stage's state for the connection.
	Report any
}

// Peer is one peer of an unconnected datagram socket.
type Peer struct {
	Addr       netip.AddrPort
	Sent, Recv uint64 // datagram bytes
	LastActive int64
	// Report is the conn_stats stage's state for the peer.
	Report any
}

// Observer is told when a connection ends (closed, evicted, or its
// process exited) and when a peer of a datagram socket ends (idle, or the
// socket's peer table is full).
type Observer interface {
	Closed(c *Conn)
	PeerEnded(c *Conn, p *Peer)
}

// Config configures a Tracker.
type Config struct {
	// ASID is the agent short id that goes into UPIDs.
	ASID uint32
	// MaxConns bounds the connections held.
	MaxConns int
	// Next makes the next stage of a new connection.
	Next func(c *protocols.Conn) protocols.Parser
	// Observer, if set, is told of ended connections and peers.
	Observer Observer
	// OnConn, if set, is called with the process of every new connection.
	OnConn func(upid types.UInt128Value)
}

// Peers of one datagram socket are bounded, and end when idle.
const (
	MaxPeers = 1024
	PeerIdle = 30 * time.Second
)

// Stats are the tracker's counters.
type Stats struct {
	DataBytes    uint64 // payload bytes of data events
	GapBytes     uint64 // stream bytes missing (lost or not copied)
	ConnsOpened  uint64
	ConnsClosed  uint64 // ended: closed, evicted, exited
	ConnsEvicted uint64 // ended for idleness or a full table
	// TLSConns counts connections whose plaintext replaced their socket
	// bytes.
	TLSConns uint64
	// ExitPending counts requests left unanswered by processes that exited.
	ExitPending uint64
}

// Tracker holds the connections. It is used by one goroutine.
type Tracker struct {
	cfg   Config
	conns map[Key]*Conn
	byPID map[uint32]map[int32]*Conn
	// touched are the connections with pieces held out of order since
	// the last Settle.
	touched []*Conn
	Stats   Stats
}

// New returns a tracker.
func New(cfg Config) *Tracker {
	return &Tracker{cfg: cfg, conns: map[Key]*Conn{}, byPID: map[uint32]map[int32]*Conn{}}
}

// Len returns the number of connections held.
func (t *Tracker) Len() int { return len(t.conns) }

// All calls f for every connection.
func (t *Tracker) All(f func(*Conn)) {
	for _, c := range t.conns {
		f(c)
	}
}

// Handle takes an Open, Data or Close event (Exit goes to Exit).
func (t *Tracker) Handle(ev *Event) {
	switch ev.Kind {
	case Open:
		t.conn(ev)
	case Data:
		t.data(ev)
	case Close:
		c := t.conns[Key{ev.TGID, ev.FD}]
		if c == nil || c.ID != ev.ConnID {
			return
		}
		c.Sent, c.Recv = max(c.Sent, ev.Sent), max(c.Recv, ev.Recv)
		t.end(c, ev.TS)
	}
}

// conn returns the connection of ev, creating it (and ending a previous
// connection on the same fd) as needed.
func (t *Tracker) conn(ev *Event) *Conn {
	k := Key{ev.TGID, ev.FD}
	c := t.conns[k]
	if c != nil && c.ID == ev.ConnID {
		return c
	}
	if c != nil {
		t.end(c, ev.TS)
	}
	c = &Conn{
		Key:    k,
		ID:     ev.ConnID,
		Family: ev.Family,
		Info: protocols.Conn{
			UPID:   types.UPID(t.cfg.ASID, ev.TGID, roundTicks(ev.StartNS)),
			Local:  ev.Local,
			Remote: ev.Remote,
			Role:   ev.Role,
			Stream: ev.Stream,
		},
		LastActive: ev.TS,
	}
	// An unconnected datagram socket has no peer of its own: the BPF side
	// reports 0.0.0.0:0, or a data event carries the datagram's peer.
	if !ev.Stream && (ev.PeerSet || (ev.Remote.Port() == 0 && ev.Remote.Addr().IsUnspecified())) {
		c.Info.Remote = netip.AddrPort{}
	}
	c.Streams[protocols.Egress].Dir = protocols.Egress
	c.Streams[protocols.Ingress].Dir = protocols.Ingress
	c.Next = t.cfg.Next(&c.Info)
	if old := t.add(c); old != nil {
		t.endStored(old, ev.TS)
		t.Stats.ConnsEvicted++
	}
	t.Stats.ConnsOpened++
	if t.cfg.OnConn != nil {
		t.cfg.OnConn(c.Info.UPID)
	}
	return c
}

func (t *Tracker) data(ev *Event) {
	c := t.conn(ev)
	ts := ev.TS
	c.LastActive = ts
	end := ev.Pos + uint64(ev.Span)
	t.Stats.DataBytes += uint64(len(ev.Data))
	dir := ev.Dir
	if ev.TLS != NotTLS && !c.Info.Encrypted {
		t.startTLS(c, ts)
	}
	if ev.TLS != TLSPlain {
		// Socket bytes: the connection's byte counts. A TLS
		// connection's are ciphertext, never parsed (those copied
		// before the BPF side knew it was TLS included).
		if dir == protocols.Egress {
			c.Sent = max(c.Sent, end)
		} else {
			c.Recv = max(c.Recv, end)
		}
		if c.Info.Encrypted {
			return
		}
	}
	remote := netip.AddrPort{}
	if ev.PeerSet {
		remote = ev.Remote
		if !c.Info.Stream {
			t.peerBytes(c, remote, dir, uint64(ev.Span), ts)
		}
	}
	if c.Info.Unparsed {
		return
	}
	// A piece of the other direction held since before this one means
	// bytes there were lost, not late: settle it first, so that a request
	// is parsed before the response that follows it.
	if o := &c.Streams[1-dir]; o.Pending() {
		if oldest, _ := o.OldestTS(); oldest <= ts {
			t.settle(c, 1-dir)
		}
	}
	s := &c.Streams[dir]
	lost := s.Lost
	s.Add(ev.Pos, uint64(ev.Span), ts, ev.Data, remote, c.Next)
	t.Stats.GapBytes += s.Lost - lost
	if s.Pending() {
		t.touched = append(t.touched, c)
	}
}

// startTLS switches c to its plaintext: the bytes parsed so far were the
// TLS handshake, so the streams and the protocol inference start again,
// on the offsets of the plaintext, with the connection marked encrypted.
func (t *Tracker) startTLS(c *Conn, now int64) {
	c.Next.Close(now)
	c.Streams = [2]stream.Stream{{Dir: protocols.Egress}, {Dir: protocols.Ingress}}
	c.Info.Encrypted = true
	c.Info.Protocol = 0
	c.Info.Unparsed = false
	c.Next = t.cfg.Next(&c.Info)
	t.Stats.TLSConns++
}

func (t *Tracker) settle(c *Conn, d protocols.Direction) {
	s := &c.Streams[d]
	lost := s.Lost
	s.Settle(c.Next)
	t.Stats.GapBytes += s.Lost - lost
}

// peerBytes counts a datagram of an unconnected socket for its peer.
func (t *Tracker) peerBytes(c *Conn, addr netip.AddrPort, dir protocols.Direction, n uint64, now int64) {
	p := c.Peers[addr]
	if p == nil {
		if c.Peers == nil {
			c.Peers = map[netip.AddrPort]*Peer{}
		}
		if len(c.Peers) >= MaxPeers {
			var oldest *Peer
			for _, o := range c.Peers {
				if oldest == nil || o.LastActive < oldest.LastActive {
					oldest = o
				}
			}
			t.endPeer(c, oldest)
		}
		p = &Peer{Addr: addr}
		c.Peers[addr] = p
	}
	p.LastActive = now
	if dir == protocols.Egress {
		p.Sent += n
		c.PeerSent += n
	} else {
		p.Recv += n
		c.PeerRecv += n
	}
}

func (t *Tracker) endPeer(c *Conn, p *Peer) {
	delete(c.Peers, p.Addr)
	if t.cfg.Observer != nil {
		t.cfg.Observer.PeerEnded(c, p)
	}
}

// Settle declares lost the holes still open in the streams: every piece
// submitted before the batch just read has been read. The reader calls it
// after each batch.
func (t *Tracker) Settle() {
	for _, c := range t.touched {
		t.settle(c, protocols.Egress)
		t.settle(c, protocols.Ingress)
	}
	t.touched = t.touched[:0]
}

// Exit ends the connections of a process that exited (the kernel closed
// its sockets without close syscalls) and returns their keys.
func (t *Tracker) Exit(tgid uint32, now int64) []Key {
	m := t.byPID[tgid]
	if len(m) == 0 {
		return nil
	}
	keys := make([]Key, 0, len(m))
	for _, c := range m {
		keys = append(keys, c.Key)
	}
	for _, k := range keys {
		c := t.conns[k]
		t.Stats.ExitPending += uint64(c.Next.Pending())
		t.end(c, now)
	}
	return keys
}

// Expire ends the connections idle since before idleCutoff and the
// datagram peers idle for PeerIdle, and lets every parser drop what timed
// out.
func (t *Tracker) Expire(now, idleCutoff int64) {
	var idle []*Conn
	for _, c := range t.conns {
		if c.LastActive < idleCutoff {
			idle = append(idle, c)
		}
	}
	for _, c := range idle {
		t.end(c, now)
		t.Stats.ConnsEvicted++
	}
	peerCutoff := now - PeerIdle.Nanoseconds()
	for _, c := range t.conns {
		c.Next.Poll(now)
		for _, p := range c.Peers {
			if p.LastActive < peerCutoff {
				t.endPeer(c, p)
			}
		}
	}
}

// EndAll ends every connection.
func (t *Tracker) EndAll(now int64) {
	all := make([]*Conn, 0, len(t.conns))
	for _, c := range t.conns {
		all = append(all, c)
	}
	for _, c := range all {
		t.end(c, now)
	}
}

// add stores c. If the tracker is full, it first removes the least
// recently active connection and returns it (the caller ends it).
func (t *Tracker) add(c *Conn) (evicted *Conn) {
	if len(t.conns) >= t.cfg.MaxConns {
		for _, o := range t.conns {
			if evicted == nil || o.LastActive < evicted.LastActive {
				evicted = o
			}
		}
		if evicted != nil {
			t.remove(evicted)
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

func (t *Tracker) remove(c *Conn) {
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

// end removes c and ends it.
func (t *Tracker) end(c *Conn, now int64) {
	t.remove(c)
	t.endStored(c, now)
}

// endStored ends a connection already removed: what its streams hold is
// delivered, its parser closed, and the observer told.
func (t *Tracker) endStored(c *Conn, now int64) {
	t.settle(c, protocols.Egress)
	t.settle(c, protocols.Ingress)
	c.Next.Close(now)
	if t.cfg.Observer != nil {
		t.cfg.Observer.Closed(c)
	}
	t.Stats.ConnsClosed++
}

// roundTicks rounds a start time down to clock ticks (USER_HZ = 100), as
// /proc/PID/stat reports it, so that UPIDs from BPF and from /proc agree.
func roundTicks(ns uint64) uint64 { return ns / 10_000_000 * 10_000_000 }

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
