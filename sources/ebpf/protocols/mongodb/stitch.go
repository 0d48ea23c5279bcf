package mongodb

import (
	"slices"
	"strings"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/stitch"
)

// request is a command waiting for its reply.
type request struct {
	id      int32 // the requestID its reply answers (responseTo)
	cmd     string
	body    []byte
	startTS int64
	// skip: its reply is dropped; it is counted as not parsed when
	// the request was (compressed, a legacy opcode), not when the
	// request was malformed (a parse error).
	skip skipKind
}

type skipKind uint8

const (
	parsed skipKind = iota
	skipNotParsed
	skipMalformed
)

// StartTS implements stitch.Request.
func (r *request) StartTS() int64 { return r.startTS }

// conn stitches one connection's commands to their replies. A reply
// names the command it answers (responseTo = the command's requestID),
// so commands wait by id, not in a FIFO; a reply with moreToCome set
// (exhaust cursors, streamed hello) is followed by more replies, each
// answering the one before, and each makes a row of the command.
type conn struct {
	// The Stitcher gives the bounds, counters and sides; its FIFO is
	// not used: commands wait in waiting, found by id.
	stitch.Stitcher[*request]
	waiting        []*request // oldest first
	spare          []*request
	client, server reader
	dec            decoder
	names          map[string]string // command names, interned
}

func newConn(env protocols.Env) *conn {
	c := &conn{Stitcher: stitch.New[*request](env, Table), names: map[string]string{}}
	fail := func() { c.Count("parse_errors", 1) }
	// The raw bytes kept are twice the text allowed: JSON is seldom
	// shorter than the BSON it shows, but may be (int32s, doubles).
	c.client = reader{keep: 2 * c.MaxReq, got: c.request, fail: fail}
	c.server = reader{keep: 2 * c.MaxResp, got: c.reply, fail: fail}
	return c
}

func (c *conn) Data(seg protocols.Segment) {
	if c.FromClient(seg.Dir) {
		c.client.feed(seg.Data, seg.TS)
	} else {
		c.server.feed(seg.Data, seg.TS)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int) { c.GapAt(dir, n, 0) }

// GapAt implements protocols.GapTimer: bytes of a body not copied end
// their message at ts (0: when the side's last segment was seen).
func (c *conn) GapAt(dir protocols.Direction, n int, ts int64) {
	r := &c.server
	if c.FromClient(dir) {
		r = &c.client
	}
	if ts == 0 {
		ts = r.last
	}
	if !r.gap(n, ts) {
		c.Count("gap_resyncs", 1)
	}
}

// Pending implements protocols.Parser.
func (c *conn) Pending() int { return len(c.waiting) }

func (c *conn) Poll(now int64) {
	t := c.Env.Cfg.RequestTimeout.Nanoseconds()
	n := 0
	for t > 0 && n < len(c.waiting) && now-c.waiting[n].startTS > t {
		c.release(c.waiting[n])
		n++
	}
	c.waiting = slices.Delete(c.waiting, 0, n)
	c.Count("requests_timed_out", int64(n))
}

func (c *conn) Close(now int64) {
	n := len(c.waiting)
	for _, r := range c.waiting {
		c.release(r)
	}
	c.waiting = c.waiting[:0]
	c.Closed(c.client.pending() || c.server.pending(), n)
}

func (c *conn) take() *request {
	if n := len(c.spare); n > 0 {
		r := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return r
	}
	return &request{}
}

func (c *conn) release(r *request) {
	if len(c.spare) < 16 && cap(r.body) <= 4<<10 {
		r.body = r.body[:0]
		c.spare = append(c.spare, r)
	}
}

// wait queues r for its reply; past the bound the oldest is dropped.
func (c *conn) wait(r *request) {
	if len(c.waiting) >= stitch.MaxPending(c.Env.Cfg, false) {
		c.Count("requests_dropped_pending_full", 1)
		c.release(c.waiting[0])
		c.waiting = slices.Delete(c.waiting, 0, 1)
	}
	c.waiting = append(c.waiting, r)
}

// find removes and returns the request that id answers, or nil.
func (c *conn) find(id int32) *request {
	for i, r := range c.waiting {
		if r.id == id {
			c.waiting = slices.Delete(c.waiting, i, i+1)
			return r
		}
	}
	return nil
}

// name interns a command name (at most 64 bytes of it).
func (c *conn) name(b []byte) string {
	b = b[:min(len(b), 64)]
	if s, ok := c.names[string(b)]; ok {
		return s
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(c.names) < 256 {
		c.names[s] = s
	}
	return s
}

// request handles a message the client sent.
func (c *conn) request(m *message) {
	whole := !m.cut
	var d decoded
	var err error
	switch m.opCode {
	case opMsg:
		d, err = c.dec.opMsg(m.body, whole, c.MaxReq)
	case opQuery:
		var cmd bool
		d, cmd, err = c.dec.opQuery(m.body, whole, c.MaxReq)
		if err == nil && !cmd {
			c.notParsed(m, true) // a legacy query of a collection
			return
		}
	case opCompressed, opGetMore:
		c.notParsed(m, true)
		return
	case opReply:
		c.Count("parse_errors", 1) // a reply from the client
		return
	default:
		c.notParsed(m, false) // legacy writes: no reply
		return
	}
	if err != nil {
		c.Count("parse_errors", 1)
		c.skipReply(m, skipMalformed)
		return
	}
	cmd := c.name(d.first)
	if m.opCode == opMsg && d.flags&flagMoreToCome != 0 {
		// No reply will come (an unacknowledged write): the row now.
		c.emit(cmd, c.dec.w.b, "", nil, m.endTS, m.endTS)
		return
	}
	r := c.take()
	r.id, r.cmd, r.startTS, r.skip = m.requestID, cmd, m.startTS, parsed
	r.body = append(r.body[:0], c.dec.w.b...)
	c.wait(r)
}

// notParsed counts a message that is not parsed; when it asks for a
// reply (replied), the reply is dropped too.
func (c *conn) notParsed(m *message, replied bool) {
	c.Count("not_parsed", 1)
	if replied {
		c.skipReply(m, skipNotParsed)
	}
}

// skipReply makes the reply to m wait to be dropped.
func (c *conn) skipReply(m *message, k skipKind) {
	r := c.take()
	r.id, r.cmd, r.startTS, r.skip = m.requestID, "", m.startTS, k
	r.body = r.body[:0]
	c.wait(r)
}

// reply handles a message the server sent.
func (c *conn) reply(m *message) {
	r := c.find(m.responseTo)
	if r == nil {
		c.Count("unmatched_responses", 1)
		return
	}
	whole := !m.cut
	var d decoded
	var err error
	switch {
	case r.skip == skipMalformed:
		c.release(r)
		return
	case r.skip == skipNotParsed || m.opCode == opCompressed:
		c.Count("not_parsed", 1)
		c.release(r)
		return
	case m.opCode == opMsg:
		d, err = c.dec.opMsg(m.body, whole, c.MaxResp)
	case m.opCode == opReply:
		d, err = c.dec.opReply(m.body, whole, c.MaxResp)
	default:
		err = errBad
	}
	if err != nil {
		c.Count("parse_errors", 1)
		c.release(r)
		return
	}
	c.emit(r.cmd, r.body, status(d), c.dec.w.b, r.startTS, m.endTS)
	if m.opCode == opMsg && d.flags&flagMoreToCome != 0 {
		// More replies follow, the next answering this one; its latency
		// runs from this one's end.
		r.id, r.startTS = m.requestID, m.endTS
		c.waiting = append(c.waiting, r)
		return
	}
	c.release(r)
}
