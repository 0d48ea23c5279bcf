package pgsql

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// request is a frontend message waiting for its response.
type request struct {
	tag     byte
	cmd     string // req_cmd; "" for Sync, which makes no row
	text    []byte // req
	startTS int64
	// target is what a Describe describes: 'S' statement, 'P' portal.
	target byte
	stmt   *stmt   // the statement a Describe describes
	portal *portal // the portal a Describe describes or an Execute runs
}

// stmt is a prepared statement, from its Parse.
type stmt struct {
	query     []byte
	paramOIDs []int    // from Parse, replaced by a ParameterDescription
	cols      []column // from a Describe of the statement
}

// portal is a bound statement, from its Bind.
type portal struct {
	stmt    *stmt
	params  []byte   // the bound values, rendered: "v1, v2"
	formats []int    // result format codes
	cols    []column // from a Describe of the portal
}

// Bounds of what a connection keeps.
const (
	maxStmtBytes = 1 << 20 // statement text kept for Execute rows
	maxReqBytes  = 1 << 20 // text of queued requests
)

// conn stitches one connection's frontend messages (requests) to the
// backend's answers. The backend answers in order, so the requests wait
// in a FIFO; what answers a message depends on its type (ParseComplete a
// Parse, rows and a CommandComplete an Execute, everything up to
// ReadyForQuery a Query).
type conn struct {
	env     protocols.Env
	front   *framer
	back    *framer
	maxReq  int // bytes of req kept
	maxResp int // bytes of resp kept
	row     *table.Row

	reqs     []*request // the queue is reqs[head:]
	head     int
	reqBytes int
	spare    []*request
	stmts    map[string]*stmt
	portals  map[string]*portal
	stmtSize int

	// The answer being read for reqs[0].
	resp   []byte
	cols   []column // the current result's columns (a Query's RowDescription)
	header bool     // the column names are written for cols
	cut    bool     // rows were left out of resp

	startup    bool // a StartupMessage was sent: authentication until ReadyForQuery
	sslPending bool // an SSLRequest or GSSENCRequest awaits its one-byte answer
	tls        bool // the connection turned to TLS: nothing more is parsed
	discard    bool // an extended-protocol error: the server skips to the next Sync
	resync     bool // lost sync: answers are dropped until a ReadyForQuery
	backSeen   bool // the backend has sent bytes
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
	c := &conn{
		env: env, maxReq: maxReq, maxResp: maxResp,
		front: newFramer(false, maxReq), back: newFramer(true, max(maxReq, maxResp)),
		stmts: map[string]*stmt{}, portals: map[string]*portal{},
	}
	if env.Row != nil {
		c.row = env.Row(Table)
	}
	c.front.done, c.back.done = c.frontend, c.backend
	fail := func() { c.count("parse_errors", 1) }
	c.front.fail, c.back.fail = fail, fail
	return c
}

func (c *conn) count(name string, n int64) {
	if c.env.Count != nil && n != 0 {
		c.env.Count(name, n)
	}
}

// isFront reports whether bytes of dir are the frontend's: the client
// writes them.
func (c *conn) isFront(dir protocols.Direction) bool {
	client := c.env.Conn == nil || c.env.Conn.Role != protocols.RoleServer
	return (dir == protocols.Egress) == client
}

func (c *conn) Data(seg protocols.Segment) {
	if c.tls || len(seg.Data) == 0 {
		return
	}
	if c.isFront(seg.Dir) {
		c.front.feed(seg.Data, seg.TS)
		return
	}
	data := seg.Data
	// The answer to SSLRequest and GSSENCRequest is one untagged byte:
	// 'S' (or 'G') to go on in TLS (GSSAPI), 'N' to go on in plaintext.
	// It is also taken as such when it is the server's first segment,
	// alone, in case the request was not seen.
	if !c.back.pending() && (c.sslPending || (!c.backSeen && len(data) == 1 && bytes.IndexByte([]byte("SNG"), data[0]) >= 0)) {
		c.sslPending = false
		if data[0] != 'N' {
			c.tls = true
			c.count("tls_conns", 1)
			c.dropAll("encrypted")
			return
		}
		data = data[1:]
	}
	c.backSeen = true
	c.back.feed(data, seg.TS)
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if c.tls {
		return
	}
	f := c.back
	if c.isFront(dir) {
		f = c.front
	}
	if !f.gap(n) {
		c.count("gap_resyncs", 1)
		c.lostSync()
	}
}

