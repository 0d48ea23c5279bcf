package redis

import (
	"bytes"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/stitch"
)

// request is a command waiting for its reply.
type request struct {
	cmd     string
	args    []byte
	startTS int64
	// expect is the number of replies a (P|S)SUBSCRIBE or
	// (P|S)UNSUBSCRIBE waits for (one per channel); -1 for an
	// unsubscribe from all, which ends at a count of 0. 0 for every
	// other command: one reply.
	expect int
	got    int
	resp   []byte // the confirmations so far
}

// StartTS implements stitch.Request.
func (r *request) StartTS() int64 { return r.startTS }

// conn stitches one connection's commands to their replies: Redis
// answers in order (pipelined commands included), so commands wait in a
// FIFO. Pub/sub messages come without a command and make rows of their
// own ("PUSH PUB", as Pixie names them).
type conn struct {
	stitch.Stitcher[*request]
	req   *decoder
	resp  *decoder
	cmd   command
	reply renderer

	spare  []*request
	names  map[string]string // command names, interned
	pubsub bool              // the connection has subscribed
	// monitor: after MONITOR the server streams every command it runs;
	// those replies answer nothing.
	monitor bool
	// resp3: the server speaks RESP3 (it sent a map or a push), where
	// pub/sub messages are pushes and arrays are plain replies.
	resp3  bool
	resync bool
}

func newConn(env protocols.Env) *conn {
	c := &conn{Stitcher: stitch.New[*request](env, Table), names: map[string]string{}}
	maxReq, maxResp := c.MaxReq, c.MaxResp
	c.cmd.args.max = maxReq - 1
	c.reply.out.max = maxResp
	c.req = &decoder{keep: maxReq, maxLine: maxReq, inlineOK: true, v: &requestSink{c}}
	c.resp = &decoder{keep: maxResp, maxLine: max(maxReq, maxResp), v: &replySink{c}}
	fail := func() { c.Count("parse_errors", 1) }
	c.req.fail, c.resp.fail = fail, fail
	return c
}

func (c *conn) Data(seg protocols.Segment) {
	if c.FromClient(seg.Dir) {
		c.req.feed(seg.Data, seg.TS)
	} else {
		c.resp.feed(seg.Data, seg.TS)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if c.Skip(dir, n, c.req.gap, c.resp.gap) {
		c.resync = true
	}
}

func (c *conn) Poll(now int64) {
	n := 0
	for c.Overdue(now) && !c.blocking(c.Reqs.Head()) {
		c.Reqs.Pop()
		n++
	}
	c.Count("requests_timed_out", int64(n))
}

// blocking reports whether r is a subscription, which may wait without
// end for its confirmations to come.
func (c *conn) blocking(r *request) bool { return r.expect != 0 && r.got > 0 }

func (c *conn) Close(now int64) { c.Closed(c.req.pending() || c.resp.pending(), c.Pending()) }

func (c *conn) release(r *request) {
	if len(c.spare) < 16 && cap(r.args) <= 4<<10 {
		r.args, r.resp = r.args[:0], r.resp[:0]
		c.spare = append(c.spare, r)
	}
}

// name interns a command name.
func (c *conn) name(b []byte) string {
	if s, ok := c.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.names) < 512 {
		c.names[s] = s
	}
	return s
}

// requestSink and replySink route the decoders' values.
type requestSink struct{ c *conn }
type replySink struct{ c *conn }

func (s *requestSink) begin(ts int64)             { s.c.cmd.begin(ts) }
func (s *requestSink) aggregate(kind byte, n int) { s.c.cmd.aggregate(kind, n) }
func (s *requestSink) scalar(kind byte, v []byte, size int, null bool) {
	s.c.cmd.scalar(kind, v, size, null)
}
func (s *requestSink) end() { s.c.cmd.end() }
func (s *requestSink) done(ts int64) {
	s.c.cmd.done(ts)
	s.c.command()
}
func (s *requestSink) inline(line []byte, ts int64) {
	s.c.cmd.inline(line, ts)
	s.c.command()
}

func (s *replySink) begin(ts int64)             { s.c.reply.begin(ts) }
func (s *replySink) aggregate(kind byte, n int) { s.c.reply.aggregate(kind, n) }
func (s *replySink) scalar(kind byte, v []byte, size int, null bool) {
	s.c.reply.scalar(kind, v, size, null)
}
func (s *replySink) end()                     { s.c.reply.end() }
func (s *replySink) done(ts int64)            { s.c.reply.done(ts); s.c.replied() }
func (s *replySink) inline(l []byte, t int64) {}

