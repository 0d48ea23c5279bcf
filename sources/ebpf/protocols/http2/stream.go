package http2

import (
	"strings"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
)

// stream is one HTTP/2 stream: a request and its response.
type stream struct {
	id       uint32
	req      half
	resp     half
	reqSeen  bool // the request's headers were decoded
	respSeen bool // the final response headers were decoded
	// undecodable is set when a header block of the stream could not be
	// decoded: the stream is followed to its end, then counted.
	undecodable bool
	begin       int64 // when the stream was first seen
}

// half is what one side sent on a stream.
type half struct {
	headers []http.Header // header fields, trailers after
	hbytes  int           // name and value bytes in headers
	body    []byte        // DATA kept, at most MaxBodyBytes
	size    int64         // DATA bytes, padding excluded
	grpc    framing
	lost    bool // DATA bytes were not captured
	startTS int64
	endTS   int64
	ended   bool // END_STREAM seen
}

func (h *half) data(p []byte, ts int64, maxBody int) {
	if keep := maxBody - len(h.body); keep > 0 {
		h.body = append(h.body, p[:min(keep, len(p))]...)
	}
	h.size += int64(len(p))
	h.grpc.data(p)
	h.endTS = ts
}

func (h *half) lose(n int) {
	h.size += int64(n)
	h.lost = true
	h.grpc.lost(n)
}

// addHeaders appends fields, up to max bytes of names and values; it
// reports whether all fit.
func (h *half) addHeaders(fields []http.Header, max int) bool {
	for _, f := range fields {
		n := len(f.Name) + len(f.Value)
		if h.hbytes+n > max {
			return false
		}
		h.hbytes += n
		h.headers = append(h.headers, f)
	}
	return true
}

func (st *stream) half(client bool) *half {
	if client {
		return &st.req
	}
	return &st.resp
}

