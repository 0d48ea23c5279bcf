package mongodb

import "encoding/binary"

// Opcodes of the MongoDB wire protocol.
const (
	opReply      = 1    // a reply to OP_QUERY (legacy)
	opUpdate     = 2001 // the removed legacy opcodes, counted as not parsed
	opInsert     = 2002
	opReserved   = 2003
	opQuery      = 2004 // legacy; drivers still send their handshake with it
	opGetMore    = 2005
	opDelete     = 2006
	opKillCursor = 2007
	opCompressed = 2012
	opMsg        = 2013
)

const (
	headerLen = 16
	// maxMessage is MongoDB's maxMessageSizeBytes: a header with a
	// longer length is not MongoDB's.
	maxMessage = 48_000_000
)

// OP_MSG flag bits.
const (
	flagChecksum   = 1 << 0
	flagMoreToCome = 1 << 1
	flagExhaust    = 1 << 16
	// flagsRequired are the bits a receiver must understand (0-15): those
	// not defined make the message invalid.
	flagsRequired = 0xffff &^ (flagChecksum | flagMoreToCome)
)

// header is a message's MsgHeader.
type header struct {
	length     int
	requestID  int32
	responseTo int32
	opCode     int32
}

func parseHeader(b []byte) header {
	return header{
		length:     int(int32(binary.LittleEndian.Uint32(b))),
		requestID:  int32(binary.LittleEndian.Uint32(b[4:])),
		responseTo: int32(binary.LittleEndian.Uint32(b[8:])),
		opCode:     int32(binary.LittleEndian.Uint32(b[12:])),
	}
}

// known reports whether h is a header of MongoDB's: a length that holds
// it and is within the largest message, and an opcode of the protocol.
func (h header) known() bool {
	if h.length < headerLen || h.length > maxMessage {
		return false
	}
	switch h.opCode {
	case opReply, opUpdate, opInsert, opReserved, opQuery, opGetMore, opDelete, opKillCursor, opCompressed, opMsg:
		return true
	}
	return false
}

// message is one message of a direction: its header and a bounded
// prefix of what follows it.
type message struct {
	header
	body    []byte // at most the reader's keep bytes after the header
	cut     bool   // bytes of the body were not kept (past keep, or lost)
	startTS int64  // when its first byte was seen
	endTS   int64  // when its last byte was seen
}

// reader splits one direction's bytes into messages by their headers'
// lengths, keeping a prefix of each body.
type reader struct {
	keep int // body bytes kept per message
	got  func(*message)
	fail func() // the bytes are not MongoDB's: a parse error

	hdr  [headerLen]byte
	nhdr int // header bytes seen of the message under way
	left int // body bytes still to come once the header is whole
	m    message
	last int64 // when the last segment was seen
	// lost: sync was lost (a gap outside a body, or a bad header); bytes
	// are dropped until a segment begins with a plausible header.
	lost bool
}

// feed reads the bytes of one segment, seen at ts.
func (r *reader) feed(b []byte, ts int64) {
	r.last = ts
	if r.lost {
		if len(b) < headerLen || !parseHeader(b).known() {
			return
		}
		r.lost, r.nhdr = false, 0
	}
	for len(b) > 0 {
		if r.nhdr < headerLen {
			if r.nhdr == 0 {
				r.m.startTS = ts
			}
			n := copy(r.hdr[r.nhdr:], b)
			r.nhdr += n
			b = b[n:]
			if r.nhdr < headerLen {
				return
			}
			h := parseHeader(r.hdr[:])
			if !h.known() {
				r.fail()
				r.lost, r.nhdr = true, 0
				return
			}
			r.m.header, r.m.body, r.m.cut = h, r.m.body[:0], false
			r.left = h.length - headerLen
		}
		n := min(r.left, len(b))
		if !r.m.cut {
			// Past keep, or after bytes lost, the rest is only counted.
			if room := r.keep - len(r.m.body); n > room {
				r.m.body = append(r.m.body, b[:room]...)
				r.m.cut = true
			} else {
				r.m.body = append(r.m.body, b[:n]...)
			}
		}
		r.left -= n
		b = b[n:]
		if r.left == 0 {
			r.done(ts)
		}
	}
}

// done hands the message read to got.
func (r *reader) done(ts int64) {
	r.m.endTS = ts
	r.nhdr = 0
	r.got(&r.m)
}

// gap skips n bytes lost at ts: within a body whose end the length tells
// the message goes on (cut where the bytes were lost), and gap reports
// true; anywhere else sync is lost, and the message under way with it.
func (r *reader) gap(n int, ts int64) bool {
	if n <= 0 {
		return true
	}
	if r.lost || r.nhdr < headerLen || n > r.left {
		r.lost, r.nhdr = true, 0
		return false
	}
	r.m.cut = true
	r.left -= n
	if r.left == 0 {
		r.done(ts)
	}
	return true
}

// pending reports whether a message is under way.
func (r *reader) pending() bool { return r.nhdr > 0 && !r.lost }
