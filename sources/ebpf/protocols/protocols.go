// Package protocols defines what a protocol parser plugs into the socket
// tracer: a Protocol recognises its traffic from the first bytes of a
// connection and makes a Parser per connection; the Parser turns the
// connection's in-order bytes into table rows.
//
// Adding a protocol is one new package (parser, stitcher, table) and one
// entry in the tracer's protocol list; nothing else in the tracer changes.
package protocols

import (
	"net/netip"
	"time"

	"github.com/pxq-dev/pxq/schema"
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
	UPID      types.UInt128Value
	Local     netip.AddrPort
	Remote    netip.AddrPort
	Role      Role
	Stream    bool // TCP (true) or datagrams (false)
	Encrypted bool
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
	// Emit appends one row, values in the table's relation order.
	Emit func(table string, vals ...any)
	// Count adds n to the named counter of the protocol (e.g. "parse_errors").
	Count func(name string, n int64)
	// Rows, when set, appends rows of typed values: the same rows as Emit
	// without boxing each value. Parsers fall back to Emit without it.
	Rows *Rows
}

// Rows appends rows of typed values for the parsers of one tracer (one
// goroutine): Begin hands out a reused value slice and Buf is scratch for
// bytes the row's values point to, both valid until the next Begin.
type Rows struct {
	Emit func(table string, vals []table.Value)
	Buf  []byte
	vals []table.Value
}

// Begin returns an empty value slice to append a row to.
func (r *Rows) Begin() []table.Value { return r.vals[:0] }

// End appends the row and keeps vals' array for the next Begin.
func (r *Rows) End(tableName string, vals []table.Value) {
	r.vals = vals[:0]
	r.Emit(tableName, vals)
}

// Protocol is one application protocol the tracer can parse.
type Protocol interface {
	// Name is a short lower-case name ("http"), used in counters.
	Name() string
	// ID is the protocol's value in conn_stats.protocol.
	ID() int64
	// Tables are the tables the protocol's rows go to.
	Tables() []schema.Table
	// Infer looks at the first bytes seen in one direction of a connection
	// and reports whether they begin a message of this protocol, and if so
	// whether that message is a request.
	Infer(data []byte, stream bool) (match, request bool)
	// NewParser returns a parser for one connection.
	NewParser(env Env) Parser
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

// AddrString formats the address of ap for an address column: "" when
// unknown, and IPv4-mapped IPv6 addresses in their IPv4 form.
func AddrString(ap netip.AddrPort) string {
	a := ap.Addr()
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