// lostSync forgets the queued requests: whole messages may be gone, so
// the answers that follow are dropped up to the next ReadyForQuery,
// after which both sides are in step again.
func (c *conn) lostSync() {
	c.count("requests_lost_in_gap", int64(c.pendingRows()))
	c.clearQueue()
	c.resync = true
	c.discard = false
}

// pendingRows counts the queued requests that would have made rows.
func (c *conn) pendingRows() int {
	n := 0
	for _, r := range c.reqs[c.head:] {
		if r.cmd != "" {
			n++
		}
	}
	return n
}

func (c *conn) clearQueue() {
	for _, r := range c.reqs[c.head:] {
		c.release(r)
	}
	clear(c.reqs)
	c.reqs, c.head = c.reqs[:0], 0
	c.reqBytes = 0
	c.resetResp()
}

func (c *conn) dropAll(reason string) {
	if n := c.pendingRows(); n > 0 {
		c.count("requests_"+reason, int64(n))
	}
	c.clearQueue()
}

func (c *conn) Pending() int { return len(c.reqs) - c.head }

func (c *conn) Poll(now int64) {
	timeout := c.env.Cfg.RequestTimeout.Nanoseconds()
	if timeout <= 0 || c.Pending() == 0 || now-c.reqs[c.head].startTS <= timeout {
		return
	}
	// The head's answer is overdue; whatever comes next cannot be paired
	// with confidence, so resynchronise at the next ReadyForQuery.
	c.count("requests_timed_out", int64(c.pendingRows()))
	c.clearQueue()
	c.resync = true
}

func (c *conn) Close(now int64) {
	if c.front.pending() || c.back.pending() {
		c.count("incomplete_at_close", 1)
	}
	if n := c.pendingRows(); n > 0 {
		c.count("closed_before_response", int64(n))
	}
	c.clearQueue()
}

// newRequest returns a request for m (recycled when possible).
func (c *conn) newRequest(m *message, cmd string) *request {
	var r *request
	if n := len(c.spare); n > 0 {
		r = c.spare[n-1]
		c.spare = c.spare[:n-1]
		text := r.text[:0]
		*r = request{text: text}
	} else {
		r = &request{}
	}
	r.tag, r.cmd, r.startTS = m.tag, cmd, m.startTS
	return r
}

func (c *conn) release(r *request) {
	r.stmt, r.portal = nil, nil
	if len(c.spare) < 16 && cap(r.text) <= 4<<10 {
		c.spare = append(c.spare, r)
	}
}

// push queues a request, within the connection's bounds.
func (c *conn) push(r *request) {
	if c.resync {
		// Until the next ReadyForQuery the answers cannot be told apart.
		if r.cmd != "" {
			c.count("requests_lost_in_gap", 1)
		}
		c.release(r)
		return
	}
	limit := c.env.Cfg.MaxPending * 8
	if limit <= 0 {
		limit = 512
	}
	if c.Pending() >= limit || c.reqBytes+len(r.text) > maxReqBytes {
		c.count("requests_dropped_pending_full", int64(c.pendingRows()+1))
		c.release(r)
		c.clearQueue()
		c.resync = true
		return
	}
	if c.head > 0 && len(c.reqs) == cap(c.reqs) {
		// Slide the queue down rather than grow it.
		n := copy(c.reqs, c.reqs[c.head:])
		clear(c.reqs[n:])
		c.reqs, c.head = c.reqs[:n], 0
	}
	c.reqBytes += len(r.text)
	c.reqs = append(c.reqs, r)
}

