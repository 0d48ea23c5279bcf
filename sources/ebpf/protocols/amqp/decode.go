package amqp

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// decoder reads AMQP's wire types from a frame payload; reading past the
// end sets short and returns zeros.
type decoder struct {
	b     []byte
	short bool
}

func (d *decoder) take(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.short, d.b = true, nil
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) shortStr() []byte { return d.take(int(d.u8())) }

func (d *decoder) longStr() []byte {
	n := d.u32()
	if d.short || n > uint32(len(d.b)) {
		d.short, d.b = true, nil
		return nil
	}
	return d.take(int(n))
}

// appendArgs appends the JSON object of a method's arguments, in their
// order, reserved ones left out; arguments the payload does not hold
// (cut by the bound or a gap) end it with "truncated":true. It also
// reports the value of the method's no-wait bit.
func appendArgs(b []byte, d *decoder, args []arg) (_ []byte, noWait bool) {
	b = append(b, '{')
	n := 0
	var bits byte
	nbits := 8 // bits left in the current octet; 8: none read
	for _, a := range args {
		var val []byte
		start := len(b)
		if a.typ != tBit {
			nbits = 8
		}
		if a.name != "" {
			if n > 0 {
				b = append(b, ',')
			}
			b = wire.AppendJSONString(b, []byte(a.name))
			b = append(b, ':')
		}
		switch a.typ {
		case tBit:
			if nbits == 8 {
				bits, nbits = d.u8(), 0
			}
			v := bits&(1<<nbits) != 0
			nbits++
			b = strconv.AppendBool(b, v)
			if a.name == "no_wait" {
				noWait = v
			}
		case tOctet:
			b = strconv.AppendUint(b, uint64(d.u8()), 10)
		case tShort:
			b = strconv.AppendUint(b, uint64(d.u16()), 10)
		case tLong:
			b = strconv.AppendUint(b, uint64(d.u32()), 10)
		case tLongLong, tTimestamp:
			b = strconv.AppendUint(b, d.u64(), 10)
		case tShortStr:
			val = d.shortStr()
		case tLongStr:
			val = d.longStr()
		case tTable:
			b = appendTable(b, d, 0)
		}
		if a.typ == tShortStr || a.typ == tLongStr {
			if a.secret {
				b = append(b, `"<hidden>"`...)
			} else {
				b = wire.AppendJSONString(b, val)
			}
		}
		if d.short {
			b = b[:start]
			if n > 0 {
				b = append(b, ',')
			}
			return append(b, `"truncated":true}`...), noWait
		}
		if a.name == "" {
			b = b[:start] // reserved: read, not shown
			continue
		}
		n++
	}
	return append(b, '}'), noWait
}

// maxDepth bounds the nesting of tables and arrays rendered.
const maxDepth = 16

// appendTable appends a field table (a 32-bit size, then name, type and
// value for each field) as a JSON object.
func appendTable(b []byte, d *decoder, depth int) []byte {
	t := decoder{b: d.longStr()}
	if d.short {
		return b
	}
	b = append(b, '{')
	for i := 0; len(t.b) > 0; i++ {
		name := t.shortStr()
		if t.short {
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, name)
		b = append(b, ':')
		b = appendValue(b, &t, t.u8(), depth)
		if t.short {
			break
		}
	}
	if t.short {
		d.short = true // a malformed table: what it holds is unknown
	}
	return append(b, '}')
}

// appendArray appends a field array (a 32-bit size, then type and value
// for each) as a JSON array.
func appendArray(b []byte, d *decoder, depth int) []byte {
	t := decoder{b: d.longStr()}
	if d.short {
		return b
	}
	b = append(b, '[')
	for i := 0; len(t.b) > 0 && !t.short; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValue(b, &t, t.u8(), depth)
	}
	if t.short {
		d.short = true
	}
	return append(b, ']')
}

