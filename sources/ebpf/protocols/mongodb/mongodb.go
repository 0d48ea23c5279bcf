// Package mongodb parses the MongoDB wire protocol from the bytes of
// traced connections and stitches each command to its reply into a
// mongodb_events row.
//
// Messages are split by their headers' lengths (frame.go), keeping a
// bounded prefix of each; OP_MSG (flag bits, the body section and the
// document sequences, an optional checksum) is parsed, and OP_QUERY and
// OP_REPLY for the commands drivers still send that way (the hello or
// isMaster handshake). OP_COMPRESSED and the legacy opcodes are counted
// as not parsed. Documents are written as relaxed Extended JSON by the
// package's own BSON decoder (bson.go). A reply names the request it
// answers, so requests wait by id (stitch.go).
package mongodb

import (
	"encoding/binary"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
	"github.com/pxq-dev/pxq/table"
)

// Protocol is MongoDB.
type Protocol struct{}

var _ protocols.Protocol = Protocol{}

// Name implements protocols.Protocol.
func (Protocol) Name() string { return "mongodb" }

// ID implements protocols.Protocol: conn_stats.protocol 9, as in Pixie.
func (Protocol) ID() int64 { return 9 }

// Tables implements protocols.Protocol.
func (Protocol) Tables() []*table.Decl { return []*table.Decl{Table} }

// NewParser implements protocols.Protocol.
func (Protocol) NewParser(env protocols.Env) protocols.Parser { return newConn(env) }

// Infer implements protocols.Protocol. It recognises a whole header
// whose length is within MongoDB's largest message and whose opcode is
// OP_MSG, OP_QUERY (requests: responseTo 0) or OP_REPLY (a reply),
// followed by the start of a document whose length fits the message and
// whose first element has a known type and a whole, printable key: an
// OP_MSG with only defined flag bits and a body section first, an
// OP_QUERY of a "db.collection" name, an OP_REPLY of at least one
// document.
func (Protocol) Infer(data []byte, stream bool) (match, request bool) {
	if !stream || len(data) < headerLen {
		return false, false
	}
	h := parseHeader(data)
	if !h.known() {
		return false, false
	}
	end := min(len(data), h.length)
	b := data[headerLen:end]
	var doc []byte
	switch h.opCode {
	case opMsg:
		if len(b) < 5 {
			return false, false
		}
		flags := binary.LittleEndian.Uint32(b)
		if flags&^uint32(flagChecksum|flagMoreToCome|flagExhaust) != 0 || b[4] != 0 {
			return false, false
		}
		doc = b[5:]
		request = h.responseTo == 0
	case opQuery:
		if h.responseTo != 0 || len(b) < 4 || binary.LittleEndian.Uint32(b)&^0xfe != 0 {
			return false, false
		}
		coll, rest, ok := wire.CString(b[4:])
		if !ok || len(coll) < 3 || len(coll) > 255 || !printable(coll) || !hasDot(coll) || len(rest) < 8 {
			return false, false
		}
		doc, request = rest[8:], true
	case opReply:
		if h.responseTo == 0 || len(b) < 20 || binary.LittleEndian.Uint32(b)&^0xf != 0 {
			return false, false
		}
		if n := int32(binary.LittleEndian.Uint32(b[16:])); n < 1 {
			return false, false
		}
		doc = b[20:]
	default:
		return false, false
	}
	room := h.length - (len(data[:end]) - len(doc))
	return docStart(doc, room), request
}

// docStart reports whether b begins a BSON document of at most room
// bytes whose first element has a known type and a whole key of
// printable characters (an empty document is taken too).
func docStart(b []byte, room int) bool {
	if len(b) < 5 {
		return false
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 || n > room {
		return false
	}
	t := b[4]
	if t == 0 {
		return n == 5
	}
	if !(t >= tDouble && t <= tDecimal) && t != tMinKey && t != tMaxKey {
		return false
	}
	key, _, ok := wire.CString(b[5:])
	return ok && len(key) > 0 && 5+len(key)+1 <= n && printable(key)
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func hasDot(b []byte) bool {
	for _, c := range b[1 : len(b)-1] {
		if c == '.' {
			return true
		}
	}
	return false
}
