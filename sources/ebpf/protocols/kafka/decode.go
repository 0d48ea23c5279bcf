package kafka

import "encoding/binary"

// decoder runs a compiled program over one message's bytes as they come,
// in pieces of any size, and renders the message as JSON. It keeps no
// more of the message than the primitive it is reading (a string up to
// maxString bytes): byte and record fields are counted and skipped, so a
// message of any size costs the same small state.
type decoder struct {
	stack []frame
	out   jsonOut
	pos   int // bytes of the message consumed
	bound int // where the innermost structure being read must end
	size  int // the message's byte count
	// rest lets bytes follow the end of the program (they are skipped):
	// for messages of which only the header is read.
	rest   bool
	failed bool

	// The primitive being read, in steps (sub) of the current op.
	ph     phase
	sub    uint8
	need   int
	buf    [16]byte
	nbuf   int
	uv     uint64
	ushift uint
	left   int // phString, phSkip, phRecords: bytes left
	str    []byte
	strCut bool // the string is longer than what is kept
	// strHole: bytes of the string were lost; nothing more of it is kept.
	strHole bool
	n       int // a length read by an earlier step
	tags    int // tagged fields left in the section being skipped
	rec     recordSet

	// What the parser takes from the message besides its JSON.
	acks      int16
	hasAcks   bool
	clientID  []byte
	topicName []byte
	topics    *topicCache
}

type phase uint8

const (
	phNone phase = iota
	phFixed
	phUvarint
	phString
	phSkip
	phRecords
)

// maxString bounds the bytes kept of a string; the rest is skipped and
// the rendered string ends with an ellipsis.
const maxString = 256

// frame is a program being run: the message, an array's element, or an
// embedded consumer protocol structure.
type frame struct {
	p     *prog
	pc    int
	left  int  // elements of the array left after this one
	array bool // the frame runs an array's elements
	// An embedded structure: its kind (tSubscr, tAssign), where it ends,
	// its size and the output before it, to fall back to its size when it
	// does not decode.
	nested tagNested
}

type tagNested struct {
	kind ftype
	end  int
	size int
	mark mark
}

var versionProg = &prog{ops: []op{{t: tVersion}}, object: true}

// reset readies the decoder for a message of size bytes read by p.
func (m *decoder) reset(p *prog, size, maxJSON int, rest bool) {
	m.stack = append(m.stack[:0], frame{p: p})
	m.out.reset(maxJSON)
	m.out.begin("", true)
	m.pos, m.size, m.bound, m.rest, m.failed = 0, size, size, rest, false
	m.ph, m.hasAcks, m.acks = phNone, false, 0
	m.clientID, m.topicName = m.clientID[:0], m.topicName[:0]
	m.settle()
}

// done reports whether the whole message was decoded.
func (m *decoder) done() bool {
	return !m.failed && len(m.stack) == 0 && m.pos == m.size
}

func (m *decoder) fail() {
	for i := len(m.stack) - 1; i >= 0; i-- {
		if m.stack[i].nested.kind != 0 {
			m.failNested(i)
			return
		}
	}
	m.failed = true
	m.ph = phNone
}

// feed decodes the next bytes of the message.
func (m *decoder) feed(data []byte) {
	for len(data) > 0 && !m.failed {
		if len(m.stack) == 0 {
			if !m.rest {
				m.fail() // bytes after the message's last field
				return
			}
			m.pos += len(data)
			return
		}
		k := m.consume(data)
		data = data[k:]
	}
}

// gap says n bytes of the message were lost. Inside a byte or record
// field that holds them, they are skipped; anywhere else the message can
// no longer be decoded. It reports whether the decoder absorbed them.
func (m *decoder) gap(n int) bool {
	if m.failed || len(m.stack) == 0 {
		m.pos += n
		return !m.failed && m.rest
	}
	switch m.ph {
	case phSkip, phString, phRecords:
		if n > m.left {
			break
		}
		if m.ph == phRecords {
			m.rec.bad = true
		}
		if m.ph == phString {
			m.strCut, m.strHole = true, true
		}
		m.pos += n
		m.left -= n
		if m.left == 0 {
			m.phaseDone()
		}
		return true
	}
	m.failed = true
	return false
}

