// Package http parses HTTP/1.x from the bytes of traced connections and
// stitches each request to its response into an http_events row.
//
// The parser is incremental (push): bytes arrive in syscall-sized pieces
// and are never buffered beyond one message head and the kept prefix of a
// body, so a connection costs at most MaxHeaderBytes + MaxBodyBytes per
// direction however large its messages are.
package http

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
)

// Message is one parsed request or response.
type Message struct {
	StartTS, EndTS int64 // first and last byte seen, ns since the epoch

	Request bool
	Major   int
	Minor   int

	Method string // requests
	Path   string
	Status int // responses
	Reason string

	Headers []Header
	Body    []byte // at most MaxBodyBytes, dechunked
	// BodySize is the body's size before truncation (dechunked).
	BodySize int64
	// Lost reports that body bytes were not captured (so Body may hold
	// less than MaxBodyBytes while BodySize is larger).
	Lost bool
}

// Header is one header line, as sent.
type Header struct{ Name, Value string }

// Get returns the first value of the named header (case-insensitive).
func (m *Message) Get(name string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

type state uint8

const (
	stHead       state = iota // accumulating a message head
	stBody                    // Content-Length body, remaining bytes left
	stChunkSize               // reading a chunk-size line
	stChunkData               // inside a chunk, remaining bytes left
	stChunkCRLF               // the CRLF after a chunk's data
	stTrailers                // trailer lines after the last chunk
	stUntilClose              // body runs until the connection closes
	stSkip                    // lost sync: skip until a segment starts a message
	stTunnel                  // after CONNECT/101: not HTTP any more
)

var (
	errHeadTooLong = errors.New("message head too long")
	errBadStart    = errors.New("not an HTTP start line")
	errBadHeader   = errors.New("malformed header line")
	errBadLength   = errors.New("bad Content-Length")
	errBadChunk    = errors.New("bad chunk size line")
)

// parser parses one direction of a connection: requests or responses.
type parser struct {
	requests bool
	maxHead  int
	maxBody  int

	st        state
	buf       []byte // head, chunk-size line or trailer being accumulated
	remaining int64
	cur       *Message

	// last is the last head parsed, headStr the string of the head being
	// parsed.
	last struct {
		ok   bool
		head string
		m    Message // its start line and headers
	}
	headStr string

	// reqMethod tells a response parser the method of the request it
	// answers ("" if unknown), for HEAD and CONNECT.
	reqMethod func() string
	done      func(m *Message)
	fail      func(err error)
}

func newParser(requests bool, maxHead, maxBody int) *parser {
	return &parser{requests: requests, maxHead: maxHead, maxBody: maxBody}
}

// feed parses data, which arrived at ts in one syscall. A parser that lost
// sync looks for a new message only at the start of data.
func (p *parser) feed(data []byte, ts int64) {
	if p.st == stTunnel {
		return
	}
	if p.st == stSkip {
		if !looksLikeStart(data, p.requests) {
			return
		}
		p.reset()
	}
	for len(data) > 0 {
		var n int
		var err error
		switch p.st {
		case stHead:
			n, err = p.head(data, ts)
		case stBody:
			n = p.bodyBytes(data, ts)
			if p.remaining == 0 {
				p.finish(ts)
			}
		case stChunkSize:
			n, err = p.chunkSize(data, ts)
		case stChunkData:
			n = p.bodyBytes(data, ts)
			if p.remaining == 0 {
				p.st = stChunkCRLF
				p.buf = p.buf[:0]
			}
		case stChunkCRLF:
			n, err = p.chunkCRLF(data)
		case stTrailers:
			n, err = p.trailers(data, ts)
		case stUntilClose:
			n = p.bodyBytes(data, ts)
		case stSkip, stTunnel:
			return
		}
		if err != nil {
			p.lose(err)
			return
		}
		data = data[n:]
	}
}

// gap skips n lost bytes. Inside a body of known length that is fine; the
// message is kept and marked Lost. Anywhere else the parser loses sync.
func (p *parser) gap(n int) bool {
	switch p.st {
	case stBody, stChunkData:
		if int64(n) <= p.remaining {
			p.remaining -= int64(n)
			p.cur.BodySize += int64(n)
			p.cur.Lost = true
			if p.remaining == 0 {
				if p.st == stBody {
					p.finish(p.cur.EndTS)
				} else {
					p.st = stChunkCRLF
					p.buf = p.buf[:0]
				}
			}
			return true
		}
	case stUntilClose:
		p.cur.BodySize += int64(n)
		p.cur.Lost = true
		return true
	case stHead:
		if len(p.buf) == 0 && p.cur == nil {
			// Between messages: the lost bytes may have been whole
			// messages; resynchronise at the next segment.
			p.st = stSkip
			return false
		}
	case stTunnel, stSkip:
		return true
	}
	p.cur = nil
	p.buf = p.buf[:0]
	p.st = stSkip
	return false
}

// close ends the stream: a body that runs until close is complete.
func (p *parser) close(ts int64) (incomplete bool) {
	switch p.st {
	case stUntilClose:
		p.finish(p.cur.EndTS)
		return false
	case stHead:
		return len(p.buf) > 0
	case stSkip, stTunnel:
		return false
	}
	return true
}

func (p *parser) reset() {
	p.st = stHead
	p.buf = p.buf[:0]
	p.cur = nil
	p.remaining = 0
}

func (p *parser) lose(err error) {
	if p.fail != nil {
		p.fail(err)
	}
	p.cur = nil
	p.buf = p.buf[:0]
	p.st = stSkip
}

func (p *parser) finish(ts int64) {
	m := p.cur
	m.EndTS = ts
	p.reset()
	if p.done != nil {
		p.done(m)
	}
}

// head accumulates a message head until its blank line.
func (p *parser) head(data []byte, ts int64) (int, error) {
	if p.cur == nil {
		p.cur = newMessage(ts, p.requests)
		// Reject garbage as soon as the first bytes show it, without
		// waiting for a blank line that may never come.
		if len(p.buf) == 0 && !looksLikeStart(data, p.requests) {
			return 0, errBadStart
		}
	}
	old := len(p.buf)
	if old == 0 {
		// The usual case, a whole head in one segment: parse it where
		// it is instead of copying the segment into p.buf first.
		if i := bytes.Index(data, crlfcrlf); i >= 0 {
			end := i + 4
			if end > p.maxHead {
				return 0, errHeadTooLong
			}
			if err := p.parseHead(data[:end]); err != nil {
				return 0, err
			}
			p.cur.EndTS = ts
			return end, p.startBody(ts)
		}
	}
	from := old - 3
	if from < 0 {
		from = 0
	}
	p.buf = append(p.buf, data...)
	i := bytes.Index(p.buf[from:], crlfcrlf)
	if i < 0 {
		if len(p.buf) > p.maxHead {
			return 0, errHeadTooLong
		}
		return len(data), nil
	}
	end := from + i + 4
	if end > p.maxHead {
		return 0, errHeadTooLong
	}
	used := end - old
	if err := p.parseHead(p.buf[:end]); err != nil {
		return 0, err
	}
	p.buf = p.buf[:0]
	p.cur.EndTS = ts
	return used, p.startBody(ts)
}

var crlfcrlf = []byte("\r\n\r\n")

// msgPool recycles messages with their header and body buffers once the
// stitcher has written them to a row: every request and response needs
// one, with a header slice and a body buffer that grew as it was parsed.
var msgPool = sync.Pool{New: func() any { return new(Message) }}

func newMessage(ts int64, request bool) *Message {
	m := msgPool.Get().(*Message)
	*m = Message{StartTS: ts, Request: request, Headers: m.Headers[:0], Body: m.Body[:0]}
	return m
}

// freeMessage returns m to the pool; m must not be used after.
func freeMessage(m *Message) {
	clear(m.Headers) // do not keep the head strings alive
	msgPool.Put(m)
}

func (p *parser) parseHead(b []byte) error {
	m := p.cur
	if p.last.ok && string(b) == p.last.head {
		// The same head as the last message's (a client's requests, a
		// server's responses within one second of Date): its fields,
		// without parsing or allocating again.
		l := &p.last.m
		m.Method, m.Path, m.Major, m.Minor, m.Status, m.Reason = l.Method, l.Path, l.Major, l.Minor, l.Status, l.Reason
		m.Headers = append(m.Headers, l.Headers...)
		return nil
	}
	if err := p.parseNewHead(b); err != nil {
		return err
	}
	// Kept for the next message; the strings share the head's memory.
	p.last.ok = true
	p.last.head = p.headStr
	l := &p.last.m
	l.Method, l.Path, l.Major, l.Minor, l.Status, l.Reason = m.Method, m.Path, m.Major, m.Minor, m.Status, m.Reason
	l.Headers = append(l.Headers[:0], m.Headers...)
	return nil
}

// parseNewHead parses the head b into p.cur.
func (p *parser) parseNewHead(b []byte) error {
	m := p.cur
	// One string for the whole head: the start line's fields and the
	// header names and values are substrings of it, so a message costs
	// one allocation here instead of two per header.
	head := string(b)
	p.headStr = head
	line, rest, _ := strings.Cut(head, "\r\n")
	var err error
	if p.requests {
		err = parseRequestLine(m, line)
	} else {
		err = parseStatusLine(m, line)
	}
	if err != nil {
		return err
	}
	if cap(m.Headers) == 0 {
		m.Headers = make([]Header, 0, strings.Count(rest, "\n"))
	}
	for len(rest) > 2 {
		line, rest, _ = strings.Cut(rest, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || len(name) == 0 || strings.ContainsAny(name, " \t") {
			return errBadHeader
		}
		m.Headers = append(m.Headers, Header{Name: name, Value: strings.TrimSpace(value)})
	}
	return nil
}

func parseRequestLine(m *Message, line string) error {
	method, rest, ok := strings.Cut(line, " ")
	if !ok || !isToken(method) {
		return errBadStart
	}
	path, version, ok := strings.Cut(rest, " ")
	if !ok || len(path) == 0 {
		return errBadStart
	}
	maj, min, ok := parseVersion(version)
	if !ok {
		return errBadStart
	}
	m.Method, m.Path, m.Major, m.Minor = method, path, maj, min
	return nil
}

func parseStatusLine(m *Message, line string) error {
	version, rest, ok := strings.Cut(line, " ")
	if !ok {
		return errBadStart
	}
	maj, min, ok := parseVersion(version)
	if !ok {
		return errBadStart
	}
	code, reason, _ := strings.Cut(rest, " ")
	if len(code) != 3 {
		return errBadStart
	}
	status, err := strconv.Atoi(code)
	if err != nil || status < 100 {
		return errBadStart
	}
	m.Major, m.Minor, m.Status, m.Reason = maj, min, status, reason
	return nil
}

// parseVersion parses "HTTP/1.1".
func parseVersion[T string | []byte](b T) (major, minor int, ok bool) {
	if len(b) != 8 || string(b[:5]) != "HTTP/" || b[6] != '.' {
		return 0, 0, false
	}
	if b[5] < '0' || b[5] > '9' || b[7] < '0' || b[7] > '9' {
		return 0, 0, false
	}
	return int(b[5] - '0'), int(b[7] - '0'), true
}

func isToken(b string) bool {
	if len(b) == 0 || len(b) > 16 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

var methods = [][]byte{
	[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("DELETE "), []byte("HEAD "),
	[]byte("OPTIONS "), []byte("PATCH "), []byte("CONNECT "), []byte("TRACE "),
}

// looksLikeStart reports whether data can begin a request (or response):
// a known method and a space, or "HTTP/1.". Data shorter than the token is
// accepted when it is a prefix of one.
func looksLikeStart(data []byte, request bool) bool {
	if request {
		for _, m := range methods {
			if prefixMatch(data, m) {
				return true
			}
		}
		return false
	}
	return prefixMatch(data, []byte("HTTP/1."))
}

func prefixMatch(data, tok []byte) bool {
	if len(data) >= len(tok) {
		return bytes.HasPrefix(data, tok)
	}
	return len(data) > 0 && bytes.HasPrefix(tok, data)
}

// startBody picks the body framing of the head just parsed (RFC 9112 §6).
func (p *parser) startBody(ts int64) error {
	m := p.cur
	if !m.Request {
		method := ""
		if p.reqMethod != nil {
			method = p.reqMethod()
		}
		switch {
		case m.Status == 101 || (method == "CONNECT" && m.Status/100 == 2):
			p.finish(ts)
			p.st = stTunnel
			return nil
		case m.Status/100 == 1 || m.Status == 204 || m.Status == 304 || method == "HEAD":
			p.finish(ts)
			return nil
		}
	}
	if te := m.Get("Transfer-Encoding"); te != "" {
		last := te
		if i := strings.LastIndexByte(te, ','); i >= 0 {
			last = te[i+1:]
		}
		if strings.EqualFold(strings.TrimSpace(last), "chunked") {
			p.st = stChunkSize
			return nil
		}
		if m.Request {
			return errBadLength
		}
		p.st = stUntilClose
		return nil
	}
	if cl := m.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err != nil || n < 0 {
			return errBadLength
		}
		if n == 0 {
			p.finish(ts)
			return nil
		}
		p.remaining = n
		p.st = stBody
		return nil
	}
	if m.Request {
		p.finish(ts)
		return nil
	}
	p.st = stUntilClose
	return nil
}

// bodyBytes takes body bytes, up to remaining for framed bodies.
func (p *parser) bodyBytes(data []byte, ts int64) int {
	n := len(data)
	if p.st != stUntilClose && int64(n) > p.remaining {
		n = int(p.remaining)
	}
	m := p.cur
	if keep := p.maxBody - len(m.Body); keep > 0 {
		if keep > n {
			keep = n
		}
		m.Body = append(m.Body, data[:keep]...)
	}
	m.BodySize += int64(n)
	m.EndTS = ts
	if p.st != stUntilClose {
		p.remaining -= int64(n)
	}
	return n
}

// line accumulates one CRLF-terminated line into p.buf; it returns the bytes
// of data used and whether the line is complete (without its CRLF in p.buf).
func (p *parser) line(data []byte, max int) (int, bool, error) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		p.buf = append(p.buf, data...)
		if len(p.buf) > max {
			return 0, false, errBadChunk
		}
		return len(data), false, nil
	}
	p.buf = append(p.buf, data[:i]...)
	p.buf = bytes.TrimSuffix(p.buf, []byte("\r"))
	if len(p.buf) > max {
		return 0, false, errBadChunk
	}
	return i + 1, true, nil
}

func (p *parser) chunkSize(data []byte, ts int64) (int, error) {
	n, ok, err := p.line(data, 1024)
	if err != nil || !ok {
		return n, err
	}
	hex := p.buf
	if i := bytes.IndexByte(hex, ';'); i >= 0 { // chunk extensions
		hex = hex[:i]
	}
	size, perr := strconv.ParseInt(string(bytes.TrimSpace(hex)), 16, 64)
	p.buf = p.buf[:0]
	if perr != nil || size < 0 {
		return 0, errBadChunk
	}
	p.cur.EndTS = ts
	if size == 0 {
		p.st = stTrailers
		return n, nil
	}
	p.remaining = size
	p.st = stChunkData
	return n, nil
}

func (p *parser) chunkCRLF(data []byte) (int, error) {
	n, ok, err := p.line(data, 2)
	if err != nil {
		return 0, err
	}
	if ok {
		if len(p.buf) != 0 {
			return 0, errBadChunk
		}
		p.st = stChunkSize
	}
	return n, nil
}

func (p *parser) trailers(data []byte, ts int64) (int, error) {
	n, ok, err := p.line(data, p.maxHead)
	if err != nil || !ok {
		return n, err
	}
	if len(p.buf) == 0 {
		p.finish(ts)
		return n, nil
	}
	p.buf = p.buf[:0] // trailer fields are dropped
	return n, nil
}
