package pgsql

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/stitch"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
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

// StartTS implements stitch.Request.
func (r *request) StartTS() int64 { return r.startTS }

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
	stitch.Stitcher[*request]
	front *framer
	back  *framer

	reqBytes int // text of the queued requests
	spare    []*request
	stmts    map[string]*stmt
	portals  map[string]*portal
	stmtSize int

	// The answer being read for the head request.
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
	c := &conn{Stitcher: stitch.New[*request](env, Table), stmts: map[string]*stmt{}, portals: map[string]*portal{}}
	c.front, c.back = newFramer(false, c.MaxReq), newFramer(true, max(c.MaxReq, c.MaxResp))
	c.front.done, c.back.done = c.frontend, c.backend
	fail := func() { c.Count("parse_errors", 1) }
	c.front.fail, c.back.fail = fail, fail
	return c
}

func (c *conn) Data(seg protocols.Segment) {
	if c.tls || len(seg.Data) == 0 {
		return
	}
	if c.FromClient(seg.Dir) {
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
			c.Count("tls_conns", 1)
			c.dropAll("encrypted")
			return
		}
		data = data[1:]
	}
	c.backSeen = true
	c.back.feed(data, seg.TS)
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if !c.tls && c.Skip(dir, n, c.front.gap, c.back.gap) {
		c.lostSync()
	}
}

// lostSync forgets the queued requests: whole messages may be gone, so
// the answers that follow are dropped up to the next ReadyForQuery,
// after which both sides are in step again.
func (c *conn) lostSync() {
	c.dropAll("lost_in_gap")
	c.resync = true
	c.discard = false
}

// pendingRows counts the queued requests that would have made rows.
func (c *conn) pendingRows() int {
	n := 0
	for _, r := range c.Reqs.All() {
		if r.cmd != "" {
			n++
		}
	}
	return n
}

func (c *conn) clearQueue() {
	for _, r := range c.Reqs.All() {
		c.release(r)
	}
	c.Reqs.Clear()
	c.reqBytes = 0
	c.resetResp()
}

// dropAll forgets the queued requests, counting those that would have
// made rows as requests_<reason>.
func (c *conn) dropAll(reason string) {
	if n := c.pendingRows(); n > 0 {
		c.Count("requests_"+reason, int64(n))
	}
	c.clearQueue()
}

func (c *conn) Poll(now int64) {
	if c.Overdue(now) {
		// Whatever comes next cannot be paired with confidence:
		// resynchronise at the next ReadyForQuery.
		c.dropAll("timed_out")
		c.resync = true
	}
}

func (c *conn) Close(now int64) { c.Closed(c.front.pending() || c.back.pending(), c.pendingRows()) }

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
			c.Count("requests_lost_in_gap", 1)
		}
		c.release(r)
		return
	}
	// Clients pipeline the messages of the extended protocol.
	if c.Pending() >= stitch.MaxPending(c.Env.Cfg, true) || c.reqBytes+len(r.text) > maxReqBytes {
		c.Count("requests_dropped_pending_full", int64(c.pendingRows()+1))
		c.release(r)
		c.clearQueue()
		c.resync = true
		return
	}
	c.reqBytes += len(r.text)
	c.Reqs.Push(r)
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
			c.Count("skipped_after_error", 1)
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
			q.text = wire.AppendCapped(q.text, c.MaxReq-1, q.portal.stmt.query)
		}
		q.text = append(q.text, "] params=["...)
		if q.portal != nil {
			q.text = wire.AppendCapped(q.text, c.MaxReq-1, q.portal.params)
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
			c.Count("statements_evicted", 1)
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
		if len(p.params) >= c.MaxReq {
			p.params = p.params[:c.MaxReq]
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
	q.text = wire.AppendCapped(q.text, c.MaxReq-1, p.params)
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
			c.Count("startup_errors", 1)
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
			c.Count("unmatched_responses", 1)
		}
		return
	}
	c.answer(c.Reqs.Head(), m)
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
			c.doneWith(r, m, "NO DATA")
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
			c.doneWith(r, m, "EMPTY QUERY")
		case 's':
			c.doneWith(r, m, "PORTAL SUSPENDED")
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
			c.Count("sync_errors", 1)
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
		c.doneWith(r, m, text)
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
	for c.Pending() > 0 && c.Reqs.Head().tag != 'S' {
		if c.Reqs.Head().cmd != "" {
			skipped++
		}
		c.pop()
	}
	c.Count("skipped_after_error", int64(skipped))
	if c.Pending() == 0 {
		c.discard = true
	}
}

// unexpected handles a message that cannot answer the head request: the
// two sides are out of step.
func (c *conn) unexpected(m *message) {
	c.Count("unexpected_responses", 1)
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
	c.resp = wire.AppendCapped(c.resp, c.MaxResp, s...)
}

func (c *conn) appendError(payload []byte) {
	mark := len(c.resp)
	c.resp = appendError(c.resp, payload)
	if len(c.resp) > c.MaxResp {
		c.resp = c.resp[:max(c.MaxResp, mark)]
	}
}

// rowRoom is the part of resp that rows may use: the rest is kept for
// the command tags and errors that follow them.
func (c *conn) rowRoom() int {
	return c.MaxResp - min(128, c.MaxResp/2)
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
		c.resp = wire.AppendCapped(c.resp, c.rowRoom(), []byte("...\n"))
		c.cut = true
	}
}

// copyData appends the data of a COPY … TO STDOUT, while there is room.
func (c *conn) copyData(payload []byte) {
	if c.cut {
		return
	}
	if len(c.resp)+len(payload) > c.rowRoom() {
		c.resp = wire.AppendCapped(c.resp, c.rowRoom(), []byte("...\n"))
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
	if r.cmd != "" && c.Row != nil {
		c.emit(r, m.endTS)
	}
	c.pop()
}

// doneWith ends the answer of r with m, whose text is text.
func (c *conn) doneWith(r *request, m *message, text string) {
	c.appendResp([]byte(text))
	c.done(r, m)
}

func (c *conn) pop() {
	r := c.Reqs.Pop()
	c.reqBytes -= len(r.text)
	c.release(r)
	c.resetResp()
}

func (c *conn) resetResp() {
	c.resp = c.resp[:0]
	c.cols = c.cols[:0]
	c.header, c.cut = false, false
}
