package http2

import (
	"encoding/binary"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/table"
)

// phase is where a direction's parser is in its byte stream.
type phase uint8

const (
	phPreface phase = iota // matching the client's connection preface
	phHeader               // reading a frame header
	phFixed                // reading a frame's fixed fields (fixedLen)
	phContent              // a frame's content: data or header block fragment
	phPadding              // a frame's padding, or the rest of a frame skipped
	phLost                 // frame boundaries unknown: waiting for a segment that starts with frames
)

// side parses the frames of one direction of a connection.
type side struct {
	c      *conn
	client bool // the client's frames (requests); else the server's
	ph     phase
	ts     int64 // time of the segment being parsed
	// started is set once the side had bytes (start).
	started bool

	npre    int // preface bytes matched
	hdr     [frameHeaderLen]byte
	nhdr    int
	fh      frameHeader
	fixed   [8]byte
	nfixed  int
	content int  // content bytes left in the frame
	pad     int  // padding bytes left
	skipped bool // content of the current frame was lost

	hp    *decoder
	block block
}

// block is the header block being received.
type block struct {
	open      bool
	stream    uint32
	promise   uint32 // the promised stream of a PUSH_PROMISE
	endStream bool
	failed    bool // bytes of it were lost or did not decode
	ts        int64
}

// conn is one connection: its two directions and its streams.
type conn struct {
	env     protocols.Env
	row     *table.Row // http_events
	sides   [2]side    // the client's frames, the server's
	streams map[uint32]*stream
	max     int // streams kept
	free    []*stream
}

// streamsPerPending is how many streams a connection keeps per
// MaxPending: HTTP/2 multiplexes many calls on one connection (a gRPC
// channel carries every concurrent call of a client).
const streamsPerPending = 4

func newConn(env protocols.Env) *conn {
	c := &conn{env: env, row: env.Row(http.Table), streams: map[uint32]*stream{}}
	c.max = max(streamsPerPending*env.Cfg.MaxPending, 16)
	for i := range c.sides {
		s := &c.sides[i]
		s.c, s.client, s.ph = c, i == 0, phHeader
		s.hp = newDecoder(true, max(env.Cfg.MaxHeaderBytes, 256))
	}
	return c
}

// side returns the parser of the frames that travel in dir: the client
// writes requests, the server reads them.
func (c *conn) side(dir protocols.Direction) *side {
	client := c.env.Conn.Role != protocols.RoleServer
	if (dir == protocols.Egress) == client {
		return &c.sides[0]
	}
	return &c.sides[1]
}

// start looks at the first bytes of a side. A connection seen from its
// start begins with the client's preface, which inference matched: the
// client side's table is known. The server side's is known when the
// client's is, or, before the client has sent anything, when the server
// begins with its own preface (a SETTINGS frame) and until it sends a
// header block: a server answers nothing before the client's preface
// (only parsers fed outside the tracer see the server first). Any other
// side is seen mid-stream: frame boundaries are found again and the
// table is unknown.
func (s *side) start(data []byte) {
	s.started = true
	c := s.c
	peer := &c.sides[1]
	if !s.client {
		peer = &c.sides[0]
	}
	var fromStart bool
	if s.client {
		n := min(len(data), len(preface))
		fromStart = string(data[:n]) == preface[:n]
		if !fromStart && peer.started && peer.hp.known {
			c.env.Count("sides_mid_stream", 1)
			peer.hp.reset(false)
		}
	} else if !peer.started {
		fromStart = settingsStart(data)
	} else {
		fromStart = peer.hp.known && peer.npre > 0
	}
	switch {
	case fromStart && s.client:
		s.ph = phPreface
	case fromStart:
		s.ph = phHeader
	default:
		c.env.Count("sides_mid_stream", 1)
		s.ph = phLost
		s.hp.reset(false)
	}
}

// settingsStart reports whether data begins with (what there is of) the
// header of a SETTINGS frame that is not an ACK.
func settingsStart(data []byte) bool {
	var h [frameHeaderLen]byte
	n := copy(h[:], data)
	if n < 4 {
		h[3] = byte(frameSettings) // length so far, then the type
	}
	hdr := parseFrameHeader(h[:])
	return hdr.typ == frameSettings && hdr.flags == 0 && (n < frameHeaderLen || hdr.strict(maxResyncFrame))
}

