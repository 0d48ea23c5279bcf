package mysql

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/stitch"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// Commands (the first byte of a client's packet in the command phase).
const (
	comQuit         = 0x01
	comInitDB       = 0x02
	comQuery        = 0x03
	comFieldList    = 0x04
	comStatistics   = 0x09
	comProcessInfo  = 0x0a
	comProcessKill  = 0x0c
	comPing         = 0x0e
	comChangeUser   = 0x11
	comStmtPrepare  = 0x16
	comStmtExecute  = 0x17
	comStmtLongData = 0x18
	comStmtClose    = 0x19
	comStmtReset    = 0x1a
	comStmtFetch    = 0x1c
)

// Capability flags (MariaDB's extended ones in the upper 32 bits).
const (
	capMySQL            = 1
	capProtocol41       = 0x200
	capSSL              = 0x800
	capDeprecateEOF     = 1 << 24
	capOptionalMetadata = 1 << 25
	capQueryAttributes  = 1 << 27
	capCacheMetadata    = 1 << 36 // MARIADB_CLIENT_CACHE_METADATA
)

// statusMoreResults is SERVER_MORE_RESULTS_EXISTS in OK and EOF packets.
const statusMoreResults = 0x0008

// The values of resp_status, as in Pixie.
const (
	statusUnknown = 0
	statusNone    = 1 // the command has no response
	statusOK      = 2
	statusErr     = 3
)

// command is a client command waiting for its response.
type command struct {
	cmd     byte
	seq     byte   // the sequence id the response starts with
	text    []byte // req_body
	startTS int64
	stmt    *stmt // the statement a prepare makes
}

// StartTS implements stitch.Request.
func (c *command) StartTS() int64 { return c.startTS }

// stmt is a prepared statement.
type stmt struct {
	query  []byte
	params int
	types  []byte // 2 bytes per parameter, from the last execute that sent them
}

type phase uint8

const (
	phaseStart   phase = iota // nothing seen yet
	phaseGreeted              // the server's handshake seen; the client answers
	phaseAuth                 // authentication, up to the server's OK or ERR
	phaseCommand
)

// rstate is where the response to the head command is.
type rstate uint8

const (
	rsFirst         rstate = iota // no packet of the response yet
	rsNext                        // the next result of a multi-result response
	rsColumns                     // column definitions, n left
	rsColumnsEOF                  // the EOF after the column definitions, if any
	rsRows                        // rows, up to the terminating EOF/OK or ERR
	rsPrepParams                  // a prepare's parameter definitions, n left
	rsPrepParamsEOF               // the EOF after them, if any
	rsPrepCols                    // a prepare's column definitions, n left
	rsPrepColsEOF                 // the EOF after them
	rsFieldList                   // COM_FIELD_LIST's definitions, up to EOF
	rsInfile                      // LOCAL INFILE: the client sends, then OK or ERR
	rsAuth                        // COM_CHANGE_USER's authentication
)

// Bounds of what a connection keeps.
const maxStmtBytes = 1 << 20

// conn stitches one connection's commands to their responses. MySQL
// answers each command before the next, so commands wait in a FIFO; the
// response's form depends on the command (a result set for a query, an
// OK with a statement id for a prepare, nothing for COM_QUIT).
type conn struct {
	stitch.Stitcher[*command]
	client *framer
	server *framer

	stmts map[uint32]*stmt
	// lastStmt is the last prepared statement: MariaDB executes it as
	// statement id 0xFFFFFFFF.
	lastStmt  *stmt
	stmtBytes int

	phase     phase
	caps      uint64
	capsKnown bool
	tls       bool
	resync    bool

	// The response being read for the head command.
	rs      rstate
	n       int // definitions left
	cols    int // columns of the current result
	rows    int
	status  int64
	resp    []byte
	binary  bool  // rows of a result are in the binary protocol
	prepCol int   // a prepare's columns, read after its parameters
	lastTS  int64 // when the server's last packet ended
}

func newConn(env protocols.Env) *conn {
	c := &conn{Stitcher: stitch.New[*command](env, Table), stmts: map[uint32]*stmt{}}
	// The server's packets are kept up to the longest first part needed:
	// an OK's counters, an ERR's message.
	c.client = &framer{keep: c.MaxReq + 1, done: c.clientPacket, plausible: plausibleCommand}
	c.server = &framer{keep: max(c.MaxResp, 512), done: c.serverPacket, plausible: plausibleResponse}
	return c
}

