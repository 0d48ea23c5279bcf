package redis

import (
	"bytes"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
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

// conn stitches one connection's commands to their replies: Redis
// answers in order (pipelined commands included), so commands wait in a
// FIFO. Pub/sub messages come without a command and make rows of their
// own ("PUSH PUB", as Pixie names them).
type conn struct {
	env     protocols.Env
	req     *decoder
	resp    *decoder
	cmd     command
	reply   renderer
	maxResp int
	row     *table.Row

	reqs   []*request // the queue is reqs[head:]
	head   int
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
	maxReq := env.Cfg.MaxHeaderBytes
	if maxReq <= 0 {
		maxReq = 16 << 10
	}
	maxResp := env.Cfg.MaxBodyBytes
	if maxResp <= 0 {
		maxResp = 1024
	}
	c := &conn{env: env, maxResp: maxResp, names: map[string]string{}}
	c.cmd.args.max = maxReq - 1
	c.reply.out.max = maxResp
	c.req = &decoder{keep: maxReq, maxLine: maxReq, inlineOK: true, v: &requestSink{c}}
	c.resp = &decoder{keep: maxResp, maxLine: max(maxReq, maxResp), v: &replySink{c}}
	fail := func() { c.count("parse_errors", 1) }
	c.req.fail, c.resp.fail = fail, fail
	if env.Row != nil {
		c.row = env.Row(Table)
	}
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

func (c *conn) Data(seg protocols.Segment) {
	if c.fromClient(seg.Dir) {
		c.req.feed(seg.Data, seg.TS)
	} else {
		c.resp.feed(seg.Data, seg.TS)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	d := c.resp
	if c.fromClient(dir) {
		d = c.req
	}
	if !d.gap(n) {
		c.count("gap_resyncs", 1)
		c.resync = true
	}
}

func (c *conn) Pending() int { return len(c.reqs) - c.head }

func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 {
		return
	}
	n := 0
	for c.Pending() > 0 && now-c.reqs[c.head].startTS > timeout && !c.blocking(c.reqs[c.head]) {
		c.pop()
		n++
	}
	c.count("requests_timed_out", int64(n))
}

// blocking reports whether r is a subscription, which may wait without
// end for its confirmations to come.
func (c *conn) blocking(r *request) bool { return r.expect != 0 && r.got > 0 }

func (c *conn) Close(now int64) {
	if c.req.pending() || c.resp.pending() {
		c.count("incomplete_at_close", 1)
	}
	c.count("closed_before_response", int64(c.Pending()))
	for c.Pending() > 0 {
		c.pop()
	}
}

func (c *conn) pop() *request {
	r := c.reqs[c.head]
	c.reqs[c.head] = nil
	c.head++
	if c.head == len(c.reqs) {
		c.reqs, c.head = c.reqs[:0], 0
	}
	return r
}

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
		c.count("parse_errors", 1)
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
	limit := c.env.Cfg.MaxPending * 8
	if limit <= 0 {
		limit = 512
	}
	if c.Pending() >= limit {
		c.count("requests_dropped_pending_full", 1)
		c.release(c.pop())
	}
	if c.head > 0 && len(c.reqs) == cap(c.reqs) {
		n := copy(c.reqs, c.reqs[c.head:])
		clear(c.reqs[n:])
		c.reqs, c.head = c.reqs[:n], 0
	}
	c.reqs = append(c.reqs, r)
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
			c.count("pushes_ignored", 1) // client tracking's invalidations, …
			return
		}
	}
	if c.monitor {
		return
	}
	if c.resync {
		// Pair with the last command sent before the reply began; the
		// older ones lost their replies in the gap.
		i := len(c.reqs) - 1
		for i >= c.head && c.reqs[i].startTS > p.startTS {
			i--
		}
		if i < c.head {
			c.count("unmatched_responses", 1)
			return
		}
		c.count("requests_lost_in_gap", int64(i-c.head))
		for c.head < i {
			c.release(c.pop())
		}
		c.resync = false
	}
	if c.Pending() == 0 {
		c.count("unmatched_responses", 1)
		return
	}
	r := c.pop()
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
	if c.Pending() == 0 || c.reqs[c.head].expect == 0 {
		c.count("unmatched_responses", 1)
		return
	}
	r := c.reqs[c.head]
	if len(r.resp) > 0 {
		r.resp = append(r.resp, '\n')
	}
	r.resp = append(r.resp, p.out.b[:min(len(p.out.b), max(c.maxResp-len(r.resp), 0))]...)
	r.got++
	if (r.expect > 0 && r.got < r.expect) || (r.expect < 0 && p.count != 0) {
		return
	}
	if p.count == 0 {
		c.pubsub = false
	}
	c.pop()
	c.emit(r.cmd, r.args, r.resp, r.startTS, p.endTS)
	c.release(r)
}
