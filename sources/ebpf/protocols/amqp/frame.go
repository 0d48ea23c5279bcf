package amqp

import (
	"bytes"
	"encoding/binary"
)

// Frame types.
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xce
)

// protocolHeader is what a client sends first: "AMQP", 0, then the
// version 0-9-1. A server that refuses the version answers with its own
// and closes.
var protocolHeader = []byte("AMQP\x00\x00\x09\x01")

// maxFrame bounds the payload size a frame header may give: servers
// negotiate far less (RabbitMQ: 128 KiB by default), so a larger one is
// garbage, not a frame to skip.
const maxFrame = 64 << 20

// frame is one frame, handed to the stitcher when its end octet is read;
// payload is valid only during that call.
type frame struct {
	typ     byte
	channel uint16
	size    int    // payload size
	payload []byte // the kept prefix of the payload
	// cut: payload bytes were lost in a gap.
	cut            bool
	startTS, endTS int64
}

// reader states.
const (
	stHead      = iota // reading a frame header (or the protocol header)
	stPayload          // reading a payload
	stEnd              // expecting the frame end octet
	stResync           // lost: waiting for a segment that starts a frame
	stProtoLast        // the protocol header's last byte is to come
)

// reader frames one direction of a connection.
type reader struct {
	state int
	head  [8]byte
	nhead int
	f     frame
	need  int // payload bytes still to come
	// keep returns how many bytes of the payload of f to keep (the
	// stitcher knows what a body frame's content still wants).
	keep func(f *frame) int
	kept int
	buf  []byte
	msg  func(*frame)
	fail func()
}

// pending reports whether the reader holds part of a frame.
func (r *reader) pending() bool { return r.state != stResync && (r.state != stHead || r.nhead > 0) }

// feed reads the bytes of one segment, seen at ts.
func (r *reader) feed(b []byte, ts int64) {
	if r.state == stResync {
		p := findFrame(b)
		if p < 0 {
			return
		}
		b = b[p:]
		r.state, r.nhead = stHead, 0
	}
	for len(b) > 0 {
		switch r.state {
		case stHead:
			if r.nhead == 0 {
				r.f.startTS = ts
			}
			n := copy(r.head[r.nhead:7], b)
			r.nhead += n
			b = b[n:]
			if r.nhead < 7 {
				return
			}
			if bytes.Equal(r.head[:4], protocolHeader[:4]) {
				r.state = stProtoLast // the protocol header has 8 bytes
				continue
			}
			r.begin()
		case stProtoLast:
			b = b[1:]
			r.state, r.nhead = stHead, 0
		case stPayload:
			n := min(r.need, len(b))
			if room := r.kept - len(r.buf); room > 0 && !r.f.cut {
				r.buf = append(r.buf, b[:min(n, room)]...)
			}
			r.need -= n
			b = b[n:]
			if r.need == 0 {
				r.state = stEnd
			}
		case stResync:
			return // a frame header was wrong: lost until the next segment
		case stEnd:
			if b[0] != frameEnd {
				r.fail()
				r.state = stResync
				return
			}
			b = b[1:]
			r.f.endTS = ts
			r.f.payload = r.buf
			r.state, r.nhead = stHead, 0
			r.msg(&r.f)
		}
	}
}

// begin starts the frame whose header is in r.head.
func (r *reader) begin() {
	f := &r.f
	f.typ = r.head[0]
	f.channel = binary.BigEndian.Uint16(r.head[1:3])
	size := binary.BigEndian.Uint32(r.head[3:7])
	if !validType(f.typ) || size > maxFrame {
		r.fail()
		r.state = stResync
		return
	}
	f.size, f.cut, f.payload = int(size), false, nil
	r.buf = r.buf[:0]
	r.kept = r.keep(f)
	r.need = f.size
	r.state = stPayload
	if r.need == 0 {
		r.state = stEnd
	}
}

func validType(t byte) bool {
	return t == frameMethod || t == frameHeader || t == frameBody || t == frameHeartbeat
}

// gap skips n lost bytes. It reports whether the reader kept its place
// (the bytes were inside a payload); otherwise it waits for a segment
// that starts a frame.
func (r *reader) gap(n int) bool {
	if r.state == stPayload && n <= r.need {
		r.need -= n
		r.f.cut = true
		if r.need == 0 {
			r.state = stEnd
		}
		return true
	}
	r.state, r.nhead = stResync, 0
	return false
}

// findFrame returns where the first frame of a segment plausibly
// starts, -1 if none does, to find frames again after lost bytes: the
// protocol header, or a frame header (its type, a bounded size, a known
// method for a method frame) whose end octet is where its size says,
// followed by the end of the segment or another frame header. Only at
// the segment's start may a frame go past its end.
func findFrame(b []byte) int {
	if bytes.HasPrefix(b, protocolHeader[:4]) {
		return 0
	}
	if plausible(b, true) {
		return 0
	}
	for p := 1; p+8 <= len(b); p++ {
		if plausible(b[p:], false) {
			return p
		}
	}
	return -1
}

// plausible reports whether b starts with a frame, as findFrame says;
// open allows the frame to go past b.
func plausible(b []byte, open bool) bool {
	if len(b) < 7 || !validType(b[0]) {
		return false
	}
	size := binary.BigEndian.Uint32(b[3:7])
	if size > maxFrame || (b[0] == frameHeartbeat && size != 0) {
		return false
	}
	if b[0] == frameMethod && (size < 4 || len(b) >= 11 && methods[key(binary.BigEndian.Uint16(b[7:9]), binary.BigEndian.Uint16(b[9:11]))] == nil) {
		return false
	}
	end := 7 + int(size)
	if end >= len(b) {
		return open
	}
	if b[end] != frameEnd {
		return false
	}
	next := b[end+1:]
	return len(next) == 0 || (validType(next[0]) && (len(next) < 7 || binary.BigEndian.Uint32(next[3:7]) <= maxFrame))
}