func (c *conn) Data(seg protocols.Segment) {
	switch {
	case c.tls || len(seg.Data) == 0:
		// TLS: nothing more is parsed.
	case c.FromClient(seg.Dir):
		c.client.feed(seg.Data, seg.TS)
	default:
		c.server.feed(seg.Data, seg.TS)
	}
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if !c.tls && c.Skip(dir, n, c.client.gap, c.server.gap) {
		c.drop("lost_in_gap")
	}
}

func (c *conn) Poll(now int64) {
	if c.Overdue(now) {
		c.drop("timed_out")
	}
}

func (c *conn) Close(now int64) { c.Closed(c.client.pending() || c.server.pending(), c.Pending()) }

// drop forgets the queued commands, counting them as requests_<reason>,
// and loses sync: the next response pairs with the last command sent
// before it.
func (c *conn) drop(reason string) {
	c.Count("requests_"+reason, int64(c.Pending()))
	c.clearQueue()
	c.resync = true
}

func (c *conn) clearQueue() {
	c.Reqs.Clear()
	c.resetResp()
}

func (c *conn) resetResp() {
	c.rs, c.n, c.cols, c.rows, c.status, c.binary = rsFirst, 0, 0, 0, statusUnknown, false
	c.resp = c.resp[:0]
}

// plausibleCommand reports whether data, a client segment after lost
// sync, starts with a command packet.
func plausibleCommand(data []byte) bool {
	return data[3] == 0 && (data[0] != 0 || data[1] != 0 || data[2] != 0) && len(data) > 4 && data[4] <= 0x1f
}

// plausibleResponse reports whether data, a server segment after lost
// sync, starts with the first packet of a response: sequence 1 and an
// OK, an ERR or a column count alone.
func plausibleResponse(data []byte) bool {
	l := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	if data[3] != 1 || l == 0 || len(data) < 5 {
		return false
	}
	switch c := data[4]; {
	case c == 0x00:
		return l >= 7
	case c == 0xff:
		return l >= 3
	case c < 0xfb:
		return l == 1 || l == 2 // a column count, perhaps with a metadata byte
	}
	return false
}

// clientPacket handles a packet the client sent.
func (c *conn) clientPacket(p *packet) {
	switch c.phase {
	case phaseStart:
		c.phase = phaseCommand // seen from the middle
	case phaseGreeted:
		if p.seq == 1 {
			c.handshakeResponse(p)
		}
		return
	case phaseAuth:
		return // authentication data
	}
	if p.seq != 0 {
		// Not a command: LOCAL INFILE data, authentication answers of a
		// COM_CHANGE_USER.
		return
	}
	c.command(p)
}

// greeting reads the server's handshake; false if p is not one.
func (c *conn) greeting(p *packet) bool {
	if p.seq != 0 || p.first() != 0x0a {
		return false
	}
	r := reader{b: p.payload[1:]}
	version := r.cstring()
	if r.bad || len(version) == 0 {
		return false
	}
	r.n(4 + 8 + 1) // connection id, auth data, filler
	caps := r.uint(2)
	if len(r.b) >= 2+2+2+1+6+4 {
		r.n(1 + 2) // charset, status
		caps |= r.uint(2) << 16
		r.n(1 + 6) // auth data length, reserved
		if caps&capMySQL == 0 {
			caps |= r.uint(4) << 32 // MariaDB's extended capabilities
		}
	}
	if r.bad {
		return false
	}
	c.caps = caps
	return true
}

// handshakeResponse reads the client's answer to the handshake: its
// capabilities, or an SSLRequest after which the bytes are TLS.
func (c *conn) handshakeResponse(p *packet) {
	c.phase = phaseAuth
	if len(p.payload) < 32 {
		return
	}
	r := reader{b: p.payload}
	caps := r.uint(4)
	r.n(4 + 1 + 19)
	ext := r.uint(4)
	if caps&capSSL != 0 && p.size == 32 {
		c.tls = true
		c.Count("tls_conns", 1)
		return
	}
	if caps&capProtocol41 == 0 {
		return
	}
	server := c.caps
	c.caps = server & caps & 0xffffffff
	if server&capMySQL == 0 && caps&capMySQL == 0 {
		c.caps |= server & (ext << 32)
	}
	c.capsKnown = true
}

