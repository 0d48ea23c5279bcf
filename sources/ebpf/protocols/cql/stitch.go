package cql

import (
	"slices"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// conn stitches one connection: a client sends each request on a stream
// id that no other request waiting for its answer uses, and the server
// answers on that id, in any order (pipelining); EVENTs the server
// pushes (stream -1) are rows of their own.
type conn struct {
	env     protocols.Env
	row     *table.Row
	req     reader // the client's envelopes
	resp    reader // the server's
	maxText int
	version byte // the connection's protocol version, once seen
	stopped bool // nothing more is parsed (v5 compressed framing)

	pending []*request // in the order they came
	orphans []*response
	spare   []*request
	event   request // the request an EVENT's row shows
}

// maxOrphans bounds the responses held for a request not seen yet (its
// write's syscall returned after the response's read).
const maxOrphans = 4

func newConn(env protocols.Env) *conn {
	maxText := env.Cfg.MaxHeaderBytes
	if maxText <= 0 {
		maxText = 16 << 10
	}
	c := &conn{env: env, maxText: maxText}
	keep := max(maxText, 1024)
	c.req = reader{c: c, keep: keep}
	c.resp = reader{c: c, keep: keep, response: true}
	if env.Row != nil {
		c.row = env.Row(Table)
	}
	c.event = request{op: opRegister, body: []byte("-")}
	return c
}

func (c *conn) count(name string, n int64) {
	if c.env.Count != nil && n != 0 {
		c.env.Count(name, n)
	}
}

// fromClient reports whether bytes of dir were written by the client.
func (c *conn) fromClient(dir protocols.Direction) bool {
	client := c.env.Conn == nil || c.env.Conn.Role != protocols.RoleServer
	return (dir == protocols.Egress) == client
}

func (c *conn) side(dir protocols.Direction) *reader {
	if c.fromClient(dir) {
		return &c.req
	}
	return &c.resp
}

func (c *conn) Data(seg protocols.Segment) {
	if !c.stopped {
		c.side(seg.Dir).feed(seg.Data, seg.TS)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if !c.stopped {
		c.side(dir).gap(n)
	}
}

func (c *conn) Pending() int { return len(c.pending) }

func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 {
		return
	}
	n := 0
	for len(c.pending) > 0 && now-c.pending[0].startTS > timeout {
		c.release(c.take(0))
		n++
	}
	c.count("requests_timed_out", int64(n))
	if len(c.orphans) > 0 && now-c.orphans[0].endTS > timeout {
		c.count("unmatched_responses", int64(len(c.orphans)))
		c.orphans = c.orphans[:0]
	}
}

func (c *conn) Close(now int64) {
	for _, r := range []*reader{&c.req, &c.resp} {
		if r.st == sBody || r.nhdr > 0 || (r.framed && (r.fst == fPayload || r.nf > 0)) {
			c.count("incomplete_at_close", 1)
		}
	}
	c.count("closed_before_response", int64(len(c.pending)))
	c.count("unmatched_responses", int64(len(c.orphans)))
	for len(c.pending) > 0 {
		c.release(c.take(0))
	}
	c.orphans = c.orphans[:0]
}

// take removes the i'th pending request.
func (c *conn) take(i int) *request {
	r := c.pending[i]
	n := copy(c.pending[i:], c.pending[i+1:])
	c.pending[i+n] = nil
	c.pending = c.pending[:i+n]
	return r
}

func (c *conn) release(r *request) {
	if len(c.spare) < 16 && cap(r.body) <= 4<<10 {
		c.spare = append(c.spare, r)
	}
}

func (c *conn) newRequest() *request {
	if n := len(c.spare); n > 0 {
		r := c.spare[n-1]
		c.spare = c.spare[:n-1]
		*r = request{body: r.body[:0], query: r.query[:0]}
		return r
	}
	return &request{}
}

// envelope handles an envelope that ended.
func (c *conn) envelope(e *envelope) {
	if c.version == 0 {
		c.version = e.version
	}
	if e.damaged {
		c.count("damaged_messages", 1)
	}
	compressed := e.flags&flagCompressed != 0
	if compressed {
		// The body is compressed (LZ4 or Snappy, set up by STARTUP): the
		// row has the opcodes and the latency, not the bodies.
		c.count("compressed_messages", 1)
	}
	if !e.response {
		r := c.newRequest()
		r.op, r.version, r.stream, r.startTS = e.opcode, e.version, e.stream, e.startTS
		if !compressed && !e.damaged && !c.renderRequest(e, r) {
			c.count("decode_errors", 1)
			r.body = r.body[:0]
		}
		c.requested(r)
		return
	}
	resp := &response{op: e.opcode, version: e.version, stream: e.stream, endTS: e.endTS}
	if !compressed && !e.damaged && !c.renderResponse(e, resp) {
		c.count("decode_errors", 1)
		resp.body = resp.body[:0]
	}
	c.responded(resp)
}

func (c *conn) requested(r *request) {
	for i, o := range c.orphans {
		if o.stream == r.stream {
			c.orphans = append(c.orphans[:i], c.orphans[i+1:]...)
			c.count("responses_before_request", 1)
			c.pair(r, o)
			return
		}
	}
	for i, p := range c.pending {
		if p.stream == r.stream {
			// A stream id is reused once its request is answered: this
			// one's answer was lost.
			c.count("requests_lost", 1)
			c.release(c.take(i))
			break
		}
	}
	if len(c.pending) >= c.maxPending() {
		c.count("requests_dropped_pending_full", 1)
		c.release(c.take(0))
	}
	c.pending = append(c.pending, r)
}

// maxPending bounds the requests waiting for their answers: 4 ×
// MaxPending, as for HTTP/2, since a driver multiplexes all its
// concurrent requests on a connection or two (gocql up to 32,768).
func (c *conn) maxPending() int {
	if n := c.env.Cfg.MaxPending; n > 0 {
		return 4 * n
	}
	return 4 * 64
}

func (c *conn) responded(resp *response) {
	if resp.op == opEvent {
		c.event.startTS = resp.endTS
		c.emit(&c.event, resp)
		return
	}
	for i, p := range c.pending {
		if p.stream == resp.stream {
			c.pair(c.take(i), resp)
			return
		}
	}
	// Its request may not be seen yet: keep it a while.
	if len(c.orphans) >= maxOrphans {
		c.count("unmatched_responses", 1)
		c.orphans = c.orphans[1:]
	}
	c.orphans = append(c.orphans, resp)
}

// pair writes the row of r answered by resp, and learns what the pair
// tells of the connection.
func (c *conn) pair(r *request, resp *response) {
	switch {
	case r.op == opPrepare && resp.preparedID != nil:
		statements.put(resp.preparedID, prepared{query: string(r.query), types: slices.Clone(resp.types), results: resp.results})
	case resp.noMetadata && len(r.results) == resp.ncols:
		// The rows of a prepared statement, sent without their columns:
		// their names are the statement's.
		t := text{b: resp.body[:0], limit: c.maxText}
		t.rows(resp.ncols, r.results, resp.nrows)
		resp.body = t.b
	case r.op == opStartup && r.version >= 5 && resp.version >= 5 && (resp.op == opReady || resp.op == opAuthenticate):
		// v5 frames every message after the STARTUP's answer.
		if r.compression {
			// Compressed frames (LZ4) are not parsed.
			c.count("compressed_conns", 1)
			c.stopped = true
		}
		c.req.framed, c.resp.framed = true, true
	}
	c.emit(r, resp)
	c.release(r)
}
