package mongodb

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// BSON element types (bsonspec.org).
const (
	tDouble     = 0x01
	tString     = 0x02
	tDocument   = 0x03
	tArray      = 0x04
	tBinary     = 0x05
	tUndefined  = 0x06
	tObjectID   = 0x07
	tBool       = 0x08
	tDateTime   = 0x09
	tNull       = 0x0a
	tRegex      = 0x0b
	tDBPointer  = 0x0c
	tJavaScript = 0x0d
	tSymbol     = 0x0e
	tCodeScope  = 0x0f
	tInt32      = 0x10
	tTimestamp  = 0x11
	tInt64      = 0x12
	tDecimal    = 0x13
	tMinKey     = 0xff
	tMaxKey     = 0x7f
)

// maxDepth bounds the nesting the decoder follows (BSON documents of
// MongoDB nest at most 100 deep); deeper is taken as malformed.
const maxDepth = 100

// truncMark ends the outermost object of a text cut by its budget.
const truncMark = `"$truncated":true`

var (
	// errShort: the bytes kept end inside a document (a prefix of a
	// longer message was kept).
	errShort = errors.New("bson: cut short")
	// errBad: the bytes do not follow BSON's rules.
	errBad = errors.New("bson: malformed")
)

// jsonOut writes BSON values as relaxed Extended JSON within a budget of
// max bytes: past it, it stops at the next member and only closes what
// it opened, so that the text stays valid JSON; the outermost object then
// ends with "$truncated":true.
type jsonOut struct {
	b     []byte
	max   int
	open  []byte // the closing bracket of each container written
	empty []bool // whether that container has no member yet
	cut   bool
}

// reset empties w for a text of at most max bytes (the marked empty
// object at least).
func (w *jsonOut) reset(limit int) {
	w.b, w.open, w.empty = w.b[:0], w.open[:0], w.empty[:0]
	w.max, w.cut = max(limit, len(truncMark)+2), false
}

// room is how many bytes a value may take and still leave room for the
// closing brackets and the mark.
func (w *jsonOut) room() int { return w.max - len(w.b) - len(w.open) - len(truncMark) - 1 }

// member starts a value inside the current container: a comma, and the
// key in an object. need is the bytes the value takes at least; when the
// budget has no room for them the text is cut and member reports false.
func (w *jsonOut) member(key []byte, inArray bool, need int) bool {
	if w.cut {
		return false
	}
	n, d := len(w.b), len(w.open)
	if d > 0 && !w.empty[d-1] {
		w.b = append(w.b, ',')
	}
	if !inArray {
		w.b = wire.AppendJSONString(w.b, key)
		w.b = append(w.b, ':')
	}
	if need > w.room() {
		w.b, w.cut = w.b[:n], true
		return false
	}
	if d > 0 {
		w.empty[d-1] = false
	}
	return true
}

// settle undoes the member written since n (the text's length before
// it) when, with escapes, it took more than its room: the text is then
// cut before it.
func (w *jsonOut) settle(n int, wasEmpty bool) {
	if w.room() >= 0 {
		return
	}
	w.b, w.cut = w.b[:n], true
	if d := len(w.open); d > 0 {
		w.empty[d-1] = wasEmpty
	}
}

// at returns the text's length and whether the current container is
// still empty, for settle.
func (w *jsonOut) at() (int, bool) {
	d := len(w.open)
	return len(w.b), d == 0 || w.empty[d-1]
}

// begin opens an object or an array, as a member begun with member.
func (w *jsonOut) begin(object bool) {
	o, c := byte('{'), byte('}')
	if !object {
		o, c = '[', ']'
	}
	w.b = append(w.b, o)
	w.open = append(w.open, c)
	w.empty = append(w.empty, true)
}

// end closes the innermost container.
func (w *jsonOut) end() {
	d := len(w.open)
	if d == 0 {
		return
	}
	if d == 1 && w.cut && w.open[0] == '}' {
		if !w.empty[0] {
			w.b = append(w.b, ',')
		}
		w.b = append(w.b, truncMark...)
	}
	w.b = append(w.b, w.open[d-1])
	w.open, w.empty = w.open[:d-1], w.empty[:d-1]
}

