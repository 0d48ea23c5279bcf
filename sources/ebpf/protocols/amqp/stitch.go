package amqp

import (
	"slices"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
	"github.com/pxq-dev/pxq/table"
)

// method is one method a side sent, with its content when it carries
// one, until its row is written.
type method struct {
	class, id uint16
	def       *methodDef // nil for a method this package does not know
	channel   uint16
	client    bool   // the client sent it
	msg       []byte // its arguments as JSON
	frameType int64  // the highest frame type it is made of
	// startTS is its first byte, endTS the last byte of its content
	// (of the method frame when it has none).
	startTS, endTS int64
	// Content: the header's body size and properties, the body bytes
	// received and the kept prefix.
	header   bool
	bodySize uint64
	got      uint64
	props    []byte
	body     []byte
}

// side is one direction: what its sender sent and waits for.
type side struct {
	r      reader
	client bool
	// content holds, per channel, the method whose content frames are
	// still coming.
	content map[uint16]*method
	// asks holds, per channel, the synchronous methods waiting for the
	// other side's answer, oldest first.
	asks map[uint16][]*method
}

// conn stitches one connection. Synchronous methods wait, per channel
// and side, for the other side's answer (their -Ok, or a close that
// refuses them); a method and its answer are one row. Asynchronous
// methods (publish, deliver, ack, …) are rows of their own, written
// when their content, if any, is whole. req_* columns hold the method
// the client sent, resp_* the server's.
type conn struct {
	env                protocols.Env
	row                *table.Row
	sides              [2]side // the client's, the server's
	pending            int     // asks waiting, both sides
	maxHeader, maxBody int
	spare              []*method
}

// maxChannels bounds the channels a side may have content in flight on.
const maxChannels = 1024

