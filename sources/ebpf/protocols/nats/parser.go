package nats

import (
	"bytes"
)

// kind is a protocol message's command.
type kind uint8

const (
	kNone kind = iota
	kInfo
	kConnect
	kPub
	kHPub
	kSub
	kUnsub
	kMsg
	kHMsg
	kPing
	kPong
	kOK
	kErr
)

// kindNames are the commands as they appear in rows (cmd).
var kindNames = [...]string{"", "INFO", "CONNECT", "PUB", "HPUB", "SUB", "UNSUB", "MSG", "HMSG", "PING", "PONG", "+OK", "-ERR"}

// commandKind returns the kind of a command word, in any case.
func commandKind(w []byte) kind {
	if len(w) < 3 || len(w) > 7 {
		return kNone
	}
	for k := kInfo; k <= kErr; k++ {
		if bytes.EqualFold(w, []byte(kindNames[k])) {
			return k
		}
	}
	return kNone
}

// maxPayload bounds the payload size a control line may announce: the
// server's own limit cannot be set above 64 MiB. A larger size is a
// parse error, so that garbage cannot make the reader skip the stream.
const maxPayload = 64 << 20

// line is a parsed control line: its argument fields and, for the
// commands that carry one, the payload's total size and the size of its
// header part (HPUB, HMSG).
type line struct {
	fields [5][]byte
	n      int
	total  int
	hdr    int
}

// parse reads the arguments of a command of kind k (rest is the line
// after the command word, without its line end), checking their number
// and the sizes.
func (l *line) parse(k kind, rest []byte) bool {
	l.n, l.total, l.hdr = 0, 0, 0
	for len(rest) > 0 {
		rest = bytes.TrimLeft(rest, " \t")
		if len(rest) == 0 {
			break
		}
		if l.n == len(l.fields) {
			return false
		}
		i := bytes.IndexAny(rest, " \t")
		if i < 0 {
			i = len(rest)
		}
		l.fields[l.n] = rest[:i]
		l.n++
		rest = rest[i:]
	}
	// The numbers of fields each command takes, without and with its
	// optional one (reply-to, queue group, max_msgs).
	lo, sizes := 0, 0
	switch k {
	case kPub:
		lo, sizes = 2, 1
	case kHPub:
		lo, sizes = 3, 2
	case kMsg:
		lo, sizes = 3, 1
	case kHMsg:
		lo, sizes = 4, 2
	case kSub:
		lo = 2
	case kUnsub:
		lo = 1
		if l.n == 2 {
			if _, ok := atoi(l.fields[1]); !ok {
				return false
			}
		}
	default:
		return l.n == 0
	}
	if l.n != lo && l.n != lo+1 {
		return false
	}
	if sizes > 0 {
		t, ok := atoi(l.fields[l.n-1])
		if !ok || t > maxPayload {
			return false
		}
		l.total = t
		if sizes == 2 {
			h, ok := atoi(l.fields[l.n-2])
			if !ok || h > t {
				return false
			}
			l.hdr = h
		}
		l.n -= sizes
	}
	return true
}

// atoi reads a decimal number of at most 9 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// message is one protocol message, handed to the stitcher when it is
// whole; its slices are valid only during that call.
type message struct {
	kind kind
	// args are the control line's fields (subject, sid, reply-to, …) for
	// the commands that have them, the text after the command for INFO,
	// CONNECT and -ERR.
	args    [5][]byte
	nargs   int
	hdr     []byte // the kept part of an HPUB's or HMSG's headers
	payload []byte // the kept part of the payload (headers excluded)
	hdrSize int
	size    int // payload bytes, headers excluded
	// cut is set when payload or header bytes were lost in a gap.
	cut            bool
	startTS, endTS int64
}

// tlsHandshake is the first byte of a TLS handshake record.
const tlsHandshake = 0x16

// reader states.
const (
	stLine    = iota // reading a control line
	stPayload        // reading a payload
	stEnd            // expecting the CRLF after a payload
	stResync         // lost: waiting for a line that starts a command
)

// reader frames one direction of a connection into messages.
type reader struct {
	maxLine, maxBody int
	state            int
	line             []byte // the control line so far
	skipLine         bool   // discarding a line too long to keep
	sawCR            bool   // the CR of a payload's CRLF was read
	need             int    // payload bytes still to come, headers included
	m                message
	argBuf           []byte // the fields of a message with a payload
	hdrBuf, bodyBuf  []byte
	msg              func(*message)
	fail             func()
	tls              func() // a TLS record where a command should start
}

// pending reports whether the reader holds part of a message.
func (r *reader) pending() bool {
	return r.state == stPayload || r.state == stEnd || len(r.line) > 0
}

