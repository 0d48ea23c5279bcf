package http2

import "encoding/binary"

// The client connection preface (RFC 9113 §3.4), sent before any frame.
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// frameType is an HTTP/2 frame type (RFC 9113 §6).
type frameType uint8

const (
	frameData         frameType = 0x0
	frameHeaders      frameType = 0x1
	framePriority     frameType = 0x2
	frameRSTStream    frameType = 0x3
	frameSettings     frameType = 0x4
	framePushPromise  frameType = 0x5
	framePing         frameType = 0x6
	frameGoAway       frameType = 0x7
	frameWindowUpdate frameType = 0x8
	frameContinuation frameType = 0x9
)

// Frame flags.
const (
	flagEndStream  = 0x1 // DATA, HEADERS; ACK on SETTINGS and PING
	flagEndHeaders = 0x4 // HEADERS, PUSH_PROMISE, CONTINUATION
	flagPadded     = 0x8 // DATA, HEADERS, PUSH_PROMISE
	flagPriority   = 0x20
)

const frameHeaderLen = 9

// frameHeader is the 9-byte header every frame starts with.
type frameHeader struct {
	length int
	typ    frameType
	flags  uint8
	stream uint32
	// reserved is the stream identifier's high bit, which senders leave 0.
	reserved bool
}

func parseFrameHeader(b []byte) frameHeader {
	id := binary.BigEndian.Uint32(b[5:9])
	return frameHeader{
		length:   int(b[0])<<16 | int(b[1])<<8 | int(b[2]),
		typ:      frameType(b[3]),
		flags:    b[4],
		stream:   id & 0x7fffffff,
		reserved: id&0x80000000 != 0,
	}
}

// carriesHeaders reports whether frames of type t hold a header block
// fragment, which the connection's HPACK decoder must see.
func (t frameType) carriesHeaders() bool {
	return t == frameHeaders || t == framePushPromise || t == frameContinuation
}

// fixedLen is the number of bytes at the start of a frame's payload that
// come before its content (data or header block fragment): the pad
// length, HEADERS' priority fields, PUSH_PROMISE's promised stream, and
// RST_STREAM's error code. The content of other frames is skipped.
func (h frameHeader) fixedLen() int {
	n := 0
	switch h.typ {
	case frameData:
	case frameHeaders:
		if h.flags&flagPriority != 0 {
			n = 5
		}
	case framePushPromise:
		n = 4
	case frameRSTStream:
		return 4
	default:
		return 0
	}
	if h.flags&flagPadded != 0 {
		n++
	}
	return n
}

// wellFormed reports whether h is a frame header a conforming peer can
// send, as far as its own fields tell (RFC 9113 §6): a frame that breaks
// these rules means the parser is not at a frame boundary. Unknown frame
// types are well formed (they are skipped); maxLen bounds the length.
func (h frameHeader) wellFormed(maxLen int) bool {
	if h.length > maxLen {
		return false
	}
	conn := h.stream == 0 // a connection-level frame
	switch h.typ {
	case frameData, frameHeaders, frameContinuation:
		return !conn && h.length >= h.fixedLen()
	case framePushPromise:
		return !conn && h.length >= h.fixedLen()
	case framePriority:
		return !conn && h.length == 5
	case frameRSTStream:
		return !conn && h.length == 4
	case frameSettings:
		return conn && h.length%6 == 0 && (h.flags&flagEndStream == 0 || h.length == 0)
	case framePing:
		return conn && h.length == 8
	case frameGoAway:
		return conn && h.length >= 8
	case frameWindowUpdate:
		return h.length == 4
	}
	return true
}

