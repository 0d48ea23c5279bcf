package kafka

import (
	"strconv"
	"unicode/utf8"
)

// jsonOut writes a message as JSON as its fields are decoded, within a
// budget: past max bytes it stops at the next key or array element and
// only closes what it opened, so that the text stays valid JSON, and the
// outermost object then ends with "truncated":true.
type jsonOut struct {
	b     []byte
	max   int
	open  []byte // the closing bracket of each container written
	empty []bool // whether that container has no member yet
	cut   bool
	// hidden counts containers opened after the cut (not written).
	hidden int
}

// mark is a position of the output to roll back to.
type mark struct {
	n, depth int
	cut      bool
	hidden   int
}

func (w *jsonOut) reset(max int) {
	w.b, w.open, w.empty = w.b[:0], w.open[:0], w.empty[:0]
	w.max, w.cut, w.hidden = max, false, 0
}

func (w *jsonOut) mark() mark { return mark{len(w.b), len(w.open), w.cut, w.hidden} }

// rollback forgets what was written after m (containers opened since are
// dropped; m must be at the same or a lower depth than now).
func (w *jsonOut) rollback(m mark) {
	w.b, w.open, w.empty = w.b[:m.n], w.open[:m.depth], w.empty[:m.depth]
	w.cut, w.hidden = m.cut, m.hidden
}

// member starts a value inside the current container: the key in an
// object, or nothing in an array. It reports false when the budget is
// spent (the value is then not written).
func (w *jsonOut) member(key string) bool {
	if w.cut || w.hidden > 0 {
		return false
	}
	if len(w.b) >= w.max && len(w.open) > 0 {
		w.cut = true
		return false
	}
	if d := len(w.open); d > 0 {
		if !w.empty[d-1] {
			w.b = append(w.b, ',')
		}
		w.empty[d-1] = false
	}
	if key != "" {
		w.b = append(w.b, '"')
		w.b = append(w.b, key...)
		w.b = append(w.b, '"', ':')
	}
	return true
}

// begin opens an object or an array as the value of key.
func (w *jsonOut) begin(key string, object bool) {
	if !w.member(key) {
		w.hidden++
		return
	}
	c, o := byte('}'), byte('{')
	if !object {
		c, o = ']', '['
	}
	w.b = append(w.b, o)
	w.open = append(w.open, c)
	w.empty = append(w.empty, true)
}

// end closes the innermost container begun.
func (w *jsonOut) end() {
	if w.hidden > 0 {
		w.hidden--
		return
	}
	d := len(w.open)
	if d == 0 {
		return
	}
	if d == 1 && w.cut && w.open[0] == '}' {
		if !w.empty[0] {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, `"truncated":true`...)
	}
	w.b = append(w.b, w.open[d-1])
	w.open, w.empty = w.open[:d-1], w.empty[:d-1]
}

func (w *jsonOut) int(key string, v int64) {
	if w.member(key) {
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *jsonOut) bool(key string, v bool) {
	if w.member(key) {
		w.b = strconv.AppendBool(w.b, v)
	}
}

func (w *jsonOut) null(key string) {
	if w.member(key) {
		w.b = append(w.b, "null"...)
	}
}

// raw writes pre-rendered JSON as the value of key.
func (w *jsonOut) raw(key string, v []byte) {
	if w.member(key) {
		w.b = append(w.b, v...)
	}
}

// str writes a string value; cut says bytes of it were not kept, which
// is shown by an ellipsis. Invalid UTF-8 becomes U+FFFD.
func (w *jsonOut) str(key string, s []byte, cut bool) {
	if !w.member(key) {
		return
	}
	w.b = appendString(w.b, s, cut)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b, s []byte, cut bool) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			if cut && !utf8.FullRune(s[i:]) {
				break // a rune cut by the bound
			}
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	if cut {
		b = append(b, "…"...)
	}
	return append(b, '"')
}