// feed reads the bytes of one segment, seen at ts.
func (r *reader) feed(b []byte, ts int64) {
	if r.state == stResync {
		p := findCommand(b)
		if p < 0 {
			return
		}
		b = b[p:]
		r.state = stLine
	}
	for len(b) > 0 {
		switch r.state {
		case stLine:
			if len(r.line) == 0 && !r.skipLine && b[0] == tlsHandshake {
				r.tls() // the connection turned to TLS after the INFO
				return
			}
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				if r.skipLine {
					return
				}
				if len(r.line) == 0 {
					r.m.startTS = ts
				}
				if len(r.line)+len(b) > r.maxLine {
					r.fail()
					r.skipLine, r.line = true, r.line[:0]
					return
				}
				r.line = append(r.line, b...)
				return
			}
			l := b[:i]
			b = b[i+1:]
			if r.skipLine {
				r.skipLine = false
				continue
			}
			if len(r.line) > 0 {
				if len(r.line)+len(l) > r.maxLine {
					r.fail()
					r.line = r.line[:0]
					continue
				}
				r.line = append(r.line, l...)
				l = r.line
			} else {
				r.m.startTS = ts
			}
			r.control(bytes.TrimSuffix(l, []byte("\r")), ts)
			r.line = r.line[:0]
		case stPayload:
			n := min(r.need, len(b))
			r.keep(b[:n])
			r.need -= n
			b = b[n:]
			if r.need == 0 {
				r.state, r.sawCR = stEnd, false
			}
		case stEnd:
			switch {
			case b[0] == '\r' && !r.sawCR:
				r.sawCR = true
				b = b[1:]
			case b[0] == '\n':
				b = b[1:]
				r.state = stLine
				r.m.endTS = ts
				r.deliver()
			default:
				// The payload is longer than its line said: the message
				// is wrong, the rest is read as control lines.
				r.fail()
				r.state = stLine
			}
		}
	}
}

// keep adds payload bytes to the kept header and body prefixes.
func (r *reader) keep(b []byte) {
	if r.m.cut {
		return
	}
	m := &r.m
	done := m.hdrSize + m.size - r.need // bytes read before b
	if done < m.hdrSize {
		n := min(len(b), m.hdrSize-done)
		if room := r.maxLine - len(r.hdrBuf); room > 0 {
			r.hdrBuf = append(r.hdrBuf, b[:min(n, room)]...)
		}
		b = b[n:]
	}
	if room := r.maxBody - len(r.bodyBuf); room > 0 && len(b) > 0 {
		r.bodyBuf = append(r.bodyBuf, b[:min(len(b), room)]...)
	}
}

// control handles a whole control line l (without its line end).
func (r *reader) control(l []byte, ts int64) {
	if len(bytes.TrimSpace(l)) == 0 {
		return // an empty line: nothing
	}
	word, rest := l, []byte(nil)
	if i := bytes.IndexAny(l, " \t"); i >= 0 {
		word, rest = l[:i], l[i+1:]
	}
	k := commandKind(word)
	m := &r.m
	m.kind, m.nargs, m.hdr, m.payload, m.hdrSize, m.size, m.cut = k, 0, nil, nil, 0, 0, false
	switch k {
	case kNone:
		r.fail()
		return
	case kInfo, kConnect, kErr:
		m.args[0] = bytes.TrimSpace(rest)
		m.nargs = 1
		m.endTS = ts
		r.msg(m)
		return
	}
	var p line
	if !p.parse(k, rest) {
		r.fail()
		return
	}
	switch k {
	case kPub, kHPub, kMsg, kHMsg:
		// The fields are kept while the payload comes.
		r.argBuf = r.argBuf[:0]
		for _, f := range p.fields[:p.n] {
			r.argBuf = append(r.argBuf, f...)
		}
		off := 0
		for i, f := range p.fields[:p.n] {
			m.args[i] = r.argBuf[off : off+len(f) : off+len(f)]
			off += len(f)
		}
		m.nargs = p.n
		m.hdrSize, m.size = p.hdr, p.total-p.hdr
		r.hdrBuf, r.bodyBuf = r.hdrBuf[:0], r.bodyBuf[:0]
		r.need = p.total
		r.state, r.sawCR = stPayload, false
		if r.need == 0 {
			r.state = stEnd
		}
		return
	}
	copy(m.args[:], p.fields[:p.n])
	m.nargs = p.n
	m.endTS = ts
	r.msg(m)
}

// deliver hands over a message whose payload is whole.
func (r *reader) deliver() {
	r.m.hdr, r.m.payload = r.hdrBuf, r.bodyBuf
	r.msg(&r.m)
}

// gap skips n lost bytes. It reports whether the reader kept its place
// (the bytes were inside a payload); otherwise it waits for a line that
// starts a command.
func (r *reader) gap(n int) bool {
	if r.state == stPayload && n < r.need {
		r.need -= n
		r.m.cut = true
		return true
	}
	if r.state == stPayload && n == r.need {
		r.need, r.m.cut = 0, true
		r.state, r.sawCR = stEnd, false
		return true
	}
	r.state, r.line, r.skipLine = stResync, r.line[:0], false
	return false
}

// findCommand returns where the first line of b that starts with a
// command begins (b's start, or just after a line end), -1 if none does:
// where to read again after lost bytes.
func findCommand(b []byte) int {
	for p := 0; p < len(b); {
		if startsCommand(b[p:]) {
			return p
		}
		i := bytes.IndexByte(b[p:], '\n')
		if i < 0 {
			return -1
		}
		p += i + 1
	}
	return -1
}

// startsCommand reports whether b begins with a command word followed by
// a separator or the line end.
func startsCommand(b []byte) bool {
	i := bytes.IndexAny(b, " \t\r\n")
	if i < 0 {
		return false
	}
	return commandKind(b[:i]) != kNone
}
