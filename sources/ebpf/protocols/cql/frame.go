package cql

import (
	"encoding/binary"
	"hash/crc32"
)

// An envelope is one message of the protocol: a 9-byte header (the
// version byte, whose top bit marks a response, flags, an int16 stream
// id, the opcode and the body's int32 length) and the body. Protocol v5
// carries the same envelopes inside frames once a connection's STARTUP
// is answered (frames below).
type envelope struct {
	version  byte // 3, 4 or 5
	flags    byte
	opcode   byte
	response bool
	stream   int16
	size     int    // the body's length
	body     []byte // the first bytes of the body, up to the reader's bound
	damaged  bool   // bytes of the kept part were lost
	startTS  int64
	endTS    int64
}

// cut reports whether the body holds less than its length.
func (e *envelope) cut() bool { return len(e.body) < e.size }

// Envelope header flags.
const (
	flagCompressed = 0x01
	flagTracing    = 0x02
	flagCustom     = 0x04
	flagWarning    = 0x08
)

// maxBody is the largest body the protocol allows (256 MiB).
const maxBody = 256 << 20

// validHeader reports whether h, 9 bytes, is an envelope header of
// protocol v3 to v5 for the side response says: an opcode that side
// sends, a stream id it may use, known flags and a length within the
// protocol's bound.
func validHeader(h []byte, response bool) bool {
	ver := h[0] & 0x7f
	if ver < 3 || ver > 5 || (h[0]&0x80 != 0) != response || h[1]&^0x1f != 0 {
		return false
	}
	size := int32(binary.BigEndian.Uint32(h[5:9]))
	if size < 0 || size > maxBody {
		return false
	}
	stream := int16(binary.BigEndian.Uint16(h[2:4]))
	if response {
		return responseOp(h[4]) && stream >= -1
	}
	return requestOp(h[4]) && stream >= 0
}

// reader reads one direction of a connection into envelopes, and, once
// v5 framing is on, out of the frames around them.
type reader struct {
	c        *conn
	response bool // the server's direction
	keep     int  // body bytes kept per envelope

	st      rstate
	hdr     [9]byte
	nhdr    int
	env     envelope
	got     int // body bytes seen
	startTS int64
	lastTS  int64

	// v5 framing.
	framed   bool
	inFrames bool // frames is running (an envelope that turns framing on ends inside it)
	fst      fstate
	fhdr     [6]byte
	nf       int
	flen     int // the frame's payload length
	fgot     int
	crc      uint32
	crcBad   bool // bytes of the payload were lost: its CRC cannot be checked
}

type rstate uint8

const (
	sHead rstate = iota // reading a header (nhdr bytes so far)
	sBody               // inside a body
	sLost               // lost sync: waiting for an envelope to start
)

type fstate uint8

const (
	fHead    fstate = iota // reading a frame header
	fPayload               // inside a frame's payload
	fTrailer               // reading its CRC32
	fLost                  // lost sync: waiting for a self-contained frame
)

func (r *reader) feed(data []byte, ts int64) {
	r.lastTS = ts
	if r.framed {
		r.frames(data, ts)
		return
	}
	r.envelopes(data, ts, true)
}

// envelopes reads envelopes from data; boundary says data starts where
// an envelope may (a syscall's bytes, a self-contained frame), the only
// place a lost reader looks for one.
func (r *reader) envelopes(data []byte, ts int64, boundary bool) {
	if r.st == sLost {
		if !boundary || !r.plausible(data) {
			return
		}
		r.st, r.nhdr = sHead, 0
	}
	for len(data) > 0 {
		switch r.st {
		case sHead:
			if r.nhdr == 0 {
				r.startTS = ts
			}
			k := copy(r.hdr[r.nhdr:], data)
			r.nhdr += k
			data = data[k:]
			if r.nhdr < len(r.hdr) {
				return
			}
			if !validHeader(r.hdr[:], r.response) {
				r.lose("parse_errors")
				return
			}
			h := r.hdr
			r.env = envelope{
				version: h[0] & 0x7f, flags: h[1], opcode: h[4], response: r.response,
				stream: int16(binary.BigEndian.Uint16(h[2:4])),
				size:   int(binary.BigEndian.Uint32(h[5:9])),
				body:   r.env.body[:0], startTS: r.startTS,
			}
			r.st, r.got = sBody, 0
			r.maybeEnd(ts)
		case sBody:
			k := min(r.env.size-r.got, len(data))
			if room := r.keep - len(r.env.body); room > 0 && !r.env.damaged {
				r.env.body = append(r.env.body, data[:min(k, room)]...)
			}
			r.got += k
			data = data[k:]
			r.maybeEnd(ts)
		case sLost:
			return
		}
		if r.framed && !r.inFrames {
			// The envelope that ended turned v5 framing on: what
			// follows is framed.
			r.frames(data, ts)
			return
		}
	}
}