// consume reads bytes of the current phase and returns how many it took.
func (m *decoder) consume(data []byte) int {
	switch m.ph {
	case phFixed:
		k := copy(m.buf[m.nbuf:m.need], data)
		m.nbuf += k
		m.pos += k
		if m.nbuf == m.need {
			m.phaseDone()
		}
		return k
	case phUvarint:
		if m.pos >= m.bound {
			m.fail()
			return 0
		}
		c := data[0]
		m.pos++
		if m.ushift > 35 {
			m.fail() // longer than a 32-bit varint
			return 1
		}
		m.uv |= uint64(c&0x7f) << m.ushift
		m.ushift += 7
		if c < 0x80 {
			m.phaseDone()
		}
		return 1
	case phString, phSkip, phRecords:
		k := min(m.left, len(data))
		switch m.ph {
		case phString:
			if keep := maxString - len(m.str); keep > 0 && !m.strHole {
				m.str = append(m.str, data[:min(k, keep)]...)
			}
		case phRecords:
			m.rec.feed(data[:k])
		}
		m.pos += k
		m.left -= k
		if m.left == 0 {
			m.phaseDone()
		}
		return k
	}
	m.fail()
	return len(data)
}

// Phases.

func (m *decoder) fixed(n int) {
	if m.pos+n > m.bound {
		m.fail()
		return
	}
	m.ph, m.need, m.nbuf = phFixed, n, 0
}

func (m *decoder) uvarint() { m.ph, m.uv, m.ushift = phUvarint, 0, 0 }

// length reads the length (or count) of the current op's value: compact
// (uvarint, plus one) or fixed (int16 for strings, int32 otherwise).
func (m *decoder) length(o *op) {
	switch {
	case o.compact:
		m.uvarint()
	case o.t == tString || o.t == tClientID:
		m.fixed(2)
	default:
		m.fixed(4)
	}
}

// lengthValue is the length just read for o; -1 for null.
func (m *decoder) lengthValue(o *op) int {
	if o.compact {
		return int(m.uv) - 1
	}
	if o.t == tString || o.t == tClientID {
		return int(int16(binary.BigEndian.Uint16(m.buf[:2])))
	}
	return int(int32(binary.BigEndian.Uint32(m.buf[:4])))
}

// within checks that n bytes fit in what is left of the structure.
func (m *decoder) within(n int) bool {
	if n < 0 || n > m.bound-m.pos {
		m.fail()
		return false
	}
	return true
}

func (m *decoder) skip(n int) {
	if n == 0 {
		m.ph = phNone
		m.step()
		return
	}
	m.ph, m.left = phSkip, n
}

func (m *decoder) readString(n int) {
	m.str, m.strCut, m.strHole = m.str[:0], n > maxString, false
	m.ph, m.left = phString, n
}

func (m *decoder) int() int64 {
	switch m.need {
	case 1:
		return int64(int8(m.buf[0]))
	case 2:
		return int64(int16(binary.BigEndian.Uint16(m.buf[:2])))
	case 4:
		return int64(int32(binary.BigEndian.Uint32(m.buf[:4])))
	}
	return int64(binary.BigEndian.Uint64(m.buf[:8]))
}

func (m *decoder) phaseDone() {
	m.ph = phNone
	m.step()
}

func (m *decoder) cur() *op {
	fr := &m.stack[len(m.stack)-1]
	return &fr.p.ops[fr.pc]
}

// start begins the op at the top of the stack: every op starts by
// reading bytes.
func (m *decoder) start() {
	o := m.cur()
	m.sub = 0
	switch o.t {
	case tInt8, tBool:
		m.fixed(1)
	case tInt16, tVersion:
		m.fixed(2)
	case tInt32:
		m.fixed(4)
	case tInt64:
		m.fixed(8)
	case tUUID:
		m.fixed(16)
	case tTags:
		m.uvarint()
	default:
		m.length(o)
	}
}

// next ends the current op.
func (m *decoder) next() {
	m.stack[len(m.stack)-1].pc++
	m.settle()
}

// settle ends the frames whose programs are done and starts the next op.
func (m *decoder) settle() {
	for len(m.stack) > 0 && !m.failed {
		fr := &m.stack[len(m.stack)-1]
		if fr.pc < len(fr.p.ops) {
			m.start()
			return
		}
		if fr.nested.kind != 0 {
			ns := fr.nested
			m.stack = m.stack[:len(m.stack)-1]
			m.out.end()
			m.setBound()
			m.sub = 2
			m.skip(ns.end - m.pos) // a newer version's fields
			return
		}
		if fr.p.object {
			m.out.end()
		}
		if fr.left > 0 {
			fr.left--
			fr.pc = 0
			if fr.p.object {
				m.out.begin("", true)
			}
			continue
		}
		array := fr.array
		m.stack = m.stack[:len(m.stack)-1]
		if !array {
			return // the message is done
		}
		m.out.end()
		m.stack[len(m.stack)-1].pc++
	}
}

