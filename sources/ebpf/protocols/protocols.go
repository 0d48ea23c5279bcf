// Package protocols defines what a protocol plugs into the socket
// tracer: a Protocol declares its tables, recognises its traffic from the
// first bytes of a connection (its inference rule) and makes a Parser per
// connection; the Parser turns the connection's in-order bytes into rows
// of its tables.
//
// Adding a protocol is one new package (parser, stitcher, table
// declaration, inference rule, fuzz test, real-traffic test) and one entry
// in the list of protocols/all; nothing else in the tracer changes. See
// "Adding a protocol" in docs/sources.md.
package protocols

import (
	"net/netip"
	"time"

	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Direction is the way bytes went, seen from the traced process.
type Direction uint8

const (
	Egress  Direction = 0 // written by the traced process
	Ingress Direction = 1 // read by the traced process
)

func (d Direction) String() string {
	if d == Egress {
		return "egress"
	}
	return "ingress"
}

// Role is the traced process's side of a connection. The values are those of
// the tables' trace_role column.
type Role uint8

const (
	RoleUnknown Role = 0
	RoleClient  Role = 1
	RoleServer  Role = 2
)

// Conn describes a traced connection to its parser.
type Conn struct {
	UPID types.UInt128Value
	// Local and Remote are the socket's addresses; Remote is zero for an
	// unconnected datagram socket, whose peer is each datagram's
	// (Segment.Remote).
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Role      Role
	Stream    bool // TCP (true) or datagrams (false)
	Encrypted bool
	// Protocol is the inferred protocol's ID (conn_stats.protocol), 0
	// while unknown; Unparsed is set once inference gave up, and the
	// connection's bytes are then only counted.
	Protocol int64
	Unparsed bool

	local, remote addrString
}

// addrString is an address and its AddrString, kept so that a
// connection's addresses are formatted once, not once per row.
type addrString struct {
	ap netip.AddrPort
	s  string
	ok bool
}

func (a *addrString) get(ap netip.AddrPort) string {
	if !a.ok || a.ap != ap {
		*a = addrString{ap, AddrString(ap), true}
	}
	return a.s
}

// ConnColumns are the columns every protocol table starts with: when,
// which process, and which connection. A table declaration embeds them
// first.
type ConnColumns struct {
	Time       table.TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"Time the response (or the event) was seen"`
	UPID       table.UInt128Col `col:"upid" sem:"ST_UPID" desc:"Unique process id of the traced process"`
	RemoteAddr table.StringCol  `col:"remote_addr" sem:"ST_IP_ADDRESS" desc:"IP address of the peer"`
	RemotePort table.Int64Col   `col:"remote_port" sem:"ST_PORT" desc:"Port of the peer"`
	LocalAddr  table.StringCol  `col:"local_addr" sem:"ST_IP_ADDRESS" desc:"IP address of the traced process's side"`
	LocalPort  table.Int64Col   `col:"local_port" sem:"ST_PORT" desc:"Port of the traced process's side"`
	TraceRole  table.Int64Col   `col:"trace_role" desc:"1 when the traced process is the client, 2 when it is the server"`
	Encrypted  table.BoolCol    `col:"encrypted" desc:"Whether the traffic was TLS (captured as plaintext)"`
}

// Set sets the connection columns of r for a message of c seen at ts,
// exchanged with remote (c.Remote when remote is zero).
func (cc *ConnColumns) Set(r *table.Row, ts int64, c *Conn, remote netip.AddrPort) {
	if !remote.IsValid() {
		remote = c.Remote
	}
	cc.Time.Set(r, ts)
	cc.UPID.Set(r, c.UPID)
	cc.RemoteAddr.Set(r, c.remote.get(remote))
	cc.RemotePort.Set(r, int64(remote.Port()))
	cc.LocalAddr.Set(r, c.local.get(c.Local))
	cc.LocalPort.Set(r, int64(c.Local.Port()))
	cc.TraceRole.Set(r, int64(c.Role))
	cc.Encrypted.Set(r, c.Encrypted)
}

// Segment is a run of in-order bytes of one direction of a connection. For
// datagram sockets a segment is one datagram.
type Segment struct {
	Dir  Direction
	TS   int64  // time of the syscall, ns since the epoch
	Data []byte // valid only during the call: copy what is kept
	// Remote is the peer of this datagram when the syscall named one
	// (sendto/recvfrom on an unconnected UDP socket); zero otherwise.
	Remote netip.AddrPort
}

// Config bounds what parsers keep.
type Config struct {
	MaxBodyBytes   int           // body bytes kept per message; the rest is only counted
	MaxHeaderBytes int           // a message head longer than this is a parse error
	MaxPending     int           // unanswered requests kept per connection
	RequestTimeout time.Duration // an unanswered request older than this is dropped
}

// Env is what a parser gets from the tracer.
type Env struct {
	Conn *Conn
	Cfg  Config
	// Row returns the row builder of one of the protocol's tables (one
	// of its Tables): the parser sets every column through the table's
	// handles and ends the row, which the table's writer counts, or
	// refuses if a column is missing or set twice. The builder is shared
	// by the tracer's parsers, which run on one goroutine: a row is begun
	// and ended within one call of the parser.
	Row func(*table.Decl) *table.Row
	// Count adds n to the named counter of the protocol (e.g. "parse_errors").
	Count func(name string, n int64)
}

// Protocol is one application protocol the tracer can parse.
type Protocol interface {
	// Name is a short lower-case name ("http"), used in counters.
	Name() string
	// ID is the protocol's value in conn_stats.protocol.
	ID() int64
	// Tables are the declarations of the tables the protocol's rows go
	// to; the tracer creates them.
	Tables() []*table.Decl
	// Infer looks at the first bytes seen in one direction of a connection
	// and reports whether they begin a message of this protocol, and if so
	// whether that message is a request.
	Infer(data []byte, stream bool) (match, request bool)
	// NewParser returns a parser for one connection.
	NewParser(env Env) Parser
}

// ClientSideKeeper is implemented by a Protocol whose client side is
// recorded even when pxq traces its server too, because its servers are
// usually outside what pxq traces (DNS), so scripts read the client side.
// Other protocols record a request once, on its server's side, when both
// ends are traced.
type ClientSideKeeper interface {
	KeepClientSide() bool
}

// Parser parses one connection. The tracer calls it from one goroutine.
type Parser interface {
	// Data hands the parser the next bytes of one direction.
	Data(seg Segment)
	// Gap says that n bytes of dir were lost (ring buffer full, or not
	// copied): the parser skips them or resynchronises.
	Gap(dir Direction, n int)
	// Poll drops unanswered requests older than the request timeout.
	Poll(now int64)
	// Close ends the connection: messages that end with it are emitted, the
	// rest counted.
	Close(now int64)
	// Pending reports unanswered requests held, for counters.
	Pending() int
}

// GapTimer is implemented by a Parser that wants the time of the syscall
// whose bytes were not copied (a body the BPF side skipped spans many
// calls, and the last one ends the message). The tracer then calls GapAt
// instead of Gap when it knows the time; a hole found missing between
// pieces still comes through Gap.
type GapTimer interface {
	GapAt(dir Direction, n int, ts int64)
}

// AddrString formats the address of ap for an address column: "" when
// unknown, and IPv4-mapped IPv6 addresses in their IPv4 form.
func AddrString(ap netip.AddrPort) string {
	a := ap.Addr()
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