// closeAll closes every container still open, as a cut text does.
func (w *jsonOut) closeAll() {
	if len(w.open) > 0 {
		w.cut = true
	}
	for len(w.open) > 0 {
		w.end()
	}
}

// str appends s as a JSON string, as much of it as the budget leaves
// (cutting the text between whole characters when it does not all fit).
func (w *jsonOut) str(s []byte) {
	end := len(w.b) + w.room() - 1 // where the text must end, before its closing quote
	w.b = append(w.b, '"')
	for i := 0; i < len(s); {
		n := len(w.b)
		if c := s[i]; c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' && c != 0x7f {
			w.b = append(w.b, c)
			i++
		} else {
			_, size := utf8.DecodeRune(s[i:])
			// AppendJSONString quotes the piece: keep what is between.
			w.b = wire.AppendJSONString(w.b, s[i:i+size])
			w.b = append(w.b[:n], w.b[n+1:len(w.b)-1]...)
			i += size
		}
		if len(w.b) > end {
			w.b, w.cut = w.b[:n], true
			break
		}
	}
	w.b = append(w.b, '"')
}

// bsonDoc is the decoder of one message's documents into w.
type bsonDoc struct {
	w *jsonOut
	// first is the first key of the top document, ok the type and the
	// bytes of its "ok" element (nil when it has none, or it was not
	// reached).
	first []byte
	ok    []byte
}

