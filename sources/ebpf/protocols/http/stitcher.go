package http

import (
	"bytes"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is HTTP/1.x.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "http" }

// ID implements protocols.Protocol: conn_stats.protocol 1.
func (Protocol) ID() int64 { return 1 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// Infer implements protocols.Protocol. It needs the whole first token: a
// method and a space, or "HTTP/1.x ".
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 8 {
		return false, false
	}
	if _, _, ok := parseVersion(data[:8]); ok && len(data) > 8 && data[8] == ' ' {
		return true, false
	}
	for _, m := range methods {
		if len(data) >= len(m) && string(data[:len(m)]) == string(m) {
			if string(m) == "CONNECT " && !bytes.Contains(firstLine(data), []byte(" HTTP/1.")) {
				// NATS clients open with "CONNECT {…}": an HTTP CONNECT
				// names its version on the request line.
				return false, false
			}
			return true, true
		}
	}
	return false, false
}

// firstLine is data up to its first CR or LF.
func firstLine(data []byte) []byte {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return data[:i]
	}
	return data
}

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser {
	return newConn(env)
}

// conn stitches the requests and responses of one connection. Responses
// come in request order (HTTP/1.x has no multiplexing), so pairing is FIFO,
// which also covers pipelining.
type conn struct {
	env  protocols.Env
	req  *parser
	resp *parser
	reqs []*Message // requests waiting for their response
	// early holds responses read before their request was seen: the
	// tracer sees a syscall's bytes when it returns, and a client that
	// writes on one thread and reads on another can have the response's
	// read return before the request's write does.
	early []*Message
	row   *table.Row // http_events
	// The JSON of the last request and response headers.
	reqHeaders, respHeaders headersJSONCache
	// lostSync is set when either direction lost bytes it could not skip:
	// whole messages may be gone, so FIFO order no longer pairs correctly.
	lostSync bool
}

func newConn(env protocols.Env) *conn {
	c := &conn{env: env, row: env.Row(Table)}
	c.req = newParser(true, env.Cfg.MaxHeaderBytes, env.Cfg.MaxBodyBytes)
	c.resp = newParser(false, env.Cfg.MaxHeaderBytes, env.Cfg.MaxBodyBytes)
	c.req.done = c.request
	c.resp.done = c.response
	c.resp.reqMethod = func() string {
		if len(c.reqs) > 0 {
			return c.reqs[0].Method
		}
		return ""
	}
	fail := func(err error) { env.Count("parse_errors", 1) }
	c.req.fail, c.resp.fail = fail, fail
	return c
}

// dirParser returns the parser of the messages that travel in dir: the
// client writes requests, the server reads them.
func (c *conn) dirParser(dir protocols.Direction) *parser {
	client := c.env.Conn.Role != protocols.RoleServer
	if (dir == protocols.Egress) == client {
		return c.req
	}
	return c.resp
}

func (c *conn) Data(seg protocols.Segment) { c.dirParser(seg.Dir).feed(seg.Data, seg.TS) }

func (c *conn) Gap(dir protocols.Direction, n int) {
	if !c.dirParser(dir).gap(n) {
		c.env.Count("gap_resyncs", 1)
		c.lostSync = true
	}
}

// GapAt implements protocols.GapTimer: bytes of a body not copied end the
// message no earlier than the call that moved them.
func (c *conn) GapAt(dir protocols.Direction, n int, ts int64) {
	if p := c.dirParser(dir); p.cur != nil && ts > p.cur.EndTS {
		p.cur.EndTS = ts
	}
	c.Gap(dir, n)
}

func (c *conn) Pending() int { return len(c.reqs) }

// maxEarly bounds the responses held for a request not yet seen.
const maxEarly = 4

func (c *conn) request(m *Message) {
	if len(c.early) > 0 {
		resp := c.early[0]
		c.early[0] = nil
		c.early = c.early[1:]
		c.env.Count("responses_before_request", 1)
		c.emit(m, resp)
		freeMessage(m)
		freeMessage(resp)
		return
	}
	if max := c.env.Cfg.MaxPending; max > 0 && len(c.reqs) >= max {
		c.reqs = c.reqs[1:]
		c.env.Count("requests_dropped_pending_full", 1)
	}
	c.reqs = append(c.reqs, m)
}

