package nats

import (
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// command is a client's command waiting for the server's +OK or -ERR,
// or held behind one that waits (expects false).
type command struct {
	kind           kind
	expects        bool
	body           []byte
	startTS, endTS int64
}

// conn stitches one connection. Every command is a row of its own, from
// either side, except the server's +OK and -ERR in verbose mode: the
// server answers each CONNECT, PUB, HPUB, SUB and UNSUB of a verbose
// client in order, so those commands wait in a FIFO for their answer,
// and the client's other commands (PING, PONG) are held behind them so
// that the client's rows keep their order. An -ERR that answers nothing
// waiting (a protocol error, an authorization failure of a non-verbose
// client) is a row of its own.
type conn struct {
	env            protocols.Env
	row            *table.Row
	client, server reader
	// verbose: the client's CONNECT asked for a +OK after each command,
	// or the server sent one though no CONNECT was seen.
	verbose bool
	// tls: a side began a TLS handshake (the server's INFO said TLS is
	// required): nothing more is parsed.
	tls     bool
	waiting []*command // the queue is waiting[head:]
	head    int
	spare   []*command
	body    []byte
}

func newConn(env protocols.Env) *conn {
	maxLine := env.Cfg.MaxHeaderBytes
	if maxLine <= 0 {
		maxLine = 16 << 10
	}
	maxBody := env.Cfg.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = 1024
	}
	c := &conn{env: env}
	fail := func() { c.count("parse_errors", 1) }
	tls := func() {
		if !c.tls {
			c.tls = true
			c.count("tls_conns", 1)
		}
	}
	c.client = reader{maxLine: maxLine, maxBody: maxBody, msg: c.fromClient, fail: fail, tls: tls}
	c.server = reader{maxLine: maxLine, maxBody: maxBody, msg: c.fromServer, fail: fail, tls: tls}
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

// clientDir reports whether bytes of dir were written by the client.
func (c *conn) clientDir(dir protocols.Direction) bool {
	client := c.env.Conn == nil || c.env.Conn.Role != protocols.RoleServer
	return (dir == protocols.Egress) == client
}

func (c *conn) Data(seg protocols.Segment) {
	if c.tls {
		return
	}
	if c.clientDir(seg.Dir) {
		c.client.feed(seg.Data, seg.TS)
	} else {
		c.server.feed(seg.Data, seg.TS)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if c.tls {
		return
	}
	r := &c.server
	if c.clientDir(dir) {
		r = &c.client
	}
	if !r.gap(n) {
		c.count("gap_resyncs", 1)
	}
}

func (c *conn) Pending() int { return len(c.waiting) - c.head }

// Poll writes the commands that waited longer than the request timeout
// for their +OK, without an answer.
func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 {
		return
	}
	for c.Pending() > 0 && now-c.waiting[c.head].startTS > timeout {
		if c.waiting[c.head].expects {
			c.count("requests_timed_out", 1)
		}
		c.answer(nil, 0)
	}
	c.release()
}

// Close writes the commands still waiting, without an answer.
func (c *conn) Close(now int64) {
	if c.client.pending() || c.server.pending() {
		c.count("incomplete_at_close", 1)
	}
	for c.Pending() > 0 {
		if c.waiting[c.head].expects {
			c.count("closed_before_response", 1)
		}
		c.answer(nil, 0)
	}
}

// fromClient handles a message the client sent.
func (c *conn) fromClient(m *message) {
	if m.kind == kConnect {
		c.verbose = verboseOption(m.args[0])
	}
	expects := false
	switch m.kind {
	case kConnect, kPub, kHPub, kSub, kUnsub:
		expects = c.verbose
	case kOK, kErr, kInfo, kMsg, kHMsg:
		// Only a server sends these: the roles are wrong, or this is
		// not a client.
		c.count("unexpected_commands", 1)
		return
	}
	c.body = appendBody(c.body[:0], m)
	if expects || c.Pending() > 0 {
		c.wait(m, expects)
		return
	}
	c.emit(m.kind, c.body, nil, m.endTS)
}

// fromServer handles a message the server sent.
func (c *conn) fromServer(m *message) {
	switch m.kind {
	case kOK, kErr:
		// It answers the oldest command waiting. (Not checked against
		// the times: a client's thread that reads the answer can see
		// its read return before the writing thread's write does.)
		c.release()
		if c.Pending() > 0 {
			c.answer(m, m.endTS)
			c.release()
			return
		}
		if m.kind == kOK {
			// A verbose client whose CONNECT was not seen.
			c.verbose = true
			c.count("unmatched_responses", 1)
			return
		}
		c.emit(kErr, nil, appendAnswer(c.body[:0], m), m.endTS)
		return
	case kConnect, kPub, kHPub, kSub, kUnsub:
		c.count("unexpected_commands", 1)
		return
	}
	c.body = appendBody(c.body[:0], m)
	c.emit(m.kind, c.body, nil, m.endTS)
}

// appendAnswer appends the resp text of a +OK or -ERR.
func appendAnswer(b []byte, m *message) []byte {
	b = append(b, kindNames[m.kind]...)
	if m.kind == kErr && len(m.args[0]) > 0 {
		b = append(b, ' ')
		b = append(b, m.args[0]...)
	}
	return b
}

// wait queues the client's command m, for its answer (expects) or
// behind those that wait for theirs.
func (c *conn) wait(m *message, expects bool) {
	limit := c.env.Cfg.MaxPending
	if limit <= 0 {
		limit = 64
	}
	if c.Pending() >= limit {
		c.count("requests_dropped_pending_full", 1)
		c.answer(nil, 0) // written without its answer
		c.release()
	}
	var w *command
	if n := len(c.spare); n > 0 {
		w, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		w = &command{}
	}
	w.kind, w.expects, w.startTS, w.endTS = m.kind, expects, m.startTS, m.endTS
	w.body = append(w.body[:0], c.body...)
	if c.head > 0 && len(c.waiting) == cap(c.waiting) {
		n := copy(c.waiting, c.waiting[c.head:])
		clear(c.waiting[n:])
		c.waiting, c.head = c.waiting[:n], 0
	}
	c.waiting = append(c.waiting, w)
}

// release writes the commands held at the head of the queue that wait
// for no answer.
func (c *conn) release() {
	for c.Pending() > 0 && !c.waiting[c.head].expects {
		c.answer(nil, 0)
	}
}

// answer writes the oldest waiting command with its answer a (nil: none),
// at ts (0: the command's own time).
func (c *conn) answer(a *message, ts int64) {
	w := c.waiting[c.head]
	c.waiting[c.head] = nil
	c.head++
	if c.head == len(c.waiting) {
		c.waiting, c.head = c.waiting[:0], 0
	}
	var resp []byte
	if a != nil {
		resp = appendAnswer(c.body[:0], a)
	}
	if ts == 0 {
		ts = w.endTS
	}
	c.emit(w.kind, w.body, resp, ts)
	if len(c.spare) < 16 && cap(w.body) <= 4<<10 {
		c.spare = append(c.spare, w)
	}
}