// appendValue appends one field value of type typ, in the types RabbitMQ
// and its clients use (which differ from the specification's table for
// 's', 'l' and 'x'); the specification's 'U' and 'L' are read too.
func appendValue(b []byte, d *decoder, typ byte, depth int) []byte {
	if depth >= maxDepth && (typ == 'F' || typ == 'A') {
		d.short = true
		return append(b, "null"...)
	}
	switch typ {
	case 't':
		return strconv.AppendBool(b, d.u8() != 0)
	case 'b':
		return strconv.AppendInt(b, int64(int8(d.u8())), 10)
	case 'B':
		return strconv.AppendUint(b, uint64(d.u8()), 10)
	case 's', 'U':
		return strconv.AppendInt(b, int64(int16(d.u16())), 10)
	case 'u':
		return strconv.AppendUint(b, uint64(d.u16()), 10)
	case 'I':
		return strconv.AppendInt(b, int64(int32(d.u32())), 10)
	case 'i':
		return strconv.AppendUint(b, uint64(d.u32()), 10)
	case 'l', 'L':
		return strconv.AppendInt(b, int64(d.u64()), 10)
	case 'T':
		return strconv.AppendUint(b, d.u64(), 10)
	case 'f':
		return appendFloat(b, float64(math.Float32frombits(d.u32())), 32)
	case 'd':
		return appendFloat(b, math.Float64frombits(d.u64()), 64)
	case 'D':
		scale := d.u8()
		v := int64(int32(d.u32()))
		return appendDecimal(b, v, int(scale))
	case 'S', 'x':
		return wire.AppendJSONString(b, d.longStr())
	case 'A':
		return appendArray(b, d, depth+1)
	case 'F':
		return appendTable(b, d, depth+1)
	case 'V':
		return append(b, "null"...)
	}
	d.short = true // an unknown type: its size is unknown
	return append(b, "null"...)
}

func appendFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return wire.AppendJSONString(b, []byte(strconv.FormatFloat(f, 'g', -1, bits)))
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

// appendDecimal appends v × 10^-scale as a JSON number.
func appendDecimal(b []byte, v int64, scale int) []byte {
	if scale > 18 {
		return appendFloat(b, float64(v)*math.Pow10(-scale), 64)
	}
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	if scale == 0 {
		return append(b, s...)
	}
	for len(s) <= scale {
		s = "0" + s
	}
	b = append(b, s[:len(s)-scale]...)
	b = append(b, '.')
	return append(b, s[len(s)-scale:]...)
}

// Basic properties of a content header, in the order of their flag bits
// (bit 15 first).
var properties = [...]struct {
	name string
	typ  byte
}{
	{"content_type", tShortStr}, {"content_encoding", tShortStr}, {"headers", tTable},
	{"delivery_mode", tOctet}, {"priority", tOctet}, {"correlation_id", tShortStr},
	{"reply_to", tShortStr}, {"expiration", tShortStr}, {"message_id", tShortStr},
	{"timestamp", tTimestamp}, {"type", tShortStr}, {"user_id", tShortStr},
	{"app_id", tShortStr}, {"cluster_id", tShortStr},
}

// appendProperties appends the properties a content header's flags say
// are present, as a JSON object, from d just after the flags.
func appendProperties(b []byte, d *decoder, flags uint16) []byte {
	b = append(b, '{')
	n := 0
	for i, p := range properties {
		if flags&(1<<(15-i)) == 0 {
			continue
		}
		start := len(b)
		if n > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, []byte(p.name))
		b = append(b, ':')
		switch p.typ {
		case tShortStr:
			b = wire.AppendJSONString(b, d.shortStr())
		case tOctet:
			b = strconv.AppendUint(b, uint64(d.u8()), 10)
		case tTimestamp:
			b = strconv.AppendUint(b, d.u64(), 10)
		case tTable:
			b = appendTable(b, d, 0)
		}
		if d.short {
			b = b[:start]
			if n > 0 {
				b = append(b, ',')
			}
			b = append(b, `"truncated":true`...)
			break
		}
		n++
	}
	return append(b, '}')
}