func (c *conn) response(m *Message) {
	if m.Status/100 == 1 && m.Status != 101 {
		return // informational: the final response follows
	}
	if c.lostSync {
		// Pair with the last request sent before the response began; the
		// older ones lost their responses in the gap.
		c.lostSync = false
		i := len(c.reqs) - 1
		for i >= 0 && c.reqs[i].StartTS > m.StartTS {
			i--
		}
		if i > 0 {
			c.env.Count("requests_lost_in_gap", int64(i))
			c.reqs = c.reqs[i:]
		}
		if i < 0 {
			c.env.Count("unmatched_responses", 1)
			return
		}
	}
	if len(c.reqs) == 0 {
		if len(c.early) < maxEarly && !c.lostSync {
			c.early = append(c.early, m)
			return
		}
		c.env.Count("unmatched_responses", 1)
		return
	}
	req := c.reqs[0]
	c.reqs[0] = nil
	c.reqs = c.reqs[1:]
	c.emit(req, m)
	freeMessage(req)
	freeMessage(m)
}

func (c *conn) Poll(now int64) {
	// A request follows its early response within microseconds; one
	// that has not come in a second is not coming.
	n := 0
	for n < len(c.early) && now-c.early[n].EndTS > 1e9 {
		n++
	}
	if n > 0 {
		c.early = c.early[n:]
		c.env.Count("unmatched_responses", int64(n))
	}
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 {
		return
	}
	n = 0
	for n < len(c.reqs) && now-c.reqs[n].StartTS > timeout {
		n++
	}
	if n > 0 {
		c.reqs = c.reqs[n:]
		c.env.Count("requests_timed_out", int64(n))
	}
}

func (c *conn) Close(now int64) {
	// A response that runs until close ends here and may pair.
	if c.resp.close(now) {
		c.env.Count("incomplete_at_close", 1)
	}
	if c.req.close(now) {
		c.env.Count("incomplete_at_close", 1)
	}
	if len(c.reqs) > 0 {
		c.env.Count("closed_before_response", int64(len(c.reqs)))
		c.reqs = nil
	}
	if len(c.early) > 0 {
		c.env.Count("unmatched_responses", int64(len(c.early)))
		c.early = nil
	}
}

// contentType classifies a message pair for the content_type column.
func contentType(req, resp *Message) int64 {
	ct := resp.Get("Content-Type")
	if ct == "" {
		ct = req.Get("Content-Type")
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

// headersJSON renders headers as a JSON object. Repeated names are joined
// with a comma, as RFC 9110 allows.
func headersJSON(hs []Header) string {
	if len(hs) == 0 {
		return "{}"
	}
	return string(appendHeadersJSON(make([]byte, 0, 64*len(hs)), hs))
}

// appendHeadersJSON appends headersJSON(hs) to b.
func appendHeadersJSON(b []byte, hs []Header) []byte {
	if len(hs) == 0 {
		return append(b, "{}"...)
	}
	// Sorted by name with repeated headers joined by ",", the same
	// document json.Marshal makes of a map, without the map and the
	// reflection: this runs for every request and response. Up to 32
	// headers are sorted as indices on the stack (insertion sort, stable).
	var idx [32]uint8
	var order []uint8
	if len(hs) <= len(idx) {
		order = idx[:len(hs)]
		for i := range order {
			order[i] = uint8(i)
			for j := i; j > 0 && hs[order[j]].Name < hs[order[j-1]].Name; j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
	} else {
		sorted := make([]Header, len(hs))
		copy(sorted, hs)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
		hs = sorted
	}
	at := func(i int) *Header {
		if order != nil {
			return &hs[order[i]]
		}
		return &hs[i]
	}
	b = append(b, '{')
	for i := 0; i < len(hs); i++ {
		if i > 0 {
			b = append(b, ',')
		}
		h := at(i)
		b = appendJSONString(b, h.Name)
		b = append(b, ':', '"')
		b = appendJSONBody(b, h.Value)
		for i+1 < len(hs) && at(i+1).Name == h.Name {
			i++
			b = append(b, ',')
			b = appendJSONBody(b, at(i).Value)
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML-safe, invalid UTF-8 as U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONBody(b, s)
	return append(b, '"')
}

func appendJSONBody(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