// setBound sets the bound of the innermost embedded structure, or the
// message's.
func (m *decoder) setBound() {
	m.bound = m.size
	for i := len(m.stack) - 1; i >= 0; i-- {
		if m.stack[i].nested.kind != 0 {
			m.bound = m.stack[i].nested.end
			return
		}
	}
}

// failNested shows the embedded structure of frame i, which does not
// decode, as its size, and skips the rest of it.
func (m *decoder) failNested(i int) {
	ns := m.stack[i].nested
	m.out.rollback(ns.mark)
	m.stack = m.stack[:i]
	o := m.cur()
	m.out.begin(o.name, true)
	m.out.int("size", int64(ns.size))
	m.out.end()
	m.setBound()
	m.sub = 2
	m.ph = phNone
	m.skip(ns.end - m.pos)
}

// step continues the current op after a phase.
func (m *decoder) step() {
	o := m.cur()
	switch o.t {
	case tInt8, tInt16, tInt32, tInt64:
		v := m.int()
		m.out.int(o.name, v)
		if o.hook == hAcks {
			m.acks, m.hasAcks = int16(v), true
		}
		m.next()
	case tBool:
		m.out.bool(o.name, m.buf[0] != 0)
		m.next()
	case tUUID:
		m.uuid(o)
		m.next()
	case tVersion:
		v := m.int()
		if v < 0 {
			m.fail()
			return
		}
		m.out.int("version", v)
		fr := &m.stack[len(m.stack)-1]
		progs := subscrProgs
		if fr.nested.kind == tAssign {
			progs = assignProgs
		}
		fr.p, fr.pc = progs[min(int(v), len(progs)-1)], 0
		m.settle()
	case tClientID, tString:
		m.stepString(o)
	case tBytes:
		if m.sub == 0 {
			n := m.lengthValue(o)
			if n < 0 {
				m.out.null(o.name)
				m.next()
				return
			}
			if !m.within(n) {
				return
			}
			m.out.int(o.name, int64(n))
			m.sub = 1
			m.skip(n)
			return
		}
		m.next()
	case tRecords:
		m.stepRecords(o)
	case tArray, tList:
		n := m.lengthValue(o)
		switch {
		case n < 0:
			m.out.null(o.name)
			m.next()
		case n == 0:
			m.out.begin(o.name, false)
			m.out.end()
			m.next()
		case m.within(n): // every element takes a byte at least
			m.out.begin(o.name, false)
			m.stack = append(m.stack, frame{p: o.elem, left: n - 1, array: true})
			if o.elem.object {
				m.out.begin("", true)
			}
			m.settle()
		}
	case tSubscr, tAssign:
		m.stepNested(o)
	case tTags:
		m.stepTags()
	}
}

func (m *decoder) stepString(o *op) {
	if m.sub == 0 {
		n := m.lengthValue(o)
		if n <= 0 {
			if o.t == tString {
				if n < 0 {
					m.out.null(o.name)
				} else {
					m.out.str(o.name, nil, false)
				}
			}
			if o.hook == hTopicName {
				m.topicName = m.topicName[:0]
			}
			m.next()
			return
		}
		if !m.within(n) {
			return
		}
		m.sub = 1
		m.readString(n)
		return
	}
	switch {
	case o.t == tClientID:
		m.clientID = append(m.clientID[:0], m.str...)
	default:
		m.out.str(o.name, m.str, m.strCut)
		if o.hook == hTopicName {
			m.topicName = append(m.topicName[:0], m.str...)
		}
	}
	m.next()
}

func (m *decoder) stepRecords(o *op) {
	if m.sub == 0 {
		n := m.lengthValue(o)
		if n < 0 {
			m.out.null(o.name)
			m.next()
			return
		}
		if !m.within(n) {
			return
		}
		m.n, m.sub = n, 1
		m.rec.begin(n)
		if n > 0 {
			m.ph, m.left = phRecords, n
			return
		}
	}
	m.out.begin(o.name, true)
	m.out.int("size", int64(m.n))
	if !m.rec.bad {
		m.out.int("batches", m.rec.batches)
		m.out.int("records", m.rec.records)
	}
	m.out.end()
	m.next()
}

