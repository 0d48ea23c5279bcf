package pgsql

import "encoding/binary"

// message is one protocol message of one direction.
type message struct {
	// tag is the message type; 0 for the untagged messages a client
	// sends first (StartupMessage, SSLRequest, GSSENCRequest,
	// CancelRequest), whose payload starts with their 4-byte code.
	tag byte
	// payload is the kept prefix of the payload (the bytes after the
	// length); valid until the next message.
	payload []byte
	size    int  // the payload's full size
	lost    bool // bytes of the payload were not captured: payload holds those before the gap
	startTS int64
	endTS   int64
}

// partial reports whether payload lacks bytes of the message.
func (m *message) partial() bool { return len(m.payload) < m.size }

// The codes of the untagged messages.
const (
	codeSSL    = 80877103
	codeGSS    = 80877104
	codeCancel = 80877102
	// maxLen bounds a message's length: the server refuses longer ones.
	maxLen = 1 << 30
	// maxStartupLen bounds the untagged messages (the server's limit).
	maxStartupLen = 10000
)

// frontendTags and backendTags are the message types each side sends.
var frontendTags, backendTags [256]bool

func init() {
	for _, c := range "QPBDECSHXdcfpF" {
		frontendTags[c] = true
	}
	for _, c := range "RKSZTDCIENA123tnsGHWdcVv" {
		backendTags[c] = true
	}
}

type fstate uint8

const (
	fStart fstate = iota // a client's first bytes: maybe an untagged message
	fHead                // accumulating a message header
	fBody                // inside a payload
	fLost                // lost sync: waiting for a segment that starts a message
)

// framer splits one direction's byte stream into messages. It keeps at
// most keep bytes of a payload; the rest is counted and skipped, so a
// connection costs a bounded buffer whatever its messages' sizes.
type framer struct {
	backend  bool
	keep     int
	st       fstate
	untagged bool // the message being read is untagged
	hdr      [5]byte
	nhdr     int
	got      int // payload bytes seen (kept or not)
	buf      []byte
	msg      message
	lastTS   int64
	done     func(*message)
	fail     func() // a malformed header: the framer lost sync
	// stop, when set by done, makes feed drop the rest of its input (the
	// stream turned to TLS).
	stop bool
}

func newFramer(backend bool, keep int) *framer {
	f := &framer{backend: backend, keep: keep}
	if backend {
		f.st = fHead
	}
	return f
}

// validTag reports whether the direction sends messages of type tag.
func (f *framer) validTag(tag byte) bool {
	if f.backend {
		return backendTags[tag]
	}
	return frontendTags[tag]
}

// plausible reports whether data, the start of a segment after lost
// sync, begins with a message header.
func (f *framer) plausible(data []byte) bool {
	if len(data) < 5 || !f.validTag(data[0]) {
		return false
	}
	l := binary.BigEndian.Uint32(data[1:5])
	return l >= 4 && l <= maxLen
}

// feed parses the next bytes of the stream, seen at ts.
func (f *framer) feed(data []byte, ts int64) {
	f.lastTS = ts
	if f.st == fLost {
		if !f.plausible(data) {
			return
		}
		f.st, f.nhdr, f.untagged = fHead, 0, false
	}
	for len(data) > 0 && !f.stop {
		switch f.st {
		case fStart:
			// Untagged messages begin with their length, whose first
			// byte is 0; every tag is a letter or digit.
			f.untagged = data[0] == 0
			f.st, f.nhdr = fHead, 0
		case fHead:
			need := 5
			if f.untagged {
				need = 4
			}
			if f.nhdr == 0 {
				f.msg.startTS = ts
			}
			n := copy(f.hdr[f.nhdr:need], data)
			f.nhdr += n
			data = data[n:]
			if f.nhdr < need {
				return
			}
			var l uint32
			if f.untagged {
				f.msg.tag = 0
				l = binary.BigEndian.Uint32(f.hdr[:4])
				if l < 8 || l > maxStartupLen {
					f.lose()
					return
				}
			} else {
				f.msg.tag = f.hdr[0]
				l = binary.BigEndian.Uint32(f.hdr[1:5])
				if !f.validTag(f.msg.tag) || l < 4 || l > maxLen {
					f.lose()
					return
				}
			}
			f.msg.size = int(l) - 4
			f.buf, f.got, f.msg.lost = f.buf[:0], 0, false
			f.st = fBody
			if f.msg.size == 0 {
				f.finish(ts)
			}
		case fBody:
			n := min(f.msg.size-f.got, len(data))
			if k := f.keep - len(f.buf); k > 0 && !f.msg.lost {
				f.buf = append(f.buf, data[:min(n, k)]...)
			}
			f.got += n
			data = data[n:]
			if f.got == f.msg.size {
				f.finish(ts)
			}
		}
	}
}

// lose drops sync after a malformed header.
func (f *framer) lose() {
	f.st = fLost
	if f.fail != nil {
		f.fail()
	}
}

func (f *framer) finish(ts int64) {
	f.msg.endTS = ts
	f.msg.payload = f.buf
	f.st, f.nhdr = fHead, 0
	if f.untagged {
		// After a StartupMessage (protocol 3.x) every message is tagged;
		// an SSLRequest or GSSENCRequest is followed by another untagged
		// message (or by TLS).
		if len(f.buf) < 4 || binary.BigEndian.Uint32(f.buf)>>16 != 3 {
			f.st = fStart
		}
		f.untagged = false
	}
	f.done(&f.msg)
}

// gap skips n lost bytes. It reports false when they were not all inside
// a payload: the framer then waits for a segment that starts a message.
func (f *framer) gap(n int) bool {
	if f.st == fBody && f.msg.size-f.got >= n {
		f.got += n
		f.msg.lost = true
		if f.got == f.msg.size {
			f.finish(f.lastTS)
		}
		return true
	}
	f.st = fLost
	return false
}

// pending reports whether a message has begun and not ended.
func (f *framer) pending() bool {
	return f.st == fBody || (f.st == fHead && f.nhdr > 0)
}