// serverPacket handles a packet the server sent.
func (c *conn) serverPacket(p *packet) {
	switch c.phase {
	case phaseStart:
		if c.greeting(p) {
			c.phase = phaseGreeted
			return
		}
		c.phase = phaseCommand // seen from the middle
	case phaseGreeted:
		return
	case phaseAuth:
		switch p.first() {
		case 0x00:
			c.phase = phaseCommand
		case 0xff:
			c.Count("auth_errors", 1)
			c.phase = phaseCommand
		}
		return // 0xFE switches the method, 0x01 carries more of its data
	}
	if c.resync {
		// Pair the first response that begins after the gap with the
		// last command sent before it; older ones lost their response.
		if p.seq != 1 || c.Pending() == 0 {
			return
		}
		lost := c.Reqs.Older(p.startTS)
		if lost < 0 {
			return
		}
		c.Count("requests_lost_in_gap", int64(lost))
		for range lost {
			c.pop()
		}
		c.resync = false
	}
	c.answerHead(p)
	c.lastTS = p.endTS
}

// answerHead hands p to the response of the head command.
func (c *conn) answerHead(p *packet) {
	if c.Pending() == 0 {
		c.Count("unmatched_responses", 1)
		return
	}
	c.answer(c.Reqs.Head(), p)
}

// push queues a command.
func (c *conn) push(cmd *command) {
	// Each command is answered before the next is sent.
	if c.Pending() >= stitch.MaxPending(c.Env.Cfg, false) {
		// The oldest has waited longest; its response, if it comes, is
		// paired with the next (counted, as in HTTP's stitcher).
		c.Count("requests_dropped_pending_full", 1)
		c.pop()
	}
	c.Reqs.Push(cmd)
}

func (c *conn) pop() {
	c.Reqs.Pop()
	c.resetResp()
}

// command handles a client's command packet.
func (c *conn) command(p *packet) {
	cmd := &command{cmd: p.first(), startTS: p.startTS, seq: p.last + 1}
	var body []byte
	if len(p.payload) > 0 {
		body = p.payload[1:]
	}
	switch cmd.cmd {
	case comQuery:
		cmd.text = append(cmd.text, c.queryText(body)...)
	case comInitDB, comStmtPrepare:
		cmd.text = append(cmd.text, body...)
		if cmd.cmd == comStmtPrepare {
			cmd.stmt = &stmt{query: bytes.Clone(body)}
		}
	case comFieldList, comChangeUser:
		r := reader{b: body}
		cmd.text = append(cmd.text, r.cstring()...)
	case comProcessKill:
		if len(body) >= 4 {
			cmd.text = strconv.AppendUint(cmd.text, uint64(binary.LittleEndian.Uint32(body)), 10)
		}
	case comStmtExecute:
		cmd.text = c.execute(cmd.text, body)
	case comStmtClose, comStmtReset, comStmtFetch, comStmtLongData:
		if s := c.stmt(body); s != nil {
			cmd.text = append(cmd.text, s.query...)
		}
		if cmd.cmd == comStmtClose && len(body) >= 4 {
			c.forget(binary.LittleEndian.Uint32(body))
		}
	}
	if len(cmd.text) > c.MaxReq {
		cmd.text = cmd.text[:c.MaxReq]
	}
	switch cmd.cmd {
	case comQuit, comStmtClose, comStmtLongData:
		// No response: the row is written now, as Pixie does.
		c.emit(cmd, statusNone, nil, p.endTS)
		return
	}
	c.push(cmd)
}

// queryText returns the text of a COM_QUERY, past the query attributes
// MySQL 8 puts before it.
func (c *conn) queryText(body []byte) []byte {
	switch {
	case c.capsKnown && c.caps&capQueryAttributes != 0:
		r := reader{b: body}
		n, _ := r.lenenc()
		r.lenenc() // parameter sets: always 1
		if n > 0 {
			if _, ok := c.params(nil, &r, int(n), nil, true); !ok {
				return nil
			}
		}
		if r.bad {
			return nil
		}
		return r.b
	case !c.capsKnown && len(body) >= 2 && body[0] == 0 && body[1] == 1:
		// Seen mid-stream: a query never starts with a NUL, attributes
		// do (no parameters, one set).
		return body[2:]
	}
	return body
}