// appendCapped appends s to b, b growing to at most limit bytes.
func appendCapped(b []byte, limit int, s ...[]byte) []byte {
	for _, p := range s {
		if room := limit - len(b); room < len(p) {
			return append(b, p[:max(room, 0)]...)
		}
		b = append(b, p...)
	}
	return b
}

// frontend handles one message from the client.
func (c *conn) frontend(m *message) {
	if m.tag == 0 {
		c.untagged(m)
		return
	}
	if c.discard && m.tag != 'S' && m.tag != 'X' {
		// The server skips every message up to the Sync after an error.
		if m.tag != 'H' && m.tag != 'd' && m.tag != 'c' && m.tag != 'f' && m.tag != 'p' {
			c.count("skipped_after_error", 1)
		}
		return
	}
	r := reader{b: m.payload}
	switch m.tag {
	case 'Q':
		q := c.newRequest(m, "Query")
		q.text = append(q.text, r.cstring()...)
		c.push(q)
	case 'P':
		name := r.cstring()
		query := r.cstring()
		s := &stmt{query: bytes.Clone(query)}
		n := r.int16()
		for i := 0; i < n && !r.bad; i++ {
			s.paramOIDs = append(s.paramOIDs, r.int32())
		}
		c.setStmt(string(name), s)
		q := c.newRequest(m, "Parse")
		q.text = append(q.text, query...)
		c.push(q)
	case 'B':
		c.bind(m, &r)
	case 'D':
		q := c.newRequest(m, "Describe")
		q.target = r.byte1()
		name := r.cstring()
		if q.target == 'S' {
			q.stmt = c.stmts[string(name)]
		} else {
			q.portal = c.portals[string(name)]
		}
		q.text = appendTarget(q.text, q.target, name)
		c.push(q)
	case 'E':
		name := r.cstring()
		q := c.newRequest(m, "Execute")
		q.portal = c.portals[string(name)]
		// "query=[…] params=[…]", the form normalize_pgsql reads.
		q.text = append(q.text, "query=["...)
		if q.portal != nil && q.portal.stmt != nil {
			q.text = appendCapped(q.text, c.maxReq-1, q.portal.stmt.query)
		}
		q.text = append(q.text, "] params=["...)
		if q.portal != nil {
			q.text = appendCapped(q.text, c.maxReq-1, q.portal.params)
		}
		q.text = append(q.text, ']')
		c.push(q)
	case 'C':
		q := c.newRequest(m, "Close")
		q.target = r.byte1()
		name := r.cstring()
		if q.target == 'S' {
			c.setStmt(string(name), nil)
		} else {
			delete(c.portals, string(name))
		}
		q.text = appendTarget(q.text, q.target, name)
		c.push(q)
	case 'S':
		c.discard = false
		c.push(c.newRequest(m, ""))
	case 'F':
		q := c.newRequest(m, "Function Call")
		q.text = append(q.text, "oid="...)
		q.text = strconv.AppendInt(q.text, int64(uint32(r.int32())), 10)
		c.push(q)
	}
	// Flush (H), Terminate (X), COPY data from the client (d, c, f) and
	// authentication answers (p) get no answer of their own.
}

// appendTarget appends "type=statement name=x" (or portal).
func appendTarget(b []byte, target byte, name []byte) []byte {
	if target == 'S' {
		b = append(b, "type=statement name="...)
	} else {
		b = append(b, "type=portal name="...)
	}
	return append(b, name...)
}

