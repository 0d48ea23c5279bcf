// Package connstats declares and writes conn_stats: connection counts and
// bytes per process and peer. It observes the connection tracker: each
// connection (or, for an unconnected datagram socket, each peer it
// exchanged datagrams with) joins a group at its first report, and every
// period each group's cumulative counters become one row.
package connstats

import (
	"net/netip"

	"github.com/pxq-dev/pxq/sources/ebpf/conntrack"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Table is conn_stats: one row per group per period.
var Table = table.Declare("conn_stats", "Connection counts and bytes per process and peer, cumulative since tracing began", &cols)

// cols are the columns of conn_stats, in order.
var cols struct {
	Time       table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"Sample time"`
	UPID       table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Unique process id"`
	RemoteAddr table.StringCol  `col:"remote_addr" sem:"ST_IP_ADDRESS" desc:"IP address of the peer"`
	RemotePort table.Int64Col   `col:"remote_port" sem:"ST_PORT" desc:"Port of the peer"`
	TraceRole  table.Int64Col   `col:"trace_role" desc:"1 client, 2 server"`
	AddrFamily table.Int64Col   `col:"addr_family" desc:"Address family (2 AF_INET, 10 AF_INET6)"`
	Protocol   table.Int64Col   `col:"protocol" desc:"Inferred protocol (0 unknown, 1 HTTP, 6 DNS, …)"`
	SSL        table.BoolCol    `col:"ssl" desc:"Whether the connection is TLS"`
	ConnOpen   table.Int64Col   `col:"conn_open" desc:"Connections opened"`
	ConnClose  table.Int64Col   `col:"conn_close" desc:"Connections closed"`
	ConnActive table.Int64Col   `col:"conn_active" desc:"Connections open now"`
	BytesSent  table.Int64Col   `col:"bytes_sent" sem:"ST_BYTES" desc:"Bytes sent"`
	BytesRecv  table.Int64Col   `col:"bytes_recv" sem:"ST_BYTES" desc:"Bytes received"`
}

// key is what connections are grouped by.
type key struct {
	upid   types.UInt128Value
	raddr  string
	rport  int64
	role   int64
	family int64
	proto  int64
	ssl    bool
}

type group struct {
	open, close, sent, recv int64
	changed                 bool
	quiet                   int // reports with no change and no active connection
}

// unit is what the counter knows of one connection or datagram peer: its
// group, fixed at its first report (by when the protocol is usually
// known), and the bytes already counted there.
type unit struct {
	g          *group
	sent, recv uint64
}

// Counter keeps the groups and writes their rows. It implements
// conntrack.Observer.
type Counter struct {
	groups map[key]*group
	row    *table.Row
}

var _ conntrack.Observer = (*Counter)(nil)

// New returns a counter that writes rows with w, a writer of Table.
func New(w *table.Writer) *Counter {
	return &Counter{groups: map[key]*group{}, row: w.Row()}
}

// report adds the bytes since u's last report to its group, making u
// and joining its group first.
func (s *Counter) report(u *unit, c *conntrack.Conn, remote netip.AddrPort, sent, recv uint64) *group {
	if u.g == nil {
		k := key{
			upid:   c.Info.UPID,
			raddr:  protocols.AddrString(remote),
			rport:  int64(remote.Port()),
			role:   int64(c.Info.Role),
			family: int64(c.Family),
			proto:  c.Info.Protocol,
			ssl:    c.Info.Encrypted,
		}
		u.g = s.groups[k]
		if u.g == nil {
			u.g = &group{}
			s.groups[k] = u.g
		}
		u.g.open++
		u.g.changed = true
	}
	g := u.g
	if sent > u.sent {
		g.sent += int64(sent - u.sent)
		u.sent = sent
		g.changed = true
	}
	if recv > u.recv {
		g.recv += int64(recv - u.recv)
		u.recv = recv
		g.changed = true
	}
	return g
}

// conn reports c. An unconnected datagram socket is reported through its
// peers, and as itself only for bytes no peer was named for.
func (s *Counter) conn(c *conntrack.Conn) {
	for _, p := range c.Peers {
		s.peer(c, p)
	}
	s.self(c)
}

// self reports c as one connection, if it is one: connected, or with
// bytes of no named peer. It returns c's group, or nil.
func (s *Counter) self(c *conntrack.Conn) *group {
	sent, recv := c.Sent-c.PeerSent, c.Recv-c.PeerRecv
	u, _ := c.Report.(*unit)
	if u == nil {
		if !c.Info.Remote.IsValid() && sent == 0 && recv == 0 {
			return nil
		}
		u = &unit{}
		c.Report = u
	}
	if u.g == nil && !c.Info.Remote.IsValid() && len(c.Peers) == 1 {
		// An unconnected socket with one peer (a DNS client's): the
		// bytes no event named a peer for, those of datagrams whose
		// events were lost, went to that peer too.
		for _, p := range c.Peers {
			g := s.peer(c, p)
			if sent > u.sent {
				g.sent += int64(sent - u.sent)
				u.sent, g.changed = sent, true
			}
			if recv > u.recv {
				g.recv += int64(recv - u.recv)
				u.recv, g.changed = recv, true
			}
			return g
		}
	}
	return s.report(u, c, c.Info.Remote, sent, recv)
}

func (s *Counter) peer(c *conntrack.Conn, p *conntrack.Peer) *group {
	u, _ := p.Report.(*unit)
	if u == nil {
		u = &unit{}
		p.Report = u
	}
	return s.report(u, c, p.Addr, p.Sent, p.Recv)
}

// Closed implements conntrack.Observer: c, and each of its peers, is
// counted as closed.
func (s *Counter) Closed(c *conntrack.Conn) {
	for _, p := range c.Peers {
		s.PeerEnded(c, p)
	}
	if g := s.self(c); g != nil && g == c.Report.(*unit).g { // not a peer's it folded into
		g.close++
		g.changed = true
	}
}

// PeerEnded implements conntrack.Observer: p is counted as closed.
func (s *Counter) PeerEnded(c *conntrack.Conn, p *conntrack.Peer) {
	g := s.peer(c, p)
	g.close++
	g.changed = true
}

// Write reports the open connections, then writes one row per group
// (cumulative counters), and forgets groups that have had no open
// connection and no change for three periods.
func (s *Counter) Write(now int64, t *conntrack.Tracker) {
	t.All(func(c *conntrack.Conn) { s.conn(c) })
	r := s.row
	for k, g := range s.groups {
		active := g.open - g.close
		cols.Time.Set(r, now)
		cols.UPID.Set(r, k.upid)
		cols.RemoteAddr.Set(r, k.raddr)
		cols.RemotePort.Set(r, k.rport)
		cols.TraceRole.Set(r, k.role)
		cols.AddrFamily.Set(r, k.family)
		cols.Protocol.Set(r, k.proto)
		cols.SSL.Set(r, k.ssl)
		cols.ConnOpen.Set(r, g.open)
		cols.ConnClose.Set(r, g.close)
		cols.ConnActive.Set(r, active)
		cols.BytesSent.Set(r, g.sent)
		cols.BytesRecv.Set(r, g.recv)
		r.End() // a refused row is counted by the table's writer
		if g.changed || active > 0 {
			g.quiet = 0
		} else if g.quiet++; g.quiet >= 3 {
			delete(s.groups, k)
		}
		g.changed = false
	}
}