// elements decodes the elements of the document b (its length prefix
// included) into the open object or array of w, and returns the bytes
// after it. depth 0 is a message's top document.
func (d *bsonDoc) elements(b []byte, depth int, array bool) ([]byte, error) {
	if depth > maxDepth {
		return nil, errBad
	}
	if len(b) < 4 {
		return nil, errShort
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 5 {
		return nil, errBad
	}
	short := n > len(b)
	doc := b[4:min(n, len(b))]
	for {
		if len(doc) == 0 {
			if short {
				return nil, errShort
			}
			return nil, errBad // no terminating NUL
		}
		t := doc[0]
		if t == 0 {
			switch {
			case len(doc) != 1:
				return nil, errBad
			case short:
				return nil, errShort // the bytes kept end here, the document does not
			}
			return b[n:], nil
		}
		key, rest, ok := wire.CString(doc[1:])
		if !ok {
			if short {
				return nil, errShort
			}
			return nil, errBad
		}
		if depth == 0 && d.first == nil {
			d.first = key
		}
		v, rest, err := d.value(t, key, rest, depth, array)
		if err == errBad || (err == errShort && !short) {
			return nil, errBad
		}
		if err != nil {
			return nil, err
		}
		if depth == 0 && string(key) == "ok" {
			d.ok = append(append(d.ok[:0], t), v...) // its type, then its bytes
		}
		doc = rest
	}
}

// fixed are the sizes of the BSON types of a fixed size.
var fixed = [256]int8{
	tDouble: 8, tUndefined: 0, tObjectID: 12, tBool: 1, tDateTime: 8, tNull: 0,
	tInt32: 4, tTimestamp: 8, tInt64: 8, tDecimal: 16, tMinKey: 0, tMaxKey: 0,
}

// value decodes one element's value of type t after its key, writes it
// as key's member (when the budget allows), and returns the value's
// bytes (for the fixed-size types) and the rest of the document.
func (d *bsonDoc) value(t byte, key, b []byte, depth int, inArray bool) (v, rest []byte, err error) {
	w := d.w
	switch t {
	case tDouble, tUndefined, tObjectID, tBool, tDateTime, tNull, tInt32, tTimestamp, tInt64, tDecimal, tMinKey, tMaxKey:
		n := int(fixed[t])
		v, rest, ok := wire.Take(b, n)
		if !ok {
			return nil, nil, errShort
		}
		var s [64]byte
		text, err := scalar(s[:0], t, v)
		if err != nil {
			return nil, nil, err
		}
		if w.member(key, inArray, len(text)) {
			w.b = append(w.b, text...)
		}
		return v, rest, nil
	case tString, tJavaScript, tSymbol:
		s, rest, err := bsonString(b)
		if err == errShort && t == tString && s != nil {
			// The bytes kept end inside the string: show what came.
			if w.member(key, inArray, 2) {
				w.str(s)
			}
			w.cut = true
		}
		if err != nil {
			return nil, nil, err
		}
		switch t {
		case tString:
			if w.member(key, inArray, 2) {
				w.str(s)
			}
		case tJavaScript:
			d.wrapped(key, inArray, "$code", s)
		case tSymbol:
			d.wrapped(key, inArray, "$symbol", s)
		}
		return nil, rest, nil
	case tDocument, tArray:
		open := w.member(key, inArray, 2)
		if open {
			w.begin(t == tDocument)
		}
		depthOpen := len(w.open)
		rest, err := d.elements(b, depth+1, t == tArray)
		if open && !w.cut && len(w.open) == depthOpen {
			w.end()
		}
		return nil, rest, err
	case tBinary:
		if len(b) < 5 {
			return nil, nil, errShort
		}
		n := int(int32(binary.LittleEndian.Uint32(b)))
		if n < 0 {
			return nil, nil, errBad
		}
		sub := b[4]
		data, rest, ok := wire.Take(b[5:], n)
		if !ok {
			return nil, nil, errShort
		}
		if sub == 0x02 { // the old binary subtype holds its own length
			if len(data) < 4 || int(int32(binary.LittleEndian.Uint32(data))) != len(data)-4 {
				return nil, nil, errBad
			}
			data = data[4:]
		}
		need := len(`{"$binary":{"base64":"","subType":"00"}}`) + base64.StdEncoding.EncodedLen(len(data))
		if w.member(key, inArray, need) {
			w.b = append(w.b, `{"$binary":{"base64":"`...)
			w.b = base64.StdEncoding.AppendEncode(w.b, data)
			w.b = append(w.b, `","subType":"`...)
			w.b = hex.AppendEncode(w.b, []byte{sub})
			w.b = append(w.b, `"}}`...)
		}
		return nil, rest, nil
	case tRegex:
		pattern, rest, ok := wire.CString(b)
		if !ok {
			return nil, nil, errShort
		}
		options, rest, ok := wire.CString(rest)
		if !ok {
			return nil, nil, errShort
		}
		n, empty := w.at()
		if w.member(key, inArray, len(`{"$regularExpression":{"pattern":"","options":""}}`)+len(pattern)+len(options)) {
			w.b = append(w.b, `{"$regularExpression":{"pattern":`...)
			w.b = wire.AppendJSONString(w.b, pattern)
			w.b = append(w.b, `,"options":`...)
			w.b = wire.AppendJSONString(w.b, options)
			w.b = append(w.b, `}}`...)
			w.settle(n, empty)
		}
		return nil, rest, nil
	case tDBPointer:
		ns, rest, err := bsonString(b)
		if err != nil {
			return nil, nil, err
		}
		id, rest, ok := wire.Take(rest, 12)
		if !ok {
			return nil, nil, errShort
		}
		n, empty := w.at()
		if w.member(key, inArray, len(`{"$dbPointer":{"$ref":"","$id":{"$oid":"000000000000000000000000"}}}`)+len(ns)) {
			w.b = append(w.b, `{"$dbPointer":{"$ref":`...)
			w.b = wire.AppendJSONString(w.b, ns)
			w.b = append(w.b, `,"$id":{"$oid":"`...)
			w.b = hex.AppendEncode(w.b, id)
			w.b = append(w.b, `"}}}`...)
			w.settle(n, empty)
		}
		return nil, rest, nil
	case tCodeScope:
		if len(b) < 4 {
			return nil, nil, errShort
		}
		n := int(int32(binary.LittleEndian.Uint32(b)))
		if n < 4+5+5 {
			return nil, nil, errBad
		}
		whole, rest, ok := wire.Take(b, n)
		if !ok {
			return nil, nil, errShort
		}
		code, scope, err := bsonString(whole[4:])
		if err != nil {
			return nil, nil, errBad // inside a whole value: not a cut
		}
		// {"$code":…,"$scope":{…}}: the wrapper is a container, so that a
		// cut inside the scope closes it too.
		n, empty := w.at()
		open := w.member(key, inArray, len(`{"$code":"","$scope":{}}`)+len(code))
		if open {
			w.begin(true)
			w.b = append(w.b, `"$code":`...)
			w.b = wire.AppendJSONString(w.b, code)
			w.empty[len(w.empty)-1] = false
			if w.room() < 0 { // the code took more than its room
				w.open, w.empty = w.open[:len(w.open)-1], w.empty[:len(w.empty)-1]
				w.b, w.cut, open = w.b[:n], true, false
				if d := len(w.open); d > 0 {
					w.empty[d-1] = empty
				}
			} else if open = w.member([]byte("$scope"), false, 2); open {
				w.begin(true)
			}
		}
		depthOpen := len(w.open)
		after, err := d.elements(scope, depth+1, false)
		if err != nil || len(after) != 0 {
			return nil, nil, errBad
		}
		if open && !w.cut && len(w.open) == depthOpen {
			w.end() // the scope
			w.end() // the wrapper
		}
		return nil, rest, nil
	}
	return nil, nil, errBad
}

// wrapped writes {"name":"s"} as key's member.
func (d *bsonDoc) wrapped(key []byte, inArray bool, name string, s []byte) {
	w := d.w
	n, empty := w.at()
	if w.member(key, inArray, len(name)+8+len(s)) {
		w.b = append(w.b, `{"`...)
		w.b = append(w.b, name...)
		w.b = append(w.b, `":`...)
		w.b = wire.AppendJSONString(w.b, s)
		w.b = append(w.b, '}')
		w.settle(n, empty)
	}
}

// bsonString splits a BSON string (int32 length with its NUL, bytes,
// NUL) off b.
func bsonString(b []byte) (s, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errShort
	}
	n := int(int32(binary.LittleEndian.Uint32(b)))
	if n < 1 {
		return nil, nil, errBad
	}
	s, rest, ok := wire.Take(b[4:], n)
	if !ok {
		return s, nil, errShort // s is the part kept
	}
	if s[n-1] != 0 {
		return nil, nil, errBad
	}
	return s[:n-1], rest, nil
}