// setStmt records (or, with s nil, forgets) a prepared statement,
// within the connection's bound on statement text.
func (c *conn) setStmt(name string, s *stmt) {
	if old := c.stmts[name]; old != nil {
		c.stmtSize -= len(old.query)
		delete(c.stmts, name)
	}
	if s == nil {
		return
	}
	for c.stmtSize+len(s.query) > maxStmtBytes && len(c.stmts) > 0 {
		for k, v := range c.stmts { // any one
			c.stmtSize -= len(v.query)
			delete(c.stmts, k)
			c.count("statements_evicted", 1)
			break
		}
	}
	c.stmts[name] = s
	c.stmtSize += len(s.query)
}

// bind handles a Bind: it makes the portal, with its parameters
// rendered, and queues the request.
func (c *conn) bind(m *message, r *reader) {
	portalName := r.cstring()
	stmtName := r.cstring()
	p := &portal{stmt: c.stmts[string(stmtName)]}
	nf := r.int16()
	var fmts []int
	for i := 0; i < nf && !r.bad; i++ {
		fmts = append(fmts, r.int16())
	}
	np := r.int16()
	for i := 0; i < np && !r.bad; i++ {
		l := r.int32()
		var v []byte
		if l > 0 {
			v = r.bytes(l)
		}
		if r.bad && l != -1 {
			break
		}
		if i > 0 {
			p.params = append(p.params, ", "...)
		}
		format, _ := formatAt(fmts, i)
		oid := 0
		if p.stmt != nil && i < len(p.stmt.paramOIDs) {
			oid = p.stmt.paramOIDs[i]
		}
		p.params = appendValue(p.params, v, l == -1, format, oid)
		if len(p.params) >= c.maxReq {
			p.params = p.params[:c.maxReq]
			break
		}
	}
	nr := r.int16()
	for i := 0; i < nr && !r.bad; i++ {
		p.formats = append(p.formats, r.int16())
	}
	c.portals[string(portalName)] = p
	if len(c.portals) > 64 {
		// Named portals are rare; the unnamed one is replaced by each
		// Bind. Keep the map bounded anyway.
		for k := range c.portals {
			if k != string(portalName) {
				delete(c.portals, k)
				break
			}
		}
	}
	q := c.newRequest(m, "Bind")
	q.text = append(q.text, "portal="...)
	q.text = append(q.text, portalName...)
	q.text = append(q.text, " statement="...)
	q.text = append(q.text, stmtName...)
	q.text = append(q.text, " parameters=["...)
	q.text = appendCapped(q.text, c.maxReq-1, p.params)
	q.text = append(q.text, ']')
	c.push(q)
}

// untagged handles the client's first messages.
func (c *conn) untagged(m *message) {
	if len(m.payload) < 4 {
		return
	}
	switch code := binary.BigEndian.Uint32(m.payload); {
	case code == codeSSL || code == codeGSS:
		c.sslPending = true
	case code>>16 == 3:
		c.startup = true
	case code == codeCancel:
		// A connection of its own that carries only this.
	}
}

// backend handles one message from the server.
func (c *conn) backend(m *message) {
	switch m.tag {
	case 'N', 'S', 'A':
		// NoticeResponse, ParameterStatus and NotificationResponse may
		// come at any time and answer nothing.
		return
	}
	if c.startup {
		// Authentication, BackendKeyData, …, up to the first
		// ReadyForQuery. A failed startup ends with an ErrorResponse.
		switch m.tag {
		case 'Z':
			c.startup = false
		case 'E':
			c.count("startup_errors", 1)
		}
		return
	}
	if c.resync {
		if m.tag == 'Z' {
			c.resync = false
		}
		return
	}
	if c.Pending() == 0 {
		switch m.tag {
		case 'R', 'K', 'v', 'Z':
			// The end of a startup not seen, or the ReadyForQuery of
			// requests not seen.
		default:
			c.count("unmatched_responses", 1)
		}
		return
	}
	c.answer(c.reqs[c.head], m)
}

