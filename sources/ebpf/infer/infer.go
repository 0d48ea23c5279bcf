// Package infer is the tracer's protocol inference stage: it looks at the
// first bytes of each connection, asks each protocol's inference rule
// (protocols.Protocol.Infer) in turn, and from the first match on hands
// the connection's ordered bytes to that protocol's parser. A connection
// that no rule recognises within a number of segments is marked unparsed:
// the tracker then only counts its bytes.
package infer

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
)

// maxProbeBytes bounds the bytes kept per direction for inference across
// segments.
const maxProbeBytes = 512

// Detector infers the protocols of connections. It is used by one
// goroutine.
type Detector struct {
	protos   []protocols.Protocol
	envs     []protocols.Env // per protocol, without Conn
	segments int
	// Servers, when set, leaves unparsed the client side of connections
	// whose server side is traced.
	Servers *Servers
	// Unknown counts connections no protocol recognised.
	Unknown uint64
}

// New returns a detector that tries protos in order, each segment of a
// connection up to segments segments. env is what the chosen protocol's
// parser gets (its Conn is the connection's); count adds to a protocol's
// named counter.
func New(protos []protocols.Protocol, segments int, env protocols.Env, count func(proto, name string, n int64)) *Detector {
	d := &Detector{protos: protos, segments: segments}
	for _, p := range protos {
		e := env
		name := p.Name()
		e.Count = func(counter string, n int64) { count(name, counter, n) }
		d.envs = append(d.envs, e)
	}
	return d
}

// Conn returns the inference stage of a new connection: a
// protocols.Parser that infers, then passes everything to the parser of
// the protocol it found.
func (d *Detector) Conn(c *protocols.Conn) protocols.Parser {
	return &conn{d: d, c: c}
}

// conn is one connection's inference.
type conn struct {
	d      *Detector
	c      *protocols.Conn
	parser protocols.Parser // nil until the protocol is known
	proto  protocols.Protocol
	tries  int // segments looked at without a match
	// checks counts the segments looked at for a traced server; deduped
	// is set when the connection is a client of one and left unparsed.
	checks  int
	deduped bool
	// probe holds, per direction of a stream, the first bytes seen while
	// no protocol is recognised, so that inference sees a message split
	// across reads (a 2-byte length, then the message).
	probe [2][]byte
}

// maxServerChecks is how many segments of a connection are checked for a
// traced server: its first response comes after the server has read the
// request, so the server's connection is known by then.
const maxServerChecks = 4

func (i *conn) Data(seg protocols.Segment) {
	if i.deduped {
		return
	}
	if s := i.d.Servers; s != nil && i.checks < maxServerChecks {
		if i.parser != nil || i.c.Role == protocols.RoleServer {
			i.checks++
		}
		if s.skip(i.c, i.proto) {
			// The server's rows tell these requests; what the parser
			// holds of them goes with it.
			i.deduped, i.parser = true, nil
			s.Dropped++
			return
		}
	}
	if i.parser != nil {
		i.parser.Data(seg)
		return
	}
	if i.c.Unparsed {
		return
	}
	dir := seg.Dir & 1
	probe := seg.Data
	if i.c.Stream && len(i.probe[dir]) > 0 {
		probe = append(i.probe[dir], seg.Data...)
	}
	if !i.infer(dir, probe) {
		// Keep a stream's first bytes for the next try, up to a bound;
		// past it, segments are tried alone again.
		if i.c.Stream && !i.c.Unparsed && len(probe) <= maxProbeBytes {
			i.probe[dir] = append(i.probe[dir][:0:0], probe...)
		} else {
			i.probe[dir] = nil
		}
		return
	}
	i.probe = [2][]byte{}
	seg.Data = probe
	if s := i.d.Servers; s != nil && s.skip(i.c, i.proto) {
		// A server is known from its first message, and a client of a
		// known server is left out from its first.
		i.deduped, i.parser = true, nil
		s.Dropped++
		return
	}
	i.parser.Data(seg)
}

// infer tries every protocol on data, the first bytes seen in dir, and
// makes the parser of the first that matches.
func (i *conn) infer(dir protocols.Direction, data []byte) bool {
	d := i.d
	for n, p := range d.protos {
		match, request := p.Infer(data, i.c.Stream)
		if !match {
			continue
		}
		if i.c.Role == protocols.RoleUnknown {
			// Whoever sends the request is the client.
			if request == (dir == protocols.Egress) {
				i.c.Role = protocols.RoleClient
			} else {
				i.c.Role = protocols.RoleServer
			}
		}
		i.c.Protocol = p.ID()
		i.proto = p
		env := d.envs[n]
		env.Conn = i.c
		i.parser = p.NewParser(env)
		return true
	}
	i.tries++
	if i.tries >= d.segments {
		i.c.Unparsed = true
		d.Unknown++
	}
	return false
}

func (i *conn) Gap(dir protocols.Direction, n int) {
	if i.parser != nil {
		i.parser.Gap(dir, n)
	}
}

// GapAt implements protocols.GapTimer for the parsers that do.
func (i *conn) GapAt(dir protocols.Direction, n int, ts int64) {
	if g, ok := i.parser.(protocols.GapTimer); ok {
		g.GapAt(dir, n, ts)
	} else {
		i.Gap(dir, n)
	}
}

func (i *conn) Poll(now int64) {
	if i.parser != nil {
		i.parser.Poll(now)
	}
}

func (i *conn) Close(now int64) {
	if i.parser != nil {
		i.parser.Close(now)
	}
}

func (i *conn) Pending() int {
	if i.parser != nil {
		return i.parser.Pending()
	}
	return 0
}