func (c *conn) Data(seg protocols.Segment) {
	if len(seg.Data) == 0 {
		return
	}
	s := c.side(seg.Dir)
	if !s.started {
		s.start(seg.Data)
	}
	s.feed(seg.Data, seg.TS)
}

func (c *conn) Gap(dir protocols.Direction, n int) {
	if n > 0 {
		c.side(dir).gap(n)
	}
}

func (c *conn) Pending() int { return len(c.streams) }

// feed parses data, which arrived at ts in one syscall. A side that lost
// frame boundaries takes them again only at the start of a segment that
// begins with strict frames.
func (s *side) feed(data []byte, ts int64) {
	s.ts = ts
	if s.ph == phLost {
		if n, ok := chain(data, maxResyncFrame, nil); !ok || n == 0 {
			return
		}
		s.ph, s.nhdr = phHeader, 0
	}
	for len(data) > 0 {
		switch s.ph {
		case phPreface:
			n := min(len(data), len(preface)-s.npre)
			if string(data[:n]) != preface[s.npre:s.npre+n] {
				s.lose("parse_errors")
				return
			}
			s.npre += n
			data = data[n:]
			if s.npre == len(preface) {
				s.ph = phHeader
			}
		case phHeader:
			n := copy(s.hdr[s.nhdr:], data)
			s.nhdr += n
			data = data[n:]
			if s.nhdr == frameHeaderLen {
				s.nhdr = 0
				if !s.begin(parseFrameHeader(s.hdr[:])) {
					return
				}
			}
		case phFixed:
			n := copy(s.fixed[s.nfixed:s.fh.fixedLen()], data)
			s.nfixed += n
			data = data[n:]
			if s.nfixed == s.fh.fixedLen() && !s.afterFixed() {
				return
			}
		case phContent:
			n := min(len(data), s.content)
			s.contentBytes(data[:n])
			s.content -= n
			data = data[n:]
			if s.content == 0 {
				s.ph = phPadding
				s.endIfDone()
			}
		case phPadding:
			n := min(len(data), s.pad)
			s.pad -= n
			data = data[n:]
			s.endIfDone()
		case phLost:
			return
		}
	}
}

// begin starts the frame of header h. It reports false when h cannot be
// a frame here: frame boundaries are lost.
func (s *side) begin(h frameHeader) bool {
	if !h.wellFormed(1 << 24) {
		s.lose("parse_errors")
		return false
	}
	if s.block.open && (h.typ != frameContinuation || h.stream != s.block.stream) {
		// A header block must be continued before any other frame.
		s.lose("parse_errors")
		return false
	}
	s.fh, s.nfixed, s.skipped = h, 0, false
	if h.fixedLen() > 0 {
		s.ph = phFixed
		return true
	}
	return s.afterFixed()
}

// afterFixed goes on once the frame's fixed fields are read.
func (s *side) afterFixed() bool {
	h := &s.fh
	s.pad = 0
	if h.flags&flagPadded != 0 && (h.typ == frameData || h.typ == frameHeaders || h.typ == framePushPromise) {
		s.pad = int(s.fixed[0])
	}
	s.content = h.length - h.fixedLen() - s.pad
	if s.content < 0 {
		s.lose("parse_errors")
		return false
	}
	switch h.typ {
	case frameHeaders:
		s.openBlock(h.stream, 0, h.flags&flagEndStream != 0)
	case framePushPromise:
		off := 0
		if h.flags&flagPadded != 0 {
			off = 1
		}
		s.openBlock(h.stream, binary.BigEndian.Uint32(s.fixed[off:])&0x7fffffff, false)
	case frameContinuation:
		if !s.block.open {
			// The start of its block was not seen (the side lost
			// bytes, or the connection was first seen here): the
			// fragment is skipped, and what it adds to the table is
			// unknown.
			s.skipped = true
			s.resetTable()
		}
	}
	s.ph = phContent
	if s.content == 0 {
		s.ph = phPadding
		s.endIfDone()
	}
	return true
}

// endIfDone ends the frame once its padding is read.
func (s *side) endIfDone() {
	if s.pad > 0 {
		return
	}
	s.ph = phHeader
	h := &s.fh
	switch h.typ {
	case frameData:
		if h.flags&flagEndStream != 0 {
			s.c.endHalf(s.client, h.stream, s.ts)
		}
	case frameHeaders, framePushPromise, frameContinuation:
		if h.flags&flagEndHeaders != 0 && s.block.open {
			s.closeBlock()
		}
	case frameRSTStream:
		if !s.skipped {
			s.c.reset(h.stream, s.ts)
		}
	}
}