func newConn(env protocols.Env) *conn {
	c := &conn{env: env, maxHeader: env.Cfg.MaxHeaderBytes, maxBody: env.Cfg.MaxBodyBytes}
	if c.maxHeader <= 0 {
		c.maxHeader = 16 << 10
	}
	if c.maxBody <= 0 {
		c.maxBody = 1024
	}
	fail := func() { c.count("parse_errors", 1) }
	for i := range c.sides {
		s := &c.sides[i]
		s.client = i == 0
		s.content, s.asks = map[uint16]*method{}, map[uint16][]*method{}
		s.r = reader{fail: fail, keep: func(f *frame) int { return c.keep(s, f) }, msg: func(f *frame) { c.frame(s, f) }}
	}
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

// sideOf returns the side that wrote the bytes of dir.
func (c *conn) sideOf(dir protocols.Direction) *side {
	client := c.env.Conn == nil || c.env.Conn.Role != protocols.RoleServer
	if (dir == protocols.Egress) == client {
		return &c.sides[0]
	}
	return &c.sides[1]
}

func (c *conn) other(s *side) *side {
	if s.client {
		return &c.sides[1]
	}
	return &c.sides[0]
}

func (c *conn) Data(seg protocols.Segment) { c.sideOf(seg.Dir).r.feed(seg.Data, seg.TS) }

func (c *conn) Gap(dir protocols.Direction, n int) {
	s := c.sideOf(dir)
	if s.r.gap(n) {
		return
	}
	c.count("gap_resyncs", 1)
	// Content in flight cannot be followed across the lost frames: it is
	// written with what came (its body size is known).
	for _, ch := range sortedKeys(s.content) {
		m := s.content[ch]
		delete(s.content, ch)
		c.count("content_cut_by_gap", 1)
		c.complete(s, m)
	}
}

func (c *conn) Pending() int { return c.pending }

// keep says how many payload bytes of frame f to keep: methods and
// content headers up to MaxHeaderBytes, a body frame what its content's
// kept prefix still lacks.
func (c *conn) keep(s *side, f *frame) int {
	switch f.typ {
	case frameMethod, frameHeader:
		return min(f.size, c.maxHeader)
	case frameBody:
		if m := s.content[f.channel]; m != nil {
			return min(f.size, max(c.maxBody-len(m.body), 0))
		}
	}
	return 0
}

// frame handles a whole frame side s sent.
func (c *conn) frame(s *side, f *frame) {
	switch f.typ {
	case frameMethod:
		if m := s.content[f.channel]; m != nil {
			// A method before the content was whole: write what came.
			c.count("content_cut", 1)
			delete(s.content, f.channel)
			c.complete(s, m)
		}
		c.method(s, f)
	case frameHeader:
		m := s.content[f.channel]
		if m == nil || m.header {
			c.count("unexpected_content", 1)
			return
		}
		d := decoder{b: f.payload}
		d.u16() // class
		d.u16() // weight
		m.bodySize = d.u64()
		flags := d.u16()
		for more := flags; more&1 != 0 && !d.short; {
			more = d.u16() // further flag words: no basic property is there
		}
		if d.short && len(f.payload) < 14 {
			c.count("parse_errors", 1)
			delete(s.content, f.channel)
			c.release(m)
			return
		}
		m.header = true
		m.props = appendProperties(m.props[:0], &d, flags&^1)
		m.frameType, m.endTS = frameHeader, f.endTS
		if m.bodySize == 0 {
			delete(s.content, f.channel)
			c.complete(s, m)
		}
	case frameBody:
		m := s.content[f.channel]
		if m == nil || !m.header {
			c.count("unexpected_content", 1)
			return
		}
		m.body = append(m.body, f.payload...)
		m.got += uint64(f.size)
		m.frameType, m.endTS = frameBody, f.endTS
		if m.got >= m.bodySize {
			delete(s.content, f.channel)
			c.complete(s, m)
		}
	}
}

// method handles a method frame.
func (c *conn) method(s *side, f *frame) {
	if len(f.payload) < 4 {
		c.count("parse_errors", 1)
		return
	}
	m := c.newMethod()
	d := decoder{b: f.payload}
	m.class, m.id = d.u16(), d.u16()
	m.def = methods[key(m.class, m.id)]
	m.channel, m.client = f.channel, s.client
	m.frameType, m.startTS, m.endTS = frameMethod, f.startTS, f.endTS
	noWait := false
	if m.def == nil {
		c.count("unknown_methods", 1)
		m.msg = append(m.msg[:0], "{}"...)
	} else {
		m.msg, noWait = appendArgs(m.msg[:0], &d, m.def.args)
	}
	if m.def != nil && m.def.content {
		if len(s.content) >= maxChannels {
			c.count("content_dropped_channels_full", 1)
			c.release(m)
			return
		}
		s.content[m.channel] = m
		return
	}
	if noWait {
		c.emit(m, nil) // a synchronous method the other side does not answer
		c.release(m)
		return
	}
	c.complete(s, m)
}

// complete handles a method side s sent, whole with its content.
func (c *conn) complete(s *side, m *method) {
	if m.def != nil && m.def.content {
		m.msg = appendContent(m.msg, m)
	}
	o := c.other(s)
	k := key(m.class, m.id)
	if isAnswer[k] {
		if ask := c.popAsk(o, m.channel, func(a *method) bool { return a.class == m.class && slices.Contains(a.def.answers, m.id) }); ask != nil {
			c.emit(ask, m)
			c.release(ask)
		} else {
			c.count("unmatched_responses", 1)
		}
		c.release(m)
		return
	}
	if isClose(m.class, m.id) {
		// It refuses what the other side waits for on the channel (a
		// connection close: on channel 0, else the latest ask).
		if ask := c.refused(o, m); ask != nil {
			c.emit(ask, m)
			c.release(ask)
		}
	}
	if m.def != nil && m.def.answers != nil {
		limit := c.env.Cfg.MaxPending
		if limit <= 0 {
			limit = 64
		}
		if c.pending < limit {
			s.asks[m.channel] = append(s.asks[m.channel], m)
			c.pending++
			return
		}
		c.count("requests_dropped_pending_full", 1)
	}
	c.emit(m, nil)
	c.release(m)
}

// appendContent closes a method's JSON with its content: the body size,
// the properties and the kept body (nothing when its header was lost).
func appendContent(b []byte, m *method) []byte {
	if !m.header || len(b) == 0 || b[len(b)-1] != '}' {
		return b
	}
	b = b[:len(b)-1]
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"body_size":`...)
	b = strconv.AppendUint(b, m.bodySize, 10)
	b = append(b, `,"properties":`...)
	b = append(b, m.props...)
	b = append(b, `,"body":`...)
	b = wire.AppendJSONString(b, m.body)
	return append(b, '}')
}

// popAsk removes and returns the oldest ask of s on channel ch that ok
// accepts, nil if there is none.
func (c *conn) popAsk(s *side, ch uint16, ok func(*method) bool) *method {
	q := s.asks[ch]
	for i, a := range q {
		if ok(a) {
			q = slices.Delete(q, i, i+1)
			if len(q) == 0 {
				delete(s.asks, ch)
			} else {
				s.asks[ch] = q
			}
			c.pending--
			return a
		}
	}
	return nil
}

// refused returns the ask of s that the close m refuses: the oldest on
// m's channel; for a connection close with none on channel 0, the
// latest on any channel (a hard error answers the method that caused
// it).
func (c *conn) refused(s *side, m *method) *method {
	if a := c.popAsk(s, m.channel, func(*method) bool { return true }); a != nil || m.class != 10 {
		return a
	}
	var latest *method
	for _, q := range s.asks {
		for _, a := range q {
			if latest == nil || a.startTS > latest.startTS {
				latest = a
			}
		}
	}
	if latest == nil {
		return nil
	}
	return c.popAsk(s, latest.channel, func(a *method) bool { return a == latest })
}

// Poll writes the asks that waited longer than the request timeout,
// without an answer.
func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 || c.pending == 0 {
		return
	}
	for i := range c.sides {
		s := &c.sides[i]
		for _, ch := range sortedKeys(s.asks) {
			for {
				a := c.popAsk(s, ch, func(a *method) bool { return now-a.startTS > timeout })
				if a == nil {
					break
				}
				c.count("requests_timed_out", 1)
				c.emit(a, nil)
				c.release(a)
			}
		}
	}
}

// Close writes what waits: the asks without an answer, and the methods
// whose content did not all come with what came.
func (c *conn) Close(now int64) {
	for i := range c.sides {
		s := &c.sides[i]
		if s.r.pending() {
			c.count("incomplete_at_close", 1)
		}
		for _, ch := range sortedKeys(s.content) {
			m := s.content[ch]
			delete(s.content, ch)
			c.count("incomplete_at_close", 1)
			c.complete(s, m)
		}
	}
	for i := range c.sides {
		s := &c.sides[i]
		for _, ch := range sortedKeys(s.asks) {
			for {
				a := c.popAsk(s, ch, func(*method) bool { return true })
				if a == nil {
					break
				}
				c.count("closed_before_response", 1)
				c.emit(a, nil)
				c.release(a)
			}
		}
	}
}

func sortedKeys[V any](m map[uint16]V) []uint16 {
	if len(m) == 0 {
		return nil
	}
	keys := make([]uint16, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (c *conn) newMethod() *method {
	if n := len(c.spare); n > 0 {
		m := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return m
	}
	return &method{}
}

func (c *conn) release(m *method) {
	if len(c.spare) >= 16 || cap(m.msg)+cap(m.body)+cap(m.props) > 32<<10 {
		return
	}
	*m = method{msg: m.msg[:0], body: m.body[:0], props: m.props[:0]}
	c.spare = append(c.spare, m)
}