// stmt returns the statement a COM_STMT_* body names.
func (c *conn) stmt(body []byte) *stmt {
	if len(body) < 4 {
		return nil
	}
	id := binary.LittleEndian.Uint32(body)
	if id == 0xffffffff {
		return c.lastStmt
	}
	return c.stmts[id]
}

func (c *conn) forget(id uint32) {
	if s := c.stmts[id]; s != nil {
		c.stmtBytes -= len(s.query)
		delete(c.stmts, id)
	}
}

// remember records a prepared statement, within the connection's bound.
func (c *conn) remember(id uint32, s *stmt) {
	c.forget(id)
	for c.stmtBytes+len(s.query) > maxStmtBytes && len(c.stmts) > 0 {
		for k := range c.stmts {
			c.forget(k)
			c.Count("statements_evicted", 1)
			break
		}
	}
	c.stmts[id] = s
	c.stmtBytes += len(s.query)
	c.lastStmt = s
}

// execute renders a COM_STMT_EXECUTE as "query=[…] params=[…]", the
// form normalize_mysql reads.
func (c *conn) execute(b []byte, body []byte) []byte {
	s := c.stmt(body)
	b = append(b, "query=["...)
	if s != nil {
		b = append(b, s.query[:min(len(s.query), c.MaxReq)]...)
	}
	b = append(b, "] params=["...)
	if s != nil {
		r := reader{b: body}
		r.n(4) // statement id
		flags := r.uint(1)
		r.n(4) // iteration count
		n := s.params
		attrs := c.capsKnown && c.caps&capQueryAttributes != 0
		if attrs && (n > 0 || flags&0x08 != 0) {
			v, _ := r.lenenc()
			n = int(v)
		}
		if n > 0 && !r.bad {
			b, _ = c.params(b, &r, n, s, attrs)
		}
	}
	return append(b, ']')
}

// params renders n parameter values read from r (a null bitmap, the
// new-types flag, the types, the values), with s's types when the
// packet does not send them (and remembering them when it does).
func (c *conn) params(b []byte, r *reader, n int, s *stmt, named bool) ([]byte, bool) {
	nulls := r.n((n + 7) / 8)
	var types []byte
	if r.uint(1) == 1 {
		for i := 0; i < n && !r.bad; i++ {
			types = append(types, r.n(2)...)
			if named {
				r.lenencString()
			}
		}
		if s != nil && !r.bad {
			s.types = types
		}
	} else if s != nil {
		types = s.types
	}
	if r.bad || len(types) < 2*n {
		return b, false
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ", "...)
		}
		if nulls[i/8]&(1<<(i%8)) != 0 {
			b = append(b, "NULL"...)
			continue
		}
		var ok bool
		b, ok = appendBinaryValue(b, r, types[2*i], types[2*i+1]&0x80 != 0)
		if !ok || len(b) > c.MaxReq {
			return b, false
		}
	}
	return b, true
}