// answer handles m, a message of the answer to r.
func (c *conn) answer(r *request, m *message) {
	switch r.tag {
	case 'Q', 'F':
		switch m.tag {
		case 'T':
			c.cols = parseRowDesc(c.cols, m.payload)
			c.header = false
		case 'D':
			c.dataRow(m.payload, c.cols, nil, true)
		case 'C':
			c.part()
			c.appendResp(cstr(m.payload))
			c.cols, c.header = c.cols[:0], false
		case 'I':
			c.part()
			c.appendResp([]byte("EMPTY QUERY"))
		case 'E':
			c.part()
			c.appendError(m.payload)
		case 'V':
			c.part()
			c.appendResp([]byte("FUNCTION CALL RESPONSE"))
		case 'H':
			c.part() // COPY … TO STDOUT: its data follows
		case 'G', 'W', 'c':
			// COPY FROM STDIN (or both ways) begins, or the data ends.
		case 'd':
			c.copyData(m.payload)
		case 'Z':
			c.done(r, m)
		default:
			c.unexpected(m)
		}
	case 'P':
		c.simple(r, m, '1', "PARSE COMPLETE")
	case 'B':
		c.simple(r, m, '2', "BIND COMPLETE")
	case 'C':
		c.simple(r, m, '3', "CLOSE COMPLETE")
	case 'D':
		switch m.tag {
		case 't':
			rd := reader{b: m.payload}
			n := rd.int16()
			var oids []int
			c.appendResp([]byte("PARAMETER DESCRIPTION ["))
			for i := 0; i < n && !rd.bad; i++ {
				oid := rd.int32()
				oids = append(oids, oid)
				if i > 0 {
					c.appendResp([]byte(", "))
				}
				c.appendResp([]byte(typeName(oid)))
			}
			c.appendResp([]byte("] "))
			if r.stmt != nil && !rd.bad {
				r.stmt.paramOIDs = oids
			}
		case 'T':
			cols := parseRowDesc(nil, m.payload)
			c.appendResp([]byte("ROW DESCRIPTION ["))
			for i, col := range cols {
				if i > 0 {
					c.appendResp([]byte(", "))
				}
				c.appendResp([]byte(col.name), []byte{' '}, []byte(typeName(col.oid)))
			}
			c.appendResp([]byte("]"))
			if r.target == 'S' && r.stmt != nil {
				r.stmt.cols = cols
			} else if r.portal != nil {
				r.portal.cols = cols
			}
			c.done(r, m)
		case 'n':
			c.appendResp([]byte("NO DATA"))
			c.done(r, m)
		case 'E':
			c.failed(r, m)
		default:
			c.unexpected(m)
		}
	case 'E':
		switch m.tag {
		case 'D':
			var cols []column
			var formats []int
			if p := r.portal; p != nil {
				cols, formats = p.cols, p.formats
				if cols == nil && p.stmt != nil {
					cols = p.stmt.cols
				}
			}
			c.dataRow(m.payload, cols, formats, false)
		case 'C':
			c.appendResp(cstr(m.payload))
			c.done(r, m)
		case 'I':
			c.appendResp([]byte("EMPTY QUERY"))
			c.done(r, m)
		case 's':
			c.appendResp([]byte("PORTAL SUSPENDED"))
			c.done(r, m)
		case 'E':
			c.failed(r, m)
		case 'G', 'H', 'W', 'c':
		case 'd':
			c.copyData(m.payload)
		default:
			c.unexpected(m)
		}
	case 'S':
		switch m.tag {
		case 'Z':
			c.done(r, m)
		case 'E':
			// An error at Sync (a failed implicit COMMIT): it answers
			// no request of its own.
			c.count("sync_errors", 1)
		default:
			c.unexpected(m)
		}
	default:
		c.unexpected(m)
	}
}

// simple handles the answer of a message answered by one message of
// type ok, or an error.
func (c *conn) simple(r *request, m *message, ok byte, text string) {
	switch m.tag {
	case ok:
		c.appendResp([]byte(text))
		c.done(r, m)
	case 'E':
		c.failed(r, m)
	default:
		c.unexpected(m)
	}
}

