package kafka

import (
	"encoding/binary"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// request is a request waiting for its response.
type request struct {
	key, version int16
	corr         int32
	clientID     string
	body         []byte // its JSON; empty when not decoded
	known        bool   // its version is parsed: the response can be
	startTS      int64
}

// orphan is a response that came before its request (its read returned
// before the request's write), kept until the request comes.
type orphan struct {
	corr      int32
	raw       []byte // the body, up to the JSON bound
	size      int
	startTS   int64
	endTS     int64
	incomplet bool // raw lacks bytes of the body
}

// maxOrphans bounds the responses held for a request not seen yet.
const maxOrphans = 4

// conn stitches one connection: Kafka answers the requests of a
// connection in order, each response naming its request's correlation
// id, so requests wait in a FIFO and a response pairs with the request
// of its id (those before it lost their responses). A Produce with acks
// 0 has no response: its row is written when the request ends.
type conn struct {
	env     protocols.Env
	row     *table.Row
	req     stream // the client's messages
	resp    stream // the server's
	reqs    []*request
	head    int
	spare   []*request
	orphans []orphan
	maxJSON int
	scratch decoder // decodes orphans
	// lastClientID is the client id of the last request.
	lastClientID string
}

func newConn(env protocols.Env) *conn {
	maxJSON := env.Cfg.MaxHeaderBytes
	if maxJSON <= 0 {
		maxJSON = 16 << 10
	}
	c := &conn{env: env, maxJSON: maxJSON}
	c.req = stream{c: c}
	c.resp = stream{c: c, response: true}
	c.req.dec.topics, c.resp.dec.topics, c.scratch.topics = topics, topics, topics
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
	s := &c.resp
	if c.fromClient(dir) {
		s = &c.req
	}
	s.gap(n)
}

func (c *conn) Pending() int { return len(c.reqs) - c.head }

func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 {
		return
	}
	n := 0
	for c.Pending() > 0 && now-c.reqs[c.head].startTS > timeout {
		c.release(c.pop())
		n++
	}
	c.count("requests_timed_out", int64(n))
	if len(c.orphans) > 0 && now-c.orphans[0].endTS > timeout {
		c.count("unmatched_responses", int64(len(c.orphans)))
		c.orphans = c.orphans[:0]
	}
}

func (c *conn) Close(now int64) {
	if c.req.st == sBody || c.req.nhdr > 0 || c.resp.st == sBody || c.resp.nhdr > 0 {
		c.count("incomplete_at_close", 1)
	}
	c.count("closed_before_response", int64(c.Pending()))
	c.count("unmatched_responses", int64(len(c.orphans)))
	for c.Pending() > 0 {
		c.release(c.pop())
	}
	c.orphans = c.orphans[:0]
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
	if len(c.spare) < 16 && cap(r.body) <= 4<<10 {
		r.body = r.body[:0]
		c.spare = append(c.spare, r)
	}
}

// clientID returns b as a string, the same string as the last request's
// when they are equal (a connection's requests have one client id).
func (c *conn) clientID(b []byte) string {
	if string(b) != c.lastClientID {
		c.lastClientID = string(b)
	}
	return c.lastClientID
}

func (c *conn) newRequest() *request {
	if n := len(c.spare); n > 0 {
		r := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return r
	}
	return &request{}
}