// command handles a command the client sent.
func (c *conn) command() {
	b := &c.cmd
	if !b.ok {
		c.Count("parse_errors", 1)
		return
	}
	var r *request
	if n := len(c.spare); n > 0 {
		r = c.spare[n-1]
		c.spare = c.spare[:n-1]
	} else {
		r = &request{}
	}
	r.cmd, r.startTS, r.expect, r.got = c.name(b.cmd), b.startTS, 0, 0
	if b.args.cut {
		b.args.b = append(b.args.b, ']') // keep the array closed
	}
	r.args = append(r.args[:0], b.args.b...)
	r.resp = r.resp[:0]
	switch r.cmd {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE":
		c.pubsub = true
		r.expect = b.nargs
	case "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		r.expect = b.nargs
		if r.expect == 0 {
			r.expect = -1
		}
	case "RESET":
		c.pubsub, c.monitor = false, false
	}
	// Clients pipeline commands (redis-benchmark -P, MULTI … EXEC).
	if c.Pending() >= stitch.MaxPending(c.Env.Cfg, true) {
		c.Count("requests_dropped_pending_full", 1)
		c.release(c.Reqs.Pop())
	}
	c.Reqs.Push(r)
}

// Kinds of pub/sub replies, by their first element.
var (
	messageKinds = [][]byte{[]byte("message"), []byte("pmessage"), []byte("smessage")}
	confirmKinds = [][]byte{[]byte("subscribe"), []byte("psubscribe"), []byte("ssubscribe"),
		[]byte("unsubscribe"), []byte("punsubscribe"), []byte("sunsubscribe")}
)

func oneOf(b []byte, set [][]byte) bool {
	for _, s := range set {
		if bytes.EqualFold(b, s) {
			return true
		}
	}
	return false
}

// replied handles a reply the server sent.
func (c *conn) replied() {
	p := &c.reply
	if p.kind == '>' || p.kind == '%' {
		c.resp3 = true
	}
	if p.kind == '>' || (p.kind == '*' && c.pubsub && !c.resp3) {
		switch {
		case oneOf(p.first, messageKinds):
			// A published message: a row without a command.
			c.emit("PUSH PUB", nil, p.out.b, p.endTS, p.endTS)
			return
		case oneOf(p.first, confirmKinds):
			c.confirm(p)
			return
		case p.kind == '>':
			c.Count("pushes_ignored", 1) // client tracking's invalidations, …
			return
		}
	}
	if c.monitor {
		return
	}
	if c.resync {
		// Pair with the last command sent before the reply began; the
		// older ones lost their replies in the gap.
		lost := c.Reqs.Older(p.startTS)
		if lost < 0 {
			c.Count("unmatched_responses", 1)
			return
		}
		c.Count("requests_lost_in_gap", int64(lost))
		for range lost {
			c.release(c.Reqs.Pop())
		}
		c.resync = false
	}
	if c.Pending() == 0 {
		c.Count("unmatched_responses", 1)
		return
	}
	r := c.Reqs.Pop()
	if r.expect != 0 && p.isErr {
		r.expect = 0 // refused: one error answers it
	}
	if r.cmd == "MONITOR" && !p.isErr {
		c.monitor = true
	}
	c.emit(r.cmd, r.args, p.out.b, r.startTS, p.endTS)
	c.release(r)
}

// confirm adds a subscription confirmation to the (un)subscribe it
// answers; the row is written with the last one.
func (c *conn) confirm(p *renderer) {
	if c.Pending() == 0 || c.Reqs.Head().expect == 0 {
		c.Count("unmatched_responses", 1)
		return
	}
	r := c.Reqs.Head()
	if len(r.resp) > 0 {
		r.resp = append(r.resp, '\n')
	}
	r.resp = append(r.resp, p.out.b[:min(len(p.out.b), max(c.MaxResp-len(r.resp), 0))]...)
	r.got++
	if (r.expect > 0 && r.got < r.expect) || (r.expect < 0 && p.count != 0) {
		return
	}
	if p.count == 0 {
		c.pubsub = false
	}
	c.Reqs.Pop()
	c.emit(r.cmd, r.args, r.resp, r.startTS, p.endTS)
	c.release(r)
}