// failed ends r with an error. After an error in an extended-protocol
// message the server skips every message up to the next Sync: those
// get no answer, and no row.
func (c *conn) failed(r *request, m *message) {
	c.appendError(m.payload)
	c.done(r, m)
	skipped := 0
	for c.Pending() > 0 && c.reqs[c.head].tag != 'S' {
		if c.reqs[c.head].cmd != "" {
			skipped++
		}
		c.pop()
	}
	c.count("skipped_after_error", int64(skipped))
	if c.Pending() == 0 {
		c.discard = true
	}
}

// unexpected handles a message that cannot answer the head request: the
// two sides are out of step.
func (c *conn) unexpected(m *message) {
	c.count("unexpected_responses", 1)
	c.lostSync()
	if m.tag == 'Z' {
		c.resync = false // at a ReadyForQuery both sides are in step
	}
}

// part separates a statement's result from the previous one in a
// Query's resp.
func (c *conn) part() {
	if len(c.resp) > 0 && c.resp[len(c.resp)-1] != '\n' {
		c.appendResp([]byte{'\n'})
	}
}

func (c *conn) appendResp(s ...[]byte) {
	c.resp = appendCapped(c.resp, c.maxResp, s...)
}

func (c *conn) appendError(payload []byte) {
	mark := len(c.resp)
	c.resp = appendError(c.resp, payload)
	if len(c.resp) > c.maxResp {
		c.resp = c.resp[:max(c.maxResp, mark)]
	}
}

// rowRoom is the part of resp that rows may use: the rest is kept for
// the command tags and errors that follow them.
func (c *conn) rowRoom() int {
	return c.maxResp - min(128, c.maxResp/2)
}

// dataRow appends a DataRow to resp (after the column names when
// header and the result has them), while there is room.
func (c *conn) dataRow(payload []byte, cols []column, formats []int, header bool) {
	if c.cut {
		return
	}
	mark := len(c.resp)
	if header && !c.header && len(c.cols) > 0 {
		if len(c.resp) > 0 && c.resp[len(c.resp)-1] != '\n' {
			c.resp = append(c.resp, '\n')
		}
		for i, col := range c.cols {
			if i > 0 {
				c.resp = append(c.resp, ',')
			}
			c.resp = append(c.resp, col.name...)
		}
		c.resp = append(c.resp, '\n')
		c.header = true
	}
	c.resp = appendRow(c.resp, payload, cols, formats)
	c.resp = append(c.resp, '\n')
	if len(c.resp) > c.rowRoom() {
		c.resp = c.resp[:mark]
		c.resp = appendCapped(c.resp, c.rowRoom(), []byte("...\n"))
		c.cut = true
	}
}

// copyData appends the data of a COPY … TO STDOUT, while there is room.
func (c *conn) copyData(payload []byte) {
	if c.cut {
		return
	}
	if len(c.resp)+len(payload) > c.rowRoom() {
		c.resp = appendCapped(c.resp, c.rowRoom(), []byte("...\n"))
		c.cut = true
		return
	}
	c.resp = append(c.resp, payload...)
}

func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// done ends the answer of r, the head request, with m: it writes r's row
// (when r makes one) and dequeues it.
func (c *conn) done(r *request, m *message) {
	if r.cmd != "" && c.row != nil {
		c.emit(r, m.endTS)
	}
	c.pop()
}

func (c *conn) pop() {
	r := c.reqs[c.head]
	c.reqs[c.head] = nil
	c.head++
	if c.head == len(c.reqs) {
		c.reqs, c.head = c.reqs[:0], 0
	}
	c.reqBytes -= len(r.text)
	c.release(r)
	c.resetResp()
}

func (c *conn) resetResp() {
	c.resp = c.resp[:0]
	c.cols = c.cols[:0]
	c.header, c.cut = false, false
}
