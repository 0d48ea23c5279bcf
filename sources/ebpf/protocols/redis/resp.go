package redis

import (
	"bytes"
	"strconv"
)

// visitor receives the values of RESP messages as the decoder reads
// them: aggregates open (and close at end), scalars come whole (a bulk
// string up to the decoder's bound, with its full size).
type visitor interface {
	begin(ts int64)
	aggregate(kind byte, n int) // n < 0: a null aggregate
	scalar(kind byte, v []byte, size int, null bool)
	end()
	done(ts int64) // a top-level message ended
	inline(line []byte, ts int64)
}

type dstate uint8

const (
	dLine     dstate = iota // a type byte and its line, up to CRLF
	dBulk                   // a bulk string's bytes, left to read
	dBulkCRLF               // the CRLF after them
	dLost                   // lost sync: waiting for a segment that starts a message
)

// maxDepth bounds nested aggregates.
const maxDepth = 32

// decoder reads one direction's RESP2/RESP3 stream incrementally. Lines
// are kept up to maxLine, bulk strings up to keep bytes (the rest is
// skipped), so a connection costs bounded memory whatever its values.
type decoder struct {
	keep    int
	maxLine int
	// inlineOK allows inline commands (a line of words) at the top
	// level: the client side.
	inlineOK bool
	v        visitor
	fail     func()

	st       dstate
	line     []byte
	bulkKind byte
	bulkSize int
	bulkLeft int
	bulk     []byte
	lost     bool // bytes of the bulk string were not captured
	stack    []frame
	attrs    int // attribute frames open: their values are not visited
	inMsg    bool
	last     int64
}

// frame is an open aggregate: its elements left to read; attributes
// (RESP3 '|') are read and ignored, and do not count as a value.
type frame struct {
	left int
	attr bool
}

// respTypes are the type bytes of RESP2 and RESP3.
var respTypes [256]bool

func init() {
	for _, c := range "+-:$*_,#!=(%~>|" {
		respTypes[c] = true
	}
}

// startsMessage reports whether data (a segment after lost sync) likely
// starts a message.
func (d *decoder) startsMessage(data []byte) bool {
	if d.inlineOK {
		return data[0] == '*' && len(data) > 1 && data[1] >= '0' && data[1] <= '9'
	}
	return respTypes[data[0]] && data[0] != '|'
}

func (d *decoder) feed(data []byte, ts int64) {
	d.last = ts
	if d.st == dLost {
		if len(data) == 0 || !d.startsMessage(data) {
			return
		}
		d.reset()
	}
	for len(data) > 0 && d.st != dLost {
		if !d.inMsg {
			d.inMsg = true
			d.v.begin(ts)
		}
		switch d.st {
		case dLine:
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if len(d.line)+len(data) > d.maxLine {
					d.lose()
					return
				}
				d.line = append(d.line, data...)
				return
			}
			if len(d.line)+i > d.maxLine {
				d.lose()
				return
			}
			d.line = append(d.line, data[:i+1]...)
			data = data[i+1:]
			d.handleLine(ts)
			d.line = d.line[:0]
		case dBulk:
			n := min(d.bulkLeft, len(data))
			if k := d.keep - len(d.bulk); k > 0 && !d.lost {
				d.bulk = append(d.bulk, data[:min(n, k)]...)
			}
			d.bulkLeft -= n
			data = data[n:]
			if d.bulkLeft == 0 {
				d.st = dBulkCRLF
			}
		case dBulkCRLF:
			need := 2 - len(d.line)
			k := min(need, len(data))
			d.line = append(d.line, data[:k]...)
			data = data[k:]
			if len(d.line) < 2 {
				return
			}
			if d.line[0] != '\r' || d.line[1] != '\n' {
				d.lose()
				return
			}
			d.line = d.line[:0]
			d.st = dLine
			d.scalar(d.bulkKind, d.bulk, d.bulkSize, false)
			d.value(ts)
		}
	}
}