// scalar appends the relaxed Extended JSON of a fixed-size value v of
// type t to b.
func scalar(b []byte, t byte, v []byte) ([]byte, error) {
	switch t {
	case tDouble:
		return appendDouble(b, math.Float64frombits(binary.LittleEndian.Uint64(v))), nil
	case tUndefined:
		return append(b, `{"$undefined":true}`...), nil
	case tObjectID:
		b = append(b, `{"$oid":"`...)
		return append(hex.AppendEncode(b, v), `"}`...), nil
	case tBool:
		switch v[0] {
		case 0:
			return append(b, "false"...), nil
		case 1:
			return append(b, "true"...), nil
		}
		return nil, errBad
	case tDateTime:
		return appendDate(b, int64(binary.LittleEndian.Uint64(v))), nil
	case tNull:
		return append(b, "null"...), nil
	case tInt32:
		return strconv.AppendInt(b, int64(int32(binary.LittleEndian.Uint32(v))), 10), nil
	case tTimestamp:
		b = append(b, `{"$timestamp":{"t":`...)
		b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint32(v[4:])), 10)
		b = append(b, `,"i":`...)
		b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint32(v)), 10)
		return append(b, `}}`...), nil
	case tInt64:
		return strconv.AppendInt(b, int64(binary.LittleEndian.Uint64(v)), 10), nil
	case tDecimal:
		b = append(b, `{"$numberDecimal":"`...)
		b = appendDecimal128(b, binary.LittleEndian.Uint64(v[8:]), binary.LittleEndian.Uint64(v))
		return append(b, `"}`...), nil
	case tMinKey:
		return append(b, `{"$minKey":1}`...), nil
	case tMaxKey:
		return append(b, `{"$maxKey":1}`...), nil
	}
	return nil, errBad
}

// appendDouble writes a finite double as a JSON number with a decimal
// point or an exponent (1.0, 1e+21), the others as $numberDouble.
func appendDouble(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `{"$numberDouble":"NaN"}`...)
	case math.IsInf(f, 1):
		return append(b, `{"$numberDouble":"Infinity"}`...)
	case math.IsInf(f, -1):
		return append(b, `{"$numberDouble":"-Infinity"}`...)
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	for _, c := range b[n:] {
		if c == '.' || c == 'e' {
			return b
		}
	}
	return append(b, ".0"...)
}