func (m *decoder) stepNested(o *op) {
	switch m.sub {
	case 0:
		n := m.lengthValue(o)
		switch {
		case n < 0:
			m.out.null(o.name)
			m.next()
		case n == 0:
			m.out.begin(o.name, true)
			m.out.end()
			m.next()
		case m.within(n):
			mk := m.out.mark()
			m.out.begin(o.name, true)
			m.stack = append(m.stack, frame{p: versionProg, nested: tagNested{kind: o.t, end: m.pos + n, size: n, mark: mk}})
			m.bound = m.pos + n
			m.settle()
		}
	case 2: // the structure's end (after its trailing bytes, if any)
		m.next()
	}
}

func (m *decoder) stepTags() {
	switch m.sub {
	case 0: // the number of tagged fields
		if m.uv == 0 {
			m.next()
			return
		}
		if !m.within(int(min(m.uv, 1<<30))) { // each takes a byte at least
			return
		}
		m.tags, m.sub = int(m.uv), 1
		m.uvarint()
	case 1: // a tag
		m.sub = 2
		m.uvarint()
	case 2: // its size
		if !m.within(int(min(m.uv, 1<<30))) {
			return
		}
		m.sub = 3
		m.skip(int(m.uv))
	case 3: // skipped
		m.tags--
		if m.tags == 0 {
			m.next()
			return
		}
		m.sub = 1
		m.uvarint()
	}
}

func (m *decoder) uuid(o *op) {
	id := m.buf
	switch o.hook {
	case hTopicID:
		if m.topics != nil && len(m.topicName) > 0 {
			m.topics.put(id, m.topicName)
		}
	case hResolve:
		if m.topics != nil {
			if name, ok := m.topics.get(id); ok {
				m.out.str("name", []byte(name), false)
			}
		}
	}
	if m.out.member(o.name) {
		m.out.b = appendUUID(m.out.b, id)
	}
}

// recordSet summarises a record set as it streams by: the record batches
// (message format v2) or messages (v0 and v1) it holds, and their
// records. A batch cut off at the end of the set (a Fetch response may
// end inside one) is not counted.
type recordSet struct {
	hdr     [61]byte
	nhdr    int
	want    int // header bytes wanted
	total   int // the current batch's size
	skip    int // bytes to skip to the next batch
	left    int // bytes left in the set
	batches int64
	records int64
	// bad: the set is not one (or bytes of it were lost); only its size
	// is shown.
	bad bool
}

// Offsets in a batch (or message) header.
const (
	batchMagic   = 16 // the magic byte: 2 for record batches
	batchHead    = 17 // what tells the format and size
	batchRecords = 57 // a v2 batch's record count
	batchHeadV2  = 61
)

func (r *recordSet) begin(n int) {
	r.nhdr, r.want, r.skip, r.left = 0, batchHead, 0, n
	r.batches, r.records, r.bad = 0, 0, false
}

func (r *recordSet) feed(b []byte) {
	for len(b) > 0 && !r.bad {
		if r.skip > 0 {
			k := min(r.skip, len(b))
			r.skip -= k
			r.left -= k
			b = b[k:]
			continue
		}
		k := copy(r.hdr[r.nhdr:r.want], b)
		r.nhdr += k
		r.left -= k
		b = b[k:]
		if r.nhdr < r.want {
			continue
		}
		if r.want == batchHead {
			size := int32(binary.BigEndian.Uint32(r.hdr[8:12]))
			magic := r.hdr[batchMagic]
			r.total = 12 + int(size)
			switch {
			case size < 0 || magic > 2 || r.total < batchHead || (magic == 2 && r.total < batchHeadV2):
				r.bad = true
				return
			case r.total > r.nhdr+r.left:
				r.skip, r.nhdr = r.left, 0 // cut off by the set's end
				continue
			case magic == 2:
				r.want = batchHeadV2
				continue
			}
			r.batches++
			r.records++
		} else {
			n := int32(binary.BigEndian.Uint32(r.hdr[batchRecords:batchHeadV2]))
			if n < 0 {
				r.bad = true
				return
			}
			r.batches++
			r.records += int64(n)
		}
		r.skip, r.nhdr, r.want = r.total-r.nhdr, 0, batchHead
	}
}

// appendUUID appends a UUID as Kafka prints one: base64url, unpadded, in
// quotes.
func appendUUID(b []byte, id [16]byte) []byte {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b = append(b, '"')
	for i := 0; i < 15; i += 3 {
		v := uint(id[i])<<16 | uint(id[i+1])<<8 | uint(id[i+2])
		b = append(b, enc[v>>18&63], enc[v>>12&63], enc[v>>6&63], enc[v&63])
	}
	v := uint(id[15])
	b = append(b, enc[v>>2], enc[v<<4&63])
	return append(b, '"')
}