// requested queues a request whose message ended.
func (c *conn) requested(r *request, noResponse bool) {
	if i := c.orphanOf(r.corr); i >= 0 {
		o := c.orphans[i]
		c.orphans = append(c.orphans[:i], c.orphans[i+1:]...)
		c.count("responses_before_request", 1)
		c.answerOrphan(r, &o)
		c.release(r)
		return
	}
	if noResponse {
		c.emit(r, nil, r.startTS)
		c.release(r)
		return
	}
	limit := c.env.Cfg.MaxPending
	if limit <= 0 {
		limit = 64
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

// match finds the request a response of correlation id corr answers and
// takes it off the queue, with the requests before it (their responses
// were lost).
func (c *conn) match(corr int32) *request {
	for i := c.head; i < len(c.reqs); i++ {
		if c.reqs[i].corr != corr {
			continue
		}
		c.count("requests_lost", int64(i-c.head))
		for c.head < i {
			c.release(c.pop())
		}
		return c.pop()
	}
	return nil
}

// waiting reports whether a request of correlation id corr is queued.
func (c *conn) waiting(corr int32) bool {
	for i := c.head; i < len(c.reqs); i++ {
		if c.reqs[i].corr == corr {
			return true
		}
	}
	return false
}

func (c *conn) orphanOf(corr int32) int {
	for i, o := range c.orphans {
		if o.corr == corr {
			return i
		}
	}
	return -1
}

// answerOrphan decodes a response that came before its request r.
func (c *conn) answerOrphan(r *request, o *orphan) {
	var resp []byte
	if ps := apis[r.key]; r.known && ps != nil && !o.incomplet {
		d := &c.scratch
		d.reset(ps.resp[r.version], o.size, c.maxJSON, false)
		d.feed(o.raw)
		if d.done() {
			resp = d.out.b
		} else {
			c.count("decode_errors", 1)
		}
	}
	c.emit(r, resp, o.endTS)
}

// stream frames one direction: each message is an int32 size, then the
// header (a request's API key, version and correlation id, a response's
// correlation id) and the body.
type stream struct {
	c        *conn
	response bool
	st       sstate
	hdr      [8]byte
	nhdr     int
	size     int // the message's size after the int32
	got      int // bytes of it seen
	startTS  int64
	lastTS   int64
	dec      decoder
	decoding bool // the body runs through dec
	headOnly bool // only the request header's client id is read
	damaged  bool // bytes of the message were lost

	req *request // a request being read, or the request a response answers
	// orphan: a response whose request is not seen yet, kept raw.
	orphan *orphan
}

type sstate uint8

const (
	sLen  sstate = iota // reading the size (nhdr bytes so far)
	sHead               // reading the header
	sBody               // inside the body
	sLost               // lost sync: waiting for a segment that starts a message
)

// Bounds on sizes: a broker refuses requests over socket.request.max.bytes
// (100 MiB by default); responses can be as large as a fetch allows.
const (
	maxRequest  = 100 << 20
	maxResponse = 1 << 30
)

// headerOnly reads a request's client id and skips the rest, for API keys
// and versions not parsed.
var headerOnly = &prog{ops: []op{{t: tClientID}}, object: true}

func (s *stream) feed(data []byte, ts int64) {
	s.lastTS = ts
	if s.st == sLost {
		if !s.plausible(data) {
			return
		}
		s.st, s.nhdr = sLen, 0
	}
	for len(data) > 0 {
		switch s.st {
		case sLen, sHead:
			if s.st == sLen && s.nhdr == 0 {
				s.startTS = ts
			}
			need := 4
			if s.st == sHead {
				need = s.headSize()
			}
			k := copy(s.hdr[s.nhdr:need], data)
			s.nhdr += k
			data = data[k:]
			if s.nhdr < need {
				return
			}
			if s.st == sLen {
				s.size = int(int32(binary.BigEndian.Uint32(s.hdr[:4])))
				max := maxRequest
				if s.response {
					max = maxResponse
				}
				if s.size < s.headSize() || s.size > max {
					s.lose()
					return
				}
				s.st, s.nhdr, s.got, s.damaged = sHead, 0, 0, false
				continue
			}
			if !s.header() {
				s.lose()
				return
			}
			s.st, s.nhdr = sBody, 0
			s.got = s.headSize()
			s.maybeEnd()
		case sBody:
			k := min(s.size-s.got, len(data))
			s.body(data[:k])
			s.got += k
			data = data[k:]
			s.maybeEnd()
		case sLost:
			return
		}
	}
}

func (s *stream) headSize() int {
	if s.response {
		return 4
	}
	return 8
}

// plausible reports whether data, the start of a segment after lost sync,
// begins a message: a request of an API key and version this parser
// knows, or a response to a request that waits.
func (s *stream) plausible(data []byte) bool {
	if len(data) < 8 {
		return false
	}
	size := int32(binary.BigEndian.Uint32(data))
	if s.response {
		return size >= 4 && size <= maxResponse && s.c.waiting(int32(binary.BigEndian.Uint32(data[4:])))
	}
	key, v := int16(binary.BigEndian.Uint16(data[4:])), int16(binary.BigEndian.Uint16(data[6:]))
	ps := apis[key]
	return size >= 10 && size <= maxRequest && ps != nil && v >= 0 && v <= ps.api.max
}

func (s *stream) lose() {
	s.st, s.nhdr = sLost, 0
	s.req, s.orphan = nil, nil
	s.c.count("parse_errors", 1)
}

// header handles a message's header; false means it is not one.
func (s *stream) header() bool {
	c := s.c
	body := s.size - s.headSize()
	s.decoding, s.headOnly, s.orphan = false, false, nil
	if !s.response {
		key, v := int16(binary.BigEndian.Uint16(s.hdr[:2])), int16(binary.BigEndian.Uint16(s.hdr[2:4]))
		if key < 0 || v < 0 {
			return false
		}
		r := c.newRequest()
		*r = request{key: key, version: v, corr: int32(binary.BigEndian.Uint32(s.hdr[4:8])), body: r.body[:0], startTS: s.startTS}
		s.req = r
		p := headerOnly
		if ps := apis[key]; ps != nil && v <= ps.api.max {
			p, r.known = ps.req[v], true
		} else {
			s.headOnly = true
			c.count("unparsed_requests", 1)
		}
		s.decoding = true
		s.dec.reset(p, body, c.maxJSON, s.headOnly)
		return true
	}
	corr := int32(binary.BigEndian.Uint32(s.hdr[:4]))
	s.req = c.match(corr)
	if s.req != nil && len(c.orphans) > 0 {
		// Responses come in the order of their requests: those held
		// before this one will not be answered.
		c.count("unmatched_responses", int64(len(c.orphans)))
		c.orphans = c.orphans[:0]
	}
	switch {
	case s.req == nil:
		// Its request may not be seen yet: keep it a while.
		s.orphan = &orphan{corr: corr, size: body, startTS: s.startTS}
	case s.req.known:
		s.decoding = true
		s.dec.reset(apis[s.req.key].resp[s.req.version], body, c.maxJSON, false)
	}
	return true
}

func (s *stream) body(b []byte) {
	switch {
	case s.decoding:
		s.dec.feed(b)
	case s.orphan != nil:
		o := s.orphan
		if k := s.c.maxJSON - len(o.raw); k > 0 {
			o.raw = append(o.raw, b[:min(k, len(b))]...)
		}
		if len(o.raw) < o.size && len(o.raw) == s.c.maxJSON {
			o.incomplet = true
		}
	}
}

// maybeEnd ends the message when its bytes are all seen.
func (s *stream) maybeEnd() {
	if s.st != sBody || s.got < s.size {
		return
	}
	s.st, s.nhdr = sLen, 0
	c := s.c
	ts := s.lastTS
	ok := s.decoding && s.dec.done() && !s.damaged
	switch {
	case s.damaged:
		c.count("damaged_messages", 1)
	case s.decoding && !ok && !s.headOnly:
		c.count("decode_errors", 1)
	}
	if !s.response {
		r := s.req
		s.req = nil
		r.clientID = c.clientID(s.dec.clientID)
		if ok && !s.headOnly {
			r.body = append(r.body[:0], s.dec.out.b...)
		}
		noResponse := r.known && r.key == keyProduce && s.dec.hasAcks && s.dec.acks == 0
		c.requested(r, noResponse)
		return
	}
	if o := s.orphan; o != nil {
		s.orphan = nil
		o.endTS = ts
		o.incomplet = o.incomplet || s.damaged
		if len(c.orphans) >= maxOrphans {
			c.count("unmatched_responses", 1)
			c.orphans = c.orphans[1:]
		}
		c.orphans = append(c.orphans, *o)
		return
	}
	r := s.req
	s.req = nil
	if r == nil {
		return
	}
	var resp []byte
	if ok {
		resp = s.dec.out.b
	}
	c.emit(r, resp, ts)
	c.release(r)
}

func (s *stream) gap(n int) {
	switch s.st {
	case sLost:
		return
	case sBody:
		if left := s.size - s.got; n <= left {
			if s.decoding && !s.dec.gap(n) {
				s.damaged = true
			}
			if s.orphan != nil {
				s.orphan.incomplet = true
			}
			s.got += n
			s.maybeEnd()
			return
		}
	}
	// The bytes lost were not all inside a message: what was read of it
	// is dropped, and the stream waits for a segment that starts one.
	if s.req != nil && !s.response {
		s.c.release(s.req)
	} else if s.req != nil {
		s.c.count("requests_lost", 1)
		s.c.release(s.req)
	}
	s.st, s.nhdr, s.req, s.orphan = sLost, 0, nil, nil
	s.c.count("gap_resyncs", 1)
}