// strict reports whether h is well formed and also sets no flag its type
// does not define, has a known type and a zero reserved bit: what a
// frame found without knowing where frames start (a connection seen
// mid-stream, or after lost bytes) must look like to be taken for one.
func (h frameHeader) strict(maxLen int) bool {
	if h.reserved || h.typ > frameContinuation || !h.wellFormed(maxLen) {
		return false
	}
	var allowed uint8
	switch h.typ {
	case frameData:
		allowed = flagEndStream | flagPadded
	case frameHeaders:
		allowed = flagEndStream | flagEndHeaders | flagPadded | flagPriority
	case framePushPromise:
		allowed = flagEndHeaders | flagPadded
	case frameContinuation:
		allowed = flagEndHeaders
	case frameSettings, framePing:
		allowed = flagEndStream // ACK
	}
	return h.flags&^allowed == 0
}

// maxResyncFrame bounds the length of frames taken as boundaries when
// resynchronising: the largest SETTINGS_MAX_FRAME_SIZE a peer can ask
// for is 16 MiB, but real peers advertise at most 1 MiB.
const maxResyncFrame = 1 << 20

// chain checks that data begins with frames: every frame header that lies
// whole in data, each one following the last frame's payload, is strict
// (at most maxLen long), and a header block is continued only by
// CONTINUATION frames of its stream. It returns the number of whole frame
// headers found (0 when data does not hold one), or ok false.
func chain(data []byte, maxLen int, visit func(h frameHeader, payload []byte)) (frames int, ok bool) {
	var open uint32 // the stream of a header block not yet ended
	for len(data) >= frameHeaderLen {
		h := parseFrameHeader(data)
		if !h.strict(maxLen) {
			return frames, false
		}
		if (open != 0) != (h.typ == frameContinuation) || (open != 0 && h.stream != open) {
			return frames, false
		}
		open = 0
		if h.typ.carriesHeaders() && h.flags&flagEndHeaders == 0 {
			open = h.stream
		}
		frames++
		payload := data[frameHeaderLen:]
		if len(payload) > h.length {
			payload = payload[:h.length]
		}
		if visit != nil {
			visit(h, payload)
		}
		if len(data)-frameHeaderLen < h.length {
			break // the frame goes on past data
		}
		data = data[frameHeaderLen+h.length:]
	}
	return frames, true
}

// blockStart returns the start of the header block fragment in the
// payload of a HEADERS or PUSH_PROMISE frame (what is there of it).
func blockStart(h frameHeader, payload []byte) []byte {
	n := h.fixedLen()
	if n > len(payload) {
		return nil
	}
	return payload[n:]
}

// pseudoRole looks at the first field of a header block (after any
// dynamic table size updates) and reports whether it names a request
// pseudo-header (:authority, :method, :path, :scheme) or :status through
// the static table, which needs no knowledge of the connection's dynamic
// table. known is false when the first field does not say.
func pseudoRole(block []byte) (request, known bool) {
	for len(block) > 0 && block[0]&0xe0 == 0x20 { // dynamic table size update
		_, n := hpackInt(block, 5)
		if n <= 0 {
			return false, false
		}
		block = block[n:]
	}
	if len(block) == 0 {
		return false, false
	}
	var idx uint64
	var n int
	switch b := block[0]; {
	case b&0x80 != 0: // indexed field
		idx, n = hpackInt(block, 7)
	case b&0xc0 == 0x40: // literal with incremental indexing
		idx, n = hpackInt(block, 6)
	default: // literal without indexing or never indexed
		idx, n = hpackInt(block, 4)
	}
	switch {
	case n <= 0 || idx == 0 || idx > 14:
		return false, false
	case idx <= 7: // :authority, :method, :path, :scheme
		return true, true
	}
	return false, true // :status
}

// hpackInt decodes an HPACK integer with an n-bit prefix (RFC 7541 §5.1)
// and returns it and the bytes it took, 0 if b ends first, -1 if it
// overflows.
func hpackInt(b []byte, n uint) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	max := uint64(1)<<n - 1
	v := uint64(b[0]) & max
	if v < max {
		return v, 1
	}
	var m uint
	for i := 1; i < len(b); i++ {
		v += uint64(b[i]&0x7f) << m
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
		m += 7
		if m >= 63 {
			return 0, -1
		}
	}
	return 0, 0
}