// plausible reports whether data, the start of a segment after lost
// sync, begins an envelope of this side.
func (r *reader) plausible(data []byte) bool {
	if len(data) < 9 || !validHeader(data, r.response) {
		return false
	}
	v := r.c.version
	return v == 0 || data[0]&0x7f == v
}

func (r *reader) maybeEnd(ts int64) {
	if r.st != sBody || r.got < r.env.size {
		return
	}
	r.st, r.nhdr = sHead, 0
	r.env.endTS = ts
	r.c.envelope(&r.env)
}

// lose drops the envelope being read and waits for one to start.
func (r *reader) lose(counter string) {
	r.st, r.nhdr = sLost, 0
	r.c.count(counter, 1)
}

// gap skips n lost bytes.
func (r *reader) gap(n int) {
	if !r.framed {
		r.envGap(n)
		return
	}
	if r.fst == fPayload && n <= r.flen-r.fgot {
		r.fgot += n
		r.crcBad = true
		r.envGap(n)
		if r.fgot == r.flen {
			r.fst, r.nf = fTrailer, 0
		}
		return
	}
	if r.fst != fLost {
		r.fst, r.nf = fLost, 0
		r.st, r.nhdr = sLost, 0
		r.c.count("gap_resyncs", 1)
	}
}

// envGap skips n lost bytes of the envelopes: inside a body they keep
// the envelope (damaged when they fall in its kept part); anywhere else
// the reader loses sync.
func (r *reader) envGap(n int) {
	switch r.st {
	case sLost:
		return
	case sBody:
		if n <= r.env.size-r.got {
			if len(r.env.body) < r.keep && len(r.env.body) < r.env.size {
				r.env.damaged = true
			}
			r.got += n
			r.maybeEnd(r.lastTS)
			return
		}
	}
	r.lose("gap_resyncs")
}

// v5 frames (uncompressed): a 6-byte header, whose first 3 bytes are a
// little-endian integer holding the payload's length (17 bits) and the
// self-contained flag (bit 17), and whose last 3 are the CRC24 of the
// first 3; the payload (whole envelopes when self-contained, else a part
// of one large envelope); the payload's CRC32, little-endian.

const (
	crc24Init = 0x875060
	crc24Poly = 0x1974f0b
)

func crc24(b []byte) uint32 {
	crc := uint32(crc24Init)
	for _, c := range b {
		crc ^= uint32(c) << 16
		for range 8 {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= crc24Poly
			}
		}
	}
	return crc & 0xffffff
}

// crc32Init is the CRC32 of the bytes the protocol's CRC32 starts with.
var crc32Init = crc32.ChecksumIEEE([]byte{0xfa, 0x2d, 0x55, 0xca})

// frameHeader decodes a v5 frame header; ok is false when its CRC24 is
// wrong.
func frameHeader(h []byte) (length int, selfContained, ok bool) {
	v := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
	sum := uint32(h[3]) | uint32(h[4])<<8 | uint32(h[5])<<16
	return int(v & 0x1ffff), v&(1<<17) != 0, crc24(h[:3]) == sum
}

func (r *reader) frames(data []byte, ts int64) {
	r.inFrames = true
	defer func() { r.inFrames = false }()
	for len(data) > 0 {
		switch r.fst {
		case fLost:
			// Only at a segment's start: a header whose CRC24 holds, of
			// a self-contained frame.
			if len(data) < 6 {
				return
			}
			if _, self, ok := frameHeader(data); !ok || !self {
				return
			}
			r.fst, r.nf = fHead, 0
		case fHead:
			k := copy(r.fhdr[r.nf:], data)
			r.nf += k
			data = data[k:]
			if r.nf < len(r.fhdr) {
				return
			}
			n, self, ok := frameHeader(r.fhdr[:])
			if !ok {
				r.fst, r.st, r.nhdr = fLost, sLost, 0
				r.c.count("parse_errors", 1)
				return
			}
			if self && (r.st != sHead || r.nhdr != 0) {
				if r.st != sLost {
					// A self-contained frame begins with an envelope: the
					// one being read lost its end.
					r.c.count("parse_errors", 1)
				}
				r.st, r.nhdr = sHead, 0
			}
			r.fst, r.flen, r.fgot, r.crc, r.crcBad = fPayload, n, 0, crc32Init, false
			if n == 0 {
				r.fst, r.nf = fTrailer, 0
			}
		case fPayload:
			k := min(r.flen-r.fgot, len(data))
			r.crc = crc32.Update(r.crc, crc32.IEEETable, data[:k])
			r.envelopes(data[:k], ts, false)
			r.fgot += k
			data = data[k:]
			if r.fgot == r.flen {
				r.fst, r.nf = fTrailer, 0
			}
		case fTrailer:
			k := copy(r.fhdr[r.nf:4], data)
			r.nf += k
			data = data[k:]
			if r.nf < 4 {
				return
			}
			if !r.crcBad && binary.LittleEndian.Uint32(r.fhdr[:4]) != r.crc {
				r.c.count("crc_errors", 1)
			}
			r.fst, r.nf = fHead, 0
		}
	}
}