func (d *decoder) reset() {
	d.st, d.line, d.stack, d.attrs, d.inMsg, d.bulk = dLine, d.line[:0], d.stack[:0], 0, false, d.bulk[:0]
}

// scalar visits a scalar, unless it is inside an attribute.
func (d *decoder) scalar(kind byte, v []byte, size int, null bool) {
	if d.attrs == 0 {
		d.v.scalar(kind, v, size, null)
	}
}

// lose drops sync after malformed input.
func (d *decoder) lose() {
	d.st = dLost
	d.line, d.stack, d.attrs, d.inMsg = d.line[:0], d.stack[:0], 0, false
	if d.fail != nil {
		d.fail()
	}
}

// handleLine handles a complete line (with its CRLF).
func (d *decoder) handleLine(ts int64) {
	l := d.line
	if len(l) < 2 || l[len(l)-2] != '\r' {
		d.lose()
		return
	}
	l = l[:len(l)-2]
	if len(d.stack) == 0 && d.inlineOK && (len(l) == 0 || l[0] != '*') {
		// An inline command: words on a line (an empty line is none).
		if len(l) > 0 {
			d.v.inline(l, ts)
		}
		d.inMsg = false
		return
	}
	if len(l) == 0 {
		d.lose()
		return
	}
	kind, body := l[0], l[1:]
	switch kind {
	case '+', '-', ':', ',', '#', '(':
		d.scalar(kind, body, len(body), false)
		d.value(ts)
	case '_':
		d.scalar(kind, nil, 0, true)
		d.value(ts)
	case '$', '!', '=':
		n, ok := parseLen(body)
		if !ok {
			d.lose()
			return
		}
		if n < 0 {
			d.scalar(kind, nil, 0, true)
			d.value(ts)
			return
		}
		d.bulkKind, d.bulkSize, d.bulkLeft, d.bulk, d.lost = kind, n, n, d.bulk[:0], false
		d.st = dBulk
		if n == 0 {
			d.st = dBulkCRLF
		}
	case '*', '%', '~', '>', '|':
		n, ok := parseLen(body)
		if !ok || len(d.stack) >= maxDepth {
			d.lose()
			return
		}
		if kind == '%' || kind == '|' {
			n *= 2
		}
		attr := kind == '|'
		if attr && n <= 0 {
			return
		}
		if !attr && d.attrs == 0 {
			d.v.aggregate(kind, n)
		}
		if n <= 0 {
			if d.attrs == 0 {
				d.v.end()
			}
			d.value(ts)
			return
		}
		if attr {
			d.attrs++
		}
		d.stack = append(d.stack, frame{left: n, attr: attr})
	default:
		d.lose()
	}
}

// value accounts for a complete value: it closes the aggregates it
// completes, and ends the message at the top level.
func (d *decoder) value(ts int64) {
	for len(d.stack) > 0 {
		top := &d.stack[len(d.stack)-1]
		top.left--
		if top.left > 0 {
			return
		}
		attr := top.attr
		d.stack = d.stack[:len(d.stack)-1]
		if attr {
			d.attrs--
			return // an attribute precedes the value it describes
		}
		if d.attrs == 0 {
			d.v.end()
		}
	}
	d.inMsg = false
	d.v.done(ts)
}

// parseLen parses a RESP length: -1 (null) or a count.
func parseLen(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 11 {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < -1 {
		return 0, false
	}
	return n, true
}

// gap skips n lost bytes; false when they were not all inside a bulk
// string.
func (d *decoder) gap(n int) bool {
	if d.st == dBulk && d.bulkLeft >= n {
		d.bulkLeft -= n
		d.lost = true
		if d.bulkLeft == 0 {
			d.st = dBulkCRLF
		}
		return true
	}
	d.st = dLost
	d.line, d.stack, d.attrs, d.inMsg = d.line[:0], d.stack[:0], 0, false
	return false
}

// pending reports whether a message has begun and not ended.
func (d *decoder) pending() bool {
	return d.inMsg && (d.st != dLine || len(d.stack) > 0 || len(d.line) > 0)
}