// answer handles p, a packet of the response to cmd.
func (c *conn) answer(cmd *command, p *packet) {
	if c.rs == rsFirst && p.seq != cmd.seq {
		// A response's sequence ids go on from its command's (1 but
		// for a command of several wire packets): this is the tail of
		// an earlier one (an optional EOF the capabilities did not
		// tell).
		c.Count("stray_packets", 1)
		return
	}
	first := p.first()
	if first == 0xff && c.rs != rsColumns && c.rs != rsPrepParams && c.rs != rsPrepCols && cmd.cmd != comStatistics {
		if len(p.payload) >= 3 && binary.LittleEndian.Uint16(p.payload[1:]) == 0xffff {
			cmd.seq = p.seq + 1 // MariaDB's progress report, not an error
			return
		}
		c.sep()
		c.appendErr(p.payload)
		c.done(cmd, statusErr, p.endTS)
		return
	}
	switch c.rs {
	case rsFirst, rsNext:
		switch cmd.cmd {
		case comQuery, comStmtExecute, comProcessInfo:
			c.binary = cmd.cmd == comStmtExecute
			c.result(cmd, p)
		case comStmtFetch:
			c.binary = true
			c.rs = rsRows
			c.answer(cmd, p)
		case comStmtPrepare:
			c.prepareOK(cmd, p)
		case comFieldList:
			c.rs = rsFieldList
			c.answer(cmd, p)
		case comStatistics:
			c.appendResp(p.payload)
			c.done(cmd, statusOK, p.endTS)
		case comChangeUser:
			c.rs = rsAuth
			c.answer(cmd, p)
		default:
			switch {
			case first == 0x00:
				c.ok(p.payload)
				c.done(cmd, statusOK, p.endTS)
			case isEOF(p):
				c.done(cmd, statusOK, p.endTS)
			default:
				c.done(cmd, statusUnknown, p.endTS)
			}
		}
	case rsColumns:
		c.n--
		if c.n == 0 {
			c.rs = rsColumnsEOF
		}
	case rsColumnsEOF:
		c.rs = rsRows
		if isEOF(p) && len(p.payload) == 5 {
			return // the EOF between definitions and rows
		}
		c.answer(cmd, p)
	case rsRows:
		if !isEOF(p) {
			c.rows++
			return
		}
		c.sep()
		c.resp = wire.AppendCapped(c.resp, c.MaxResp, "columns=", strconv.Itoa(c.cols), " rows=", strconv.Itoa(c.rows))
		c.rows = 0
		if terminatorStatus(p)&statusMoreResults != 0 {
			c.rs = rsNext
			return
		}
		c.done(cmd, statusOK, p.endTS)
	case rsPrepParams:
		c.n--
		if c.n == 0 {
			if c.eofs() {
				c.rs = rsPrepParamsEOF
			} else {
				c.prepColumns(cmd, p)
			}
		}
	case rsPrepParamsEOF:
		if isEOF(p) && p.size == 5 {
			c.prepColumns(cmd, p)
			return
		}
		// No EOF after all (capabilities not seen): p belongs to the
		// columns, or, at sequence 1, to the next response.
		if c.prepCol == 0 || p.seq == 1 { // 1: a response's first packet
			c.done(cmd, statusOK, c.lastTS)
			c.answerHead(p)
			return
		}
		c.rs, c.n = rsPrepCols, c.prepCol
		c.answer(cmd, p)
	case rsPrepCols:
		c.n--
		if c.n == 0 {
			if c.capsKnown && c.caps&capDeprecateEOF == 0 {
				c.rs = rsPrepColsEOF
			} else {
				// When the capabilities are not known, an EOF that
				// follows is a stray packet (sequence > 1), skipped.
				c.done(cmd, statusOK, p.endTS)
			}
		}
	case rsPrepColsEOF:
		c.done(cmd, statusOK, p.endTS)
	case rsFieldList:
		if isEOF(p) {
			c.done(cmd, statusOK, p.endTS)
		}
	case rsInfile, rsAuth:
		if first == 0x00 {
			c.ok(p.payload)
			c.done(cmd, statusOK, p.endTS)
		}
	}
}

// result reads the first packet of a result: an OK, a LOCAL INFILE
// request, or a result set's column count.
func (c *conn) result(cmd *command, p *packet) {
	first := p.first()
	switch {
	case first == 0x00 && p.size >= 7:
		c.sep()
		more := c.ok(p.payload)
		if more {
			c.rs = rsNext
			return
		}
		c.done(cmd, statusOK, p.endTS)
		return
	case first == 0xfb && p.size > 1:
		c.resp = wire.AppendCapped(c.resp, c.MaxResp, "LOCAL INFILE ", string(p.payload[1:]), "; ")
		c.rs = rsInfile
		return
	}
	r := reader{b: p.payload}
	n, _ := r.lenenc()
	if r.bad || n == 0 || n > 1<<16 {
		c.Count("parse_errors", 1)
		c.done(cmd, statusUnknown, p.endTS)
		return
	}
	c.cols = int(n)
	// With cached (MariaDB) or optional (MySQL) metadata a byte tells
	// whether the definitions follow.
	meta := true
	if c.capsKnown && c.caps&(capCacheMetadata|capOptionalMetadata) != 0 && len(r.b) > 0 {
		meta = r.b[0] != 0
	}
	if meta {
		c.rs, c.n = rsColumns, c.cols
	} else {
		c.rs = rsColumnsEOF
	}
}