// contentBytes takes the next content bytes of the current frame.
func (s *side) contentBytes(p []byte) {
	if len(p) == 0 || s.skipped {
		return
	}
	switch s.fh.typ {
	case frameData:
		if st := s.c.streams[s.fh.stream]; st != nil && !st.undecodable {
			st.half(s.client).data(p, s.ts, s.c.env.Cfg.MaxBodyBytes)
		}
	case frameHeaders, framePushPromise, frameContinuation:
		if s.block.failed {
			return
		}
		if err := s.hp.write(p); err != nil {
			s.block.failed = true
			s.resetTable()
		}
	}
}

func (s *side) openBlock(stream, promise uint32, endStream bool) {
	if !s.client && !s.c.sides[0].started && s.hp.known {
		// A header block before the client's preface: the connection
		// predates the parser (see start).
		s.c.env.Count("sides_mid_stream", 1)
		s.hp.reset(false)
	}
	s.block = block{open: true, stream: stream, promise: promise, endStream: endStream, ts: s.ts}
	s.hp.begin()
}

// closeBlock ends the header block and hands its fields to its stream.
func (s *side) closeBlock() {
	b := s.block
	s.block.open = false
	if !b.failed {
		if err := s.hp.end(); err != nil {
			b.failed = true
			s.resetTable()
		}
	}
	if s.hp.overflow {
		s.c.env.Count("headers_truncated", 1)
	}
	s.c.headers(s.client, &b, s.hp.fields, s.ts)
	s.hp.begin()
}

// resetTable makes the dynamic table unknown: the decoder starts again
// with an empty one.
func (s *side) resetTable() {
	if s.hp.used || s.hp.known {
		s.c.env.Count("hpack_resets", 1)
	}
	s.hp.reset(false)
}

// lose drops the frame boundaries (and the table: the bytes skipped until
// they are found again may hold header blocks), counting why.
func (s *side) lose(counter string) {
	s.c.env.Count(counter, 1)
	if s.block.open {
		s.block.failed = true
		b := s.block
		s.block.open = false
		s.c.headers(s.client, &b, nil, s.ts)
	}
	s.resetTable()
	s.ph, s.nhdr = phLost, 0
}

// gap skips n lost bytes. Within the current frame that keeps the frame
// boundaries: lost DATA is counted in its stream's body, a lost header
// block fragment makes the block fail and the table unknown. Past the
// frame, or outside one, the boundaries are lost.
func (s *side) gap(n int) {
	h := &s.fh
	switch s.ph {
	case phLost:
		return
	case phFixed, phContent, phPadding:
		left := s.pad
		if s.ph == phContent {
			left += s.content
		}
		if s.ph == phFixed {
			left = h.length - s.nfixed
		}
		if n > left {
			break
		}
		lostContent := n
		switch s.ph {
		case phFixed:
			// The split between content and padding is unknown: the
			// rest of the frame is skipped.
			s.skipped = true
			s.ph, s.content, s.pad = phPadding, 0, left-n
			switch h.typ {
			case frameHeaders:
				s.openBlock(h.stream, 0, h.flags&flagEndStream != 0)
				s.block.failed = true
				s.resetTable()
				lostContent = 0
			case framePushPromise:
				// The promised stream is unknown too; its
				// CONTINUATION frames are skipped as strays.
				s.resetTable()
				lostContent = 0
			}
		case phContent:
			lostContent = min(n, s.content)
			s.content -= lostContent
			s.pad -= n - lostContent
			if s.content == 0 {
				s.ph = phPadding
			}
		default:
			lostContent = 0
			s.pad -= n
		}
		if lostContent > 0 {
			switch h.typ {
			case frameData:
				if st := s.c.streams[h.stream]; st != nil {
					st.half(s.client).lose(lostContent)
				}
			case frameHeaders, framePushPromise, frameContinuation:
				if s.block.open && !s.block.failed {
					s.block.failed = true
					s.resetTable()
				}
			case frameRSTStream:
				s.skipped = true
			}
		}
		if s.ph == phPadding {
			s.endIfDone()
		}
		return
	}
	s.lose("gap_resyncs")
}
