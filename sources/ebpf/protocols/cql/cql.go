// Package cql parses the Cassandra native protocol (CQL binary protocol
// v3, v4 and v5) from the bytes of traced connections and stitches each
// request to its response into a cql_events row.
//
// Each direction is read as envelopes (frame.go): a 9-byte header whose
// version byte also says the direction, flags, an int16 stream id, the
// opcode and the body's length. Protocol v5 wraps the envelopes, once
// the STARTUP is answered, in frames with a CRC24 header and a CRC32
// trailer; the reader takes them off. Requests and responses pair by
// stream id (stitch.go), in any order; bodies are rendered as Pixie
// shows them (decode.go, messages.go).
package cql

import (
	"encoding/binary"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is CQL.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "cql" }

// ID implements protocols.Protocol: conn_stats.protocol 4, as in Pixie.
func (Protocol) ID() int64 { return 4 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// inferBytes is how much of a message longer than the bytes at hand
// inference wants (the tracer gathers up to 512 bytes of a stream).
const inferBytes = 512

// Infer implements protocols.Protocol. It recognises an envelope of v3
// to v5: a header valid for its direction (the version byte's top bit),
// and a body that decodes by its opcode: whole, and exactly for the
// messages a connection starts with (OPTIONS, STARTUP, READY,
// SUPPORTED, AUTHENTICATE, REGISTER); a QUERY, PREPARE or Rows RESULT
// longer than the bytes at hand is judged on its first 512 bytes. v5
// frames (after the handshake) are not recognised.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < 9 {
		return false, false
	}
	response := data[0]&0x80 != 0
	if !validHeader(data, response) {
		return false, false
	}
	e := envelope{version: data[0] & 0x7f, flags: data[1], opcode: data[4], response: response,
		size: int(binary.BigEndian.Uint32(data[5:9]))}
	if e.flags&flagCompressed != 0 {
		return false, false
	}
	body := data[9:]
	whole := len(body) >= e.size
	if whole {
		e.body = body[:e.size]
	} else {
		if len(data) < inferBytes {
			return false, false
		}
		e.body = body
		switch e.opcode {
		case opQuery, opPrepare, opResult:
		default:
			return false, false
		}
	}
	if !plausibleBody(&e, whole) {
		return false, false
	}
	return true, !response
}

// plausibleBody decodes e's body for inference.
func plausibleBody(e *envelope, whole bool) bool {
	c := &cursor{b: e.body}
	skipPrefix(c, e)
	ok := true
	switch e.opcode {
	case opOptions, opReady:
	case opStartup:
		keys := startupKeys(c.b)
		found := false
		for _, k := range keys {
			found = found || k == "CQL_VERSION"
		}
		if !found {
			return false
		}
		for n := int(c.short()); n > 0 && !c.bad; n-- {
			c.str()
			c.str()
		}
	case opSupported:
		for n := int(c.short()); n > 0 && !c.bad; n-- {
			if !printable(c.str()) {
				return false
			}
			c.strList()
		}
	case opAuthenticate:
		ok = printable(c.str())
	case opRegister:
		for _, s := range c.strList() {
			switch string(s) {
			case "TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE":
			default:
				return false
			}
		}
	case opQuery, opPrepare:
		n := int(c.int())
		if n <= 0 || n > e.size-4 {
			return false
		}
		q := c.b[:min(n, len(c.b), 64)]
		if !printable(q) {
			return false
		}
		if !whole {
			return true
		}
		c.take(n)
		if e.opcode == opPrepare && e.version < 5 && len(c.b) != 0 {
			return false
		}
		if e.opcode == opQuery {
			c.short()
			if e.version >= 5 {
				c.int()
			} else {
				c.byte()
			}
		}
	case opExecute:
		c.shortBytes()
		if e.version >= 5 {
			c.shortBytes()
		}
		c.short()
	case opBatch:
		ok = c.byte() <= 2
	case opAuthResponse, opAuthChallenge, opAuthSuccess:
		c.value()
	case opError:
		c.int()
		ok = printable(c.str())
	case opResult:
		kind := c.int()
		if kind < resultVoid || kind > resultSchemaChange {
			return false
		}
		return whole || kind == resultRows
	case opEvent:
		switch string(c.str()) {
		case "TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE":
		default:
			return false
		}
	}
	if c.bad {
		return false
	}
	switch e.opcode {
	case opOptions, opReady, opStartup, opSupported, opRegister, opAuthenticate:
		return ok && len(c.b) == 0
	}
	return ok
}

// printable reports whether b is text without control characters
// (line breaks and tabs allowed).
func printable(b []byte) bool {
	for _, ch := range b {
		if ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}
