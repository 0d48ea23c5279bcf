package mysql

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// reader decodes the fields of a payload; a read past the end sets bad.
type reader struct {
	b   []byte
	bad bool
}

// n reads k bytes, or what is left (bad) when fewer remain.
func (r *reader) n(k int) []byte { return r.split(wire.Take(r.b, k)) }

// split takes a field split off r's bytes (ok false when cut short);
// rest is left to read.
func (r *reader) split(field, rest []byte, ok bool) []byte {
	r.b, r.bad = rest, r.bad || !ok
	return field
}

func (r *reader) uint(k int) uint64 {
	b := r.n(k)
	if r.bad {
		return 0
	}
	var v uint64
	for i := k - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// lenenc reads a length-encoded integer; null is set for 0xFB (NULL in a
// text row).
func (r *reader) lenenc() (v uint64, null bool) {
	if len(r.b) == 0 {
		r.bad = true
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	switch {
	case c < 0xfb:
		return uint64(c), false
	case c == 0xfb:
		return 0, true
	case c == 0xfc:
		return r.uint(2), false
	case c == 0xfd:
		return r.uint(3), false
	case c == 0xfe:
		return r.uint(8), false
	}
	r.bad = true // 0xFF is not a length
	return 0, false
}

// lenencString reads a length-encoded string.
func (r *reader) lenencString() []byte {
	l, _ := r.lenenc()
	if r.bad || l > uint64(len(r.b)) {
		r.bad = true
		s := r.b
		r.b = nil
		return s
	}
	return r.n(int(l))
}

// cstring reads a NUL-terminated string.
func (r *reader) cstring() []byte { return r.split(wire.CString(r.b)) }

// Column types of the binary protocol.
const (
	typeDecimal    = 0x00
	typeTiny       = 0x01
	typeShort      = 0x02
	typeLong       = 0x03
	typeFloat      = 0x04
	typeDouble     = 0x05
	typeNull       = 0x06
	typeTimestamp  = 0x07
	typeLongLong   = 0x08
	typeInt24      = 0x09
	typeDate       = 0x0a
	typeTime       = 0x0b
	typeDateTime   = 0x0c
	typeYear       = 0x0d
	typeVarchar    = 0x0f
	typeBit        = 0x10
	typeJSON       = 0xf5
	typeNewDecimal = 0xf6
	typeEnum       = 0xf7
	typeSet        = 0xf8
	typeTinyBlob   = 0xf9
	typeMediumBlob = 0xfa
	typeLongBlob   = 0xfb
	typeBlob       = 0xfc
	typeVarString  = 0xfd
	typeString     = 0xfe
	typeGeometry   = 0xff
)

// appendBinaryValue appends the text of one binary-protocol value of
// type typ (unsigned when the flag is set) read from r. It reports false
// when the value cannot be read (an unknown type, or cut short).
func appendBinaryValue(b []byte, r *reader, typ byte, unsigned bool) ([]byte, bool) {
	intOf := func(k int) int64 {
		v := r.uint(k)
		if unsigned {
			return int64(v)
		}
		shift := 64 - 8*k
		return int64(v<<shift) >> shift
	}
	switch typ {
	case typeTiny:
		v := intOf(1)
		if unsigned {
			return strconv.AppendUint(b, uint64(v), 10), !r.bad
		}
		return strconv.AppendInt(b, v, 10), !r.bad
	case typeShort, typeYear:
		v := intOf(2)
		if unsigned {
			return strconv.AppendUint(b, uint64(v), 10), !r.bad
		}
		return strconv.AppendInt(b, v, 10), !r.bad
	case typeLong, typeInt24:
		v := intOf(4)
		if unsigned {
			return strconv.AppendUint(b, uint64(v), 10), !r.bad
		}
		return strconv.AppendInt(b, v, 10), !r.bad
	case typeLongLong:
		v := r.uint(8)
		if unsigned {
			return strconv.AppendUint(b, v, 10), !r.bad
		}
		return strconv.AppendInt(b, int64(v), 10), !r.bad
	case typeFloat:
		v := math.Float32frombits(uint32(r.uint(4)))
		return strconv.AppendFloat(b, float64(v), 'g', -1, 32), !r.bad
	case typeDouble:
		v := math.Float64frombits(r.uint(8))
		return strconv.AppendFloat(b, v, 'g', -1, 64), !r.bad
	case typeNull:
		return append(b, "NULL"...), true
	case typeTimestamp, typeDate, typeDateTime:
		k := int(r.uint(1))
		d := r.n(k)
		if r.bad || (k != 0 && k != 4 && k != 7 && k != 11) {
			return b, false
		}
		if k == 0 {
			return append(b, "0000-00-00 00:00:00"...), true
		}
		b = fmt.Appendf(b, "%04d-%02d-%02d", binary.LittleEndian.Uint16(d), d[2], d[3])
		if k >= 7 {
			b = fmt.Appendf(b, " %02d:%02d:%02d", d[4], d[5], d[6])
		}
		if k == 11 {
			b = fmt.Appendf(b, ".%06d", binary.LittleEndian.Uint32(d[7:]))
		}
		return b, true
	case typeTime:
		k := int(r.uint(1))
		d := r.n(k)
		if r.bad || (k != 0 && k != 8 && k != 12) {
			return b, false
		}
		if k == 0 {
			return append(b, "00:00:00"...), true
		}
		if d[0] == 1 {
			b = append(b, '-')
		}
		hours := binary.LittleEndian.Uint32(d[1:])*24 + uint32(d[5])
		b = fmt.Appendf(b, "%02d:%02d:%02d", hours, d[6], d[7])
		if k == 12 {
			b = fmt.Appendf(b, ".%06d", binary.LittleEndian.Uint32(d[8:]))
		}
		return b, true
	case typeDecimal, typeNewDecimal, typeVarchar, typeBit, typeJSON, typeEnum, typeSet,
		typeTinyBlob, typeMediumBlob, typeLongBlob, typeBlob, typeVarString, typeString, typeGeometry:
		s := r.lenencString()
		return append(b, s...), !r.bad
	}
	return b, false
}
