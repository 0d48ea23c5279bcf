package mysql

// packet is one logical packet of one direction: a payload that may span
// several wire packets (a payload of 16 MiB − 1 or more continues in the
// next wire packet).
type packet struct {
	seq  byte // the sequence id of its first wire packet
	last byte // and of its last
	// payload is the kept prefix of the payload; valid until the next
	// packet.
	payload []byte
	size    int  // the payload's full size
	lost    bool // bytes were not captured: payload holds those before the gap
	startTS int64
	endTS   int64
}

// partial reports whether payload lacks bytes of the packet.
func (p *packet) partial() bool { return len(p.payload) < p.size }

// first is the payload's first byte (0 for an empty payload).
func (p *packet) first() byte {
	if len(p.payload) == 0 {
		return 0
	}
	return p.payload[0]
}

// maxWire is the payload length of a wire packet that is continued.
const maxWire = 1<<24 - 1

type fstate uint8

const (
	fHead fstate = iota
	fBody
	fLost
)

// framer splits one direction's byte stream into packets, keeping at
// most keep bytes of each payload.
type framer struct {
	keep int
	st   fstate
	hdr  [4]byte
	nhdr int
	wire int  // bytes left in the current wire packet
	more bool // the current wire packet is continued
	cont bool // the packet being read began in an earlier wire packet
	buf  []byte
	pkt  packet
	last int64
	done func(*packet)
	// plausible tells, after lost sync, whether a segment starts a
	// packet (each side has its own idea of a likely first packet).
	plausible func([]byte) bool
}

func (f *framer) feed(data []byte, ts int64) {
	f.last = ts
	if f.st == fLost {
		if len(data) < 4 || !f.plausible(data) {
			return
		}
		f.st, f.nhdr, f.cont = fHead, 0, false
	}
	for len(data) > 0 {
		switch f.st {
		case fHead:
			if f.nhdr == 0 && !f.cont {
				f.pkt.startTS = ts
			}
			n := copy(f.hdr[f.nhdr:], data)
			f.nhdr += n
			data = data[n:]
			if f.nhdr < 4 {
				return
			}
			f.nhdr = 0
			l := int(f.hdr[0]) | int(f.hdr[1])<<8 | int(f.hdr[2])<<16
			f.pkt.last = f.hdr[3]
			if !f.cont {
				f.pkt.seq = f.hdr[3]
				f.pkt.size, f.pkt.lost = 0, false
				f.buf = f.buf[:0]
			}
			f.wire, f.more = l, l == maxWire
			f.st = fBody
			if l == 0 {
				f.endWire(ts)
			}
		case fBody:
			n := min(f.wire, len(data))
			if k := f.keep - len(f.buf); k > 0 && !f.pkt.lost {
				f.buf = append(f.buf, data[:min(n, k)]...)
			}
			f.wire -= n
			f.pkt.size += n
			data = data[n:]
			if f.wire == 0 {
				f.endWire(ts)
			}
		}
	}
}

// endWire ends a wire packet: the logical packet ends with it unless it
// is continued.
func (f *framer) endWire(ts int64) {
	f.st = fHead
	if f.more {
		f.cont = true
		return
	}
	f.cont = false
	f.pkt.endTS = ts
	f.pkt.payload = f.buf
	f.done(&f.pkt)
}

// gap skips n lost bytes; false when they were not all inside one wire
// packet's payload (sync is lost until a plausible segment start).
func (f *framer) gap(n int) bool {
	if f.st == fBody && f.wire >= n {
		f.wire -= n
		f.pkt.size += n
		f.pkt.lost = true
		if f.wire == 0 {
			f.endWire(f.last)
		}
		return true
	}
	f.st = fLost
	f.cont = false
	return false
}

// pending reports whether a packet has begun and not ended.
func (f *framer) pending() bool {
	return f.st == fBody || f.cont || (f.st == fHead && f.nhdr > 0)
}