// Dates from year 1970 to 9999 are ISO-8601 text in relaxed Extended
// JSON, the others a count of milliseconds.
const maxISODate = 253402300799999 // 9999-12-31T23:59:59.999Z

func appendDate(b []byte, ms int64) []byte {
	if ms < 0 || ms > maxISODate {
		b = append(b, `{"$date":{"$numberLong":"`...)
		b = strconv.AppendInt(b, ms, 10)
		return append(b, `"}}`...)
	}
	b = append(b, `{"$date":"`...)
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.999Z07:00")
	return append(b, `"}`...)
}

// appendDecimal128 writes an IEEE 754-2008 decimal128 (binary integer
// decimal encoding: sign, 14-bit exponent biased by 6176, 113-bit
// coefficient) as the string of the BSON decimal128 specification.
func appendDecimal128(b []byte, hi, lo uint64) []byte {
	if hi>>63 != 0 {
		b = append(b, '-')
	}
	var exp int
	var chi uint64
	switch {
	case hi>>58&0x1f == 0x1f:
		if hi>>63 != 0 {
			b = b[:len(b)-1] // NaN has no sign
		}
		return append(b, "NaN"...)
	case hi>>58&0x1f == 0x1e:
		return append(b, "Infinity"...)
	case hi>>61&3 == 3:
		// The coefficient's implicit high bits make it larger than the
		// largest allowed (10^34-1): it is taken as 0.
		exp = int(hi>>47&0x3fff) - 6176
		lo = 0
	default:
		exp = int(hi>>49&0x3fff) - 6176
		chi = hi & (1<<49 - 1)
	}
	// 10^34 is 0x1ed09bead87c0_378d8e6400000000.
	if chi > 0x1ed09bead87c0 || (chi == 0x1ed09bead87c0 && lo >= 0x378d8e6400000000) {
		chi, lo = 0, 0
	}
	var digits [40]byte
	i := len(digits)
	for chi != 0 || lo != 0 {
		var r uint64
		chi, r = bits.Div64(0, chi, 10)
		lo, r = bits.Div64(r, lo, 10)
		i--
		digits[i] = byte('0' + r)
	}
	if i == len(digits) {
		i--
		digits[i] = '0'
	}
	d := digits[i:]
	adjusted := exp + len(d) - 1
	switch {
	case exp > 0 || adjusted < -6:
		b = append(b, d[0])
		if len(d) > 1 {
			b = append(b, '.')
			b = append(b, d[1:]...)
		}
		b = append(b, 'E')
		if adjusted >= 0 {
			b = append(b, '+')
		}
		return strconv.AppendInt(b, int64(adjusted), 10)
	case exp == 0:
		return append(b, d...)
	}
	point := len(d) + exp // digits before the decimal point
	if point <= 0 {
		b = append(b, "0."...)
		for range -point {
			b = append(b, '0')
		}
		return append(b, d...)
	}
	b = append(b, d[:point]...)
	b = append(b, '.')
	return append(b, d[point:]...)
}

// AppendJSON appends the BSON document doc as relaxed Extended JSON
// (https://www.mongodb.com/docs/manual/reference/mongodb-extended-json/)
// of at most max bytes, and reports whether doc was whole and valid: a
// document cut short, or one past max, ends its outermost object with
// "$truncated":true; on malformed BSON the text is what came before.
// A max below 19 is taken as 19, the length of that object empty. It is
// the decoder of the rows' bodies.
func AppendJSON(dst, doc []byte, max int) ([]byte, bool) {
	var w jsonOut
	w.reset(max)
	w.b, w.max = dst, w.max+len(dst)
	d := bsonDoc{w: &w}
	_, err := d.document(doc)
	return w.b, err == nil && !w.cut
}

// document writes the document b as a JSON object, and returns the
// bytes after it.
func (d *bsonDoc) document(b []byte) ([]byte, error) {
	d.w.begin(true)
	rest, err := d.elements(b, 0, false)
	d.finish(err)
	return rest, err
}

// finish closes what the decoding of a message left open: the outermost
// object when it went well, everything (as cut) when not.
func (d *bsonDoc) finish(err error) {
	if err == nil && !d.w.cut {
		d.w.end()
		return
	}
	d.w.closeAll()
}