// get returns the value of the first field named name.
func get(hs []http.Header, name string) string {
	for _, h := range hs {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

// open returns a new stream, dropping the oldest when the connection
// holds as many as it may.
func (c *conn) open(id uint32, ts int64) *stream {
	if len(c.streams) >= c.max {
		var old *stream
		for _, st := range c.streams {
			if old == nil || st.begin < old.begin {
				old = st
			}
		}
		c.env.Count("streams_dropped_full", 1)
		c.drop(old)
	}
	var st *stream
	if n := len(c.free); n > 0 {
		st, c.free = c.free[n-1], c.free[:n-1]
	} else {
		st = new(stream)
	}
	st.id, st.begin = id, ts
	c.streams[id] = st
	return st
}

// drop forgets a stream, keeping its buffers for the next.
func (c *conn) drop(st *stream) {
	delete(c.streams, st.id)
	clear(st.req.headers) // do not keep the strings alive
	clear(st.resp.headers)
	*st = stream{
		req:  half{headers: st.req.headers[:0], body: st.req.body[:0]},
		resp: half{headers: st.resp.headers[:0], body: st.resp.body[:0]},
	}
	if len(c.free) < 8 {
		c.free = append(c.free, st)
	}
}

// headers takes a header block that ended on a side (fields are valid
// only during the call).
func (c *conn) headers(client bool, b *block, fields []http.Header, ts int64) {
	maxHead := c.env.Cfg.MaxHeaderBytes
	if b.promise != 0 {
		// PUSH_PROMISE: the request of a stream the server opens.
		if c.streams[b.promise] != nil {
			return
		}
		st := c.open(b.promise, b.ts)
		st.undecodable = b.failed
		st.reqSeen = true
		st.req.addHeaders(fields, maxHead)
		st.req.startTS, st.req.endTS, st.req.ended = b.ts, b.ts, true
		return
	}
	st := c.streams[b.stream]
	if st == nil {
		if !client && (b.failed || b.stream%2 == 0 || c.env.Conn.Role == protocols.RoleServer) {
			// A response to a request not seen: it predates the
			// tracer (or lost bytes), or is pushed with a promise
			// not seen. (Only a client can read a response before
			// it is seen writing the request.)
			if b.failed {
				c.env.Count("streams_undecodable", 1)
			} else {
				c.env.Count("unmatched_responses", 1)
			}
			return
		}
		// A request, or a response read before its request was seen
		// written (another thread's syscall returned first).
		st = c.open(b.stream, b.ts)
	}
	if b.failed {
		st.undecodable = true
	}
	h := st.half(client)
	switch {
	case b.failed:
	case client && !st.reqSeen:
		st.reqSeen = true
		st.req.startTS = b.ts
		if st.respSeen {
			c.env.Count("responses_before_request", 1)
		}
		if !h.addHeaders(fields, maxHead) {
			c.env.Count("headers_truncated", 1)
		}
	case !client && !st.respSeen:
		if s := get(fields, ":status"); len(s) == 3 && s[0] == '1' && !b.endStream {
			return // informational: the final response follows
		}
		st.respSeen = true
		st.resp.startTS = b.ts
		if !h.addHeaders(fields, maxHead) {
			c.env.Count("headers_truncated", 1)
		}
	default: // trailers
		if !h.addHeaders(fields, maxHead) {
			c.env.Count("headers_truncated", 1)
		}
	}
	if b.endStream {
		c.endHalf(client, b.stream, ts)
	}
}

// endHalf ends one side of a stream (END_STREAM), and writes the stream's
// row once both have ended.
func (c *conn) endHalf(client bool, id uint32, ts int64) {
	st := c.streams[id]
	if st == nil {
		return
	}
	h := st.half(client)
	h.ended, h.endTS = true, ts
	if st.req.ended && st.resp.ended {
		c.finish(st)
	}
}

// reset ends a stream with RST_STREAM: one whose response headers came
// is written with what was seen, others are counted.
func (c *conn) reset(id uint32, ts int64) {
	st := c.streams[id]
	if st == nil {
		return
	}
	if st.reqSeen && st.respSeen && !st.undecodable {
		if !st.resp.ended {
			st.resp.endTS = ts
		}
		c.finish(st)
		return
	}
	if st.undecodable {
		c.env.Count("streams_undecodable", 1)
	} else {
		c.env.Count("streams_reset", 1)
	}
	c.drop(st)
}

// finish writes the row of a stream whose request and response are known
// and forgets it.
func (c *conn) finish(st *stream) {
	switch {
	case st.undecodable:
		c.env.Count("streams_undecodable", 1)
	case st.reqSeen && st.respSeen:
		c.emit(st)
	default:
		c.env.Count("unmatched_responses", 1)
	}
	c.drop(st)
}

// earlyWait is how long a response read before its request is held: the
// request's write returns within microseconds.
const earlyWait = int64(1e9)

func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	for _, st := range c.streams {
		switch {
		case !st.reqSeen && now-st.begin > earlyWait:
			if st.undecodable {
				c.env.Count("streams_undecodable", 1)
			} else {
				c.env.Count("unmatched_responses", 1)
			}
			c.drop(st)
		case st.resp.ended && now-st.resp.endTS > earlyWait:
			// The server ended its response and the client never
			// ended its request: the response says it all.
			c.finish(st)
		case timeout > 0 && now-st.begin > timeout:
			if st.undecodable {
				c.env.Count("streams_undecodable", 1)
			} else {
				c.env.Count("requests_timed_out", 1)
			}
			c.drop(st)
		}
	}
}

func (c *conn) Close(now int64) {
	for _, st := range c.streams {
		switch {
		case st.resp.ended && st.reqSeen:
			c.finish(st)
		case st.undecodable:
			c.env.Count("streams_undecodable", 1)
		case !st.reqSeen:
			c.env.Count("unmatched_responses", 1)
		default:
			c.env.Count("closed_before_response", 1)
		}
	}
	clear(c.streams)
	for i := range c.sides {
		s := &c.sides[i]
		if s.ph != phLost && (s.nhdr > 0 || s.ph > phHeader) {
			c.env.Count("incomplete_at_close", 1)
		}
	}
}

// contentType is http_events' content_type: 2 for gRPC, 1 for JSON (the
// response's type first, then the request's).
func contentType(req, resp []http.Header) int64 {
	ct := get(resp, "content-type")
	if ct == "" {
		ct = get(req, "content-type")
	}
	ct = strings.ToLower(ct)
	switch {
	case strings.HasPrefix(ct, "application/grpc"):
		return 2
	case strings.Contains(ct, "json"):
		return 1
	}
	return 0
}