// prepareOK reads COM_STMT_PREPARE's OK: the statement id and how many
// parameter and column definitions follow.
func (c *conn) prepareOK(cmd *command, p *packet) {
	if p.first() != 0x00 || len(p.payload) < 12 {
		c.Count("parse_errors", 1)
		c.done(cmd, statusUnknown, p.endTS)
		return
	}
	b := p.payload
	id := binary.LittleEndian.Uint32(b[1:])
	cols := int(binary.LittleEndian.Uint16(b[5:]))
	params := int(binary.LittleEndian.Uint16(b[7:]))
	if cmd.stmt != nil {
		cmd.stmt.params = params
		c.remember(id, cmd.stmt)
	}
	c.resp = wire.AppendCapped(c.resp, c.MaxResp, "stmt_id=", strconv.FormatUint(uint64(id), 10),
		" params=", strconv.Itoa(params), " columns=", strconv.Itoa(cols))
	if c.capsKnown && c.caps&capOptionalMetadata != 0 && len(b) > 12 && b[12] == 0 {
		c.done(cmd, statusOK, p.endTS)
		return
	}
	c.prepCol = cols
	if params > 0 {
		c.rs, c.n = rsPrepParams, params
		return
	}
	c.prepColumns(cmd, p)
}

// prepColumns goes on to a prepare's column definitions, after its
// parameters'.
func (c *conn) prepColumns(cmd *command, p *packet) {
	if c.prepCol == 0 {
		c.done(cmd, statusOK, p.endTS)
		return
	}
	c.rs, c.n = rsPrepCols, c.prepCol
}

// eofs reports whether EOF packets may end definitions: not when the
// client and server agreed on CLIENT_DEPRECATE_EOF; maybe when the
// handshake was not seen.
func (c *conn) eofs() bool { return !c.capsKnown || c.caps&capDeprecateEOF == 0 }

// isEOF reports whether p is an EOF packet or an OK packet in its place
// (0xFE header, shorter than a row that could start with 0xFE).
func isEOF(p *packet) bool { return p.first() == 0xfe && p.size < 0xffffff && p.size < 1<<10 }

// terminatorStatus returns the status flags of the EOF or OK that ends
// a result set.
func terminatorStatus(p *packet) uint64 {
	r := reader{b: p.payload[1:]}
	if p.size == 5 { // EOF: warnings, status
		r.n(2)
		return r.uint(2)
	}
	r.lenenc()
	r.lenenc()
	return r.uint(2)
}

// ok appends the counters of an OK packet and reports whether more
// results follow.
func (c *conn) ok(payload []byte) bool {
	r := reader{b: payload[1:]}
	affected, _ := r.lenenc()
	insertID, _ := r.lenenc()
	status := r.uint(2)
	warnings := r.uint(2)
	if r.bad {
		return false
	}
	c.resp = wire.AppendCapped(c.resp, c.MaxResp, "affected_rows=", strconv.FormatUint(affected, 10))
	if insertID != 0 {
		c.resp = wire.AppendCapped(c.resp, c.MaxResp, " last_insert_id=", strconv.FormatUint(insertID, 10))
	}
	if warnings != 0 {
		c.resp = wire.AppendCapped(c.resp, c.MaxResp, " warnings=", strconv.FormatUint(warnings, 10))
	}
	return status&statusMoreResults != 0
}

// appendErr appends an ERR packet as the mysql client prints it:
// "ERROR 1146 (42S02): Table 'x.y' doesn't exist".
func (c *conn) appendErr(payload []byte) {
	if len(payload) < 3 {
		c.resp = wire.AppendCapped(c.resp, c.MaxResp, "ERROR")
		return
	}
	code := binary.LittleEndian.Uint16(payload[1:])
	msg := payload[3:]
	state := ""
	if len(msg) >= 6 && msg[0] == '#' {
		state, msg = " ("+string(msg[1:6])+")", msg[6:]
	}
	c.resp = wire.AppendCapped(c.resp, c.MaxResp, "ERROR ", strconv.Itoa(int(code)), state, ": ", string(msg))
}

// sep separates the parts of a multi-result response.
func (c *conn) sep() {
	if len(c.resp) > 0 {
		c.resp = wire.AppendCapped(c.resp, c.MaxResp, "; ")
	}
}

func (c *conn) appendResp(b []byte) {
	c.resp = wire.AppendCapped(c.resp, c.MaxResp, b)
}

// done ends the head command's response with status.
func (c *conn) done(cmd *command, status int64, ts int64) {
	c.emit(cmd, status, c.resp, ts)
	c.pop()
}
