package pgsql

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// reader decodes the fields of a payload. A read past the end sets bad
// and returns zero values, so a decoder checks once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) byte1() byte { return r.fixed(1)[0] }

func (r *reader) int16() int { return int(int16(binary.BigEndian.Uint16(r.fixed(2)))) }

func (r *reader) int32() int { return int(int32(binary.BigEndian.Uint32(r.fixed(4)))) }

// fixed reads k bytes of a fixed-size field; when fewer remain it reads
// none and returns k zero bytes (bad).
func (r *reader) fixed(k int) []byte {
	if len(r.b) < k {
		r.bad, r.b = true, nil
		return zeros[:k]
	}
	b := r.b[:k]
	r.b = r.b[k:]
	return b
}

var zeros [4]byte

// cstring reads a NUL-terminated string (without its NUL).
func (r *reader) cstring() []byte { return r.split(wire.CString(r.b)) }

// bytes reads n bytes, or what is left (bad) when fewer remain.
func (r *reader) bytes(n int) []byte { return r.split(wire.Take(r.b, n)) }

// split takes a field split off r's bytes (ok false when cut short);
// rest is left to read.
func (r *reader) split(field, rest []byte, ok bool) []byte {
	r.b, r.bad = rest, r.bad || !ok
	return field
}

// Type OIDs whose binary values are rendered as text; others are hex.
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidUUID        = 2950
	oidJSONB       = 3802
	oidNumeric     = 1700
)

// pgEpoch is 2000-01-01, the origin of binary dates and timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// appendValue appends the text of a value in format (0 text, 1 binary)
// of type oid (0 when unknown). NULL is "[NULL]", as Pixie shows it.
func appendValue(b []byte, v []byte, null bool, format int, oid int) []byte {
	if null {
		return append(b, "[NULL]"...)
	}
	if format == 0 {
		return append(b, v...)
	}
	switch {
	case oid == oidBool && len(v) == 1:
		return strconv.AppendBool(b, v[0] != 0)
	case oid == oidInt2 && len(v) == 2:
		return strconv.AppendInt(b, int64(int16(binary.BigEndian.Uint16(v))), 10)
	case (oid == oidInt4) && len(v) == 4:
		return strconv.AppendInt(b, int64(int32(binary.BigEndian.Uint32(v))), 10)
	case oid == oidOID && len(v) == 4:
		return strconv.AppendUint(b, uint64(binary.BigEndian.Uint32(v)), 10)
	case oid == oidInt8 && len(v) == 8:
		return strconv.AppendInt(b, int64(binary.BigEndian.Uint64(v)), 10)
	case oid == oidFloat4 && len(v) == 4:
		return strconv.AppendFloat(b, float64(math.Float32frombits(binary.BigEndian.Uint32(v))), 'g', -1, 32)
	case oid == oidFloat8 && len(v) == 8:
		return strconv.AppendFloat(b, math.Float64frombits(binary.BigEndian.Uint64(v)), 'g', -1, 64)
	case oid == oidText || oid == oidVarchar || oid == oidBPChar || oid == oidName || oid == oidChar || oid == oidJSON:
		return append(b, v...)
	case oid == oidJSONB && len(v) >= 1 && v[0] == 1:
		return append(b, v[1:]...)
	case oid == oidUUID && len(v) == 16:
		var s [36]byte
		hex.Encode(s[0:8], v[0:4])
		s[8] = '-'
		hex.Encode(s[9:13], v[4:6])
		s[13] = '-'
		hex.Encode(s[14:18], v[6:8])
		s[18] = '-'
		hex.Encode(s[19:23], v[8:10])
		s[23] = '-'
		hex.Encode(s[24:], v[10:])
		return append(b, s[:]...)
	case oid == oidNumeric && len(v) >= 8:
		if n, ok := appendNumeric(b, v); ok {
			return n
		}
	case oid == oidDate && len(v) == 4:
		d := int32(binary.BigEndian.Uint32(v))
		return pgEpoch.AddDate(0, 0, int(d)).AppendFormat(b, "2006-01-02")
	case (oid == oidTimestamp || oid == oidTimestampTZ) && len(v) == 8:
		us := int64(binary.BigEndian.Uint64(v))
		t := pgEpoch.Add(time.Duration(us) * time.Microsecond)
		if oid == oidTimestampTZ {
			return t.AppendFormat(b, "2006-01-02 15:04:05.999999Z07")
		}
		return t.AppendFormat(b, "2006-01-02 15:04:05.999999")
	}
	// Unknown binary: hex, the way the server shows bytea.
	b = append(b, `\x`...)
	return hex.AppendEncode(b, v)
}

// appendNumeric appends the text of a binary NUMERIC: int16 count of
// base-10000 digits, int16 weight of the first (its power of 10000),
// uint16 sign, int16 display scale (digits after the point), then the
// digits. ok is false when v is not one.
func appendNumeric(b, v []byte) ([]byte, bool) {
	n := int(int16(binary.BigEndian.Uint16(v)))
	weight := int(int16(binary.BigEndian.Uint16(v[2:])))
	sign := binary.BigEndian.Uint16(v[4:])
	scale := int(int16(binary.BigEndian.Uint16(v[6:])))
	if n < 0 || len(v) != 8+2*n || scale < 0 {
		return b, false
	}
	switch sign {
	case 0xC000:
		return append(b, "NaN"...), true
	case 0xD000:
		return append(b, "Infinity"...), true
	case 0xF000:
		return append(b, "-Infinity"...), true
	case 0x4000:
		b = append(b, '-')
	case 0:
	default:
		return b, false
	}
	digit := func(i int) int { // the i-th base-10000 digit, 0 past the end
		if i < 0 || i >= n {
			return 0
		}
		return int(binary.BigEndian.Uint16(v[8+2*i:]))
	}
	if weight < 0 {
		b = append(b, '0')
	}
	for i := 0; i <= weight; i++ {
		if i == 0 {
			b = strconv.AppendInt(b, int64(digit(i)), 10)
		} else {
			d := digits4(digit(i))
			b = append(b, d[:]...)
		}
	}
	if scale > 0 {
		b = append(b, '.')
		for i, k := weight+1, 0; k < scale; i++ {
			d := digits4(digit(i))
			take := min(4, scale-k)
			b = append(b, d[:take]...)
			k += take
		}
	}
	return b, true
}

// digits4 is a base-10000 digit as four decimal digits.
func digits4(d int) [4]byte {
	return [4]byte{byte('0' + d/1000%10), byte('0' + d/100%10), byte('0' + d/10%10), byte('0' + d%10)}
}

// errFields names the ErrorResponse fields kept in resp, in the order
// shown. The server's source location (F, L, R) and the duplicate
// non-localised severity (V) are left out.
var errFields = [...]struct {
	code byte
	name string
}{
	{'S', "Severity"}, {'C', "Code"}, {'M', "Message"}, {'D', "Detail"}, {'H', "Hint"},
	{'P', "Position"}, {'p', "InternalPosition"}, {'q', "InternalQuery"}, {'W', "Where"},
	{'s', "Schema"}, {'t', "Table"}, {'c', "Column"}, {'d', "DataType"}, {'n', "Constraint"},
}

// appendError appends the text of an ErrorResponse payload:
// "ERROR RESPONSE [Severity=ERROR Code=42P01 Message=…]".
func appendError(b []byte, payload []byte) []byte {
	var fields [len(errFields)][]byte
	r := reader{b: payload}
	for len(r.b) > 0 {
		code := r.byte1()
		if code == 0 {
			break
		}
		v := r.cstring()
		for i := range errFields {
			if errFields[i].code == code {
				fields[i] = v
			}
		}
	}
	b = append(b, "ERROR RESPONSE ["...)
	first := true
	for i, v := range fields {
		if v == nil {
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		b = append(b, errFields[i].name...)
		b = append(b, '=')
		b = append(b, v...)
	}
	return append(b, ']')
}

// column is one field of a RowDescription.
type column struct {
	name   string
	oid    int
	format int
}

// parseRowDesc decodes a RowDescription payload into cols (reused).
func parseRowDesc(cols []column, payload []byte) []column {
	cols = cols[:0]
	r := reader{b: payload}
	n := r.int16()
	for i := 0; i < n && !r.bad; i++ {
		name := r.cstring()
		r.int32() // table OID
		r.int16() // column number
		oid := r.int32()
		r.int16() // type size
		r.int32() // type modifier
		format := r.int16()
		if r.bad {
			break
		}
		cols = append(cols, column{name: string(name), oid: oid, format: format})
	}
	return cols
}

// appendRow appends a DataRow's values, comma-separated, rendered per
// cols (by position; values beyond cols are shown as text) with formats
// overriding the columns' own when set (Bind's result formats).
func appendRow(b []byte, payload []byte, cols []column, formats []int) []byte {
	r := reader{b: payload}
	n := r.int16()
	for i := 0; i < n; i++ {
		l := r.int32()
		var v []byte
		if l >= 0 {
			v = r.bytes(l)
		}
		if r.bad && l != -1 {
			// Cut short (the message was longer than what is kept).
			if i > 0 {
				b = append(b, ',')
			}
			return append(b, v...)
		}
		if i > 0 {
			b = append(b, ',')
		}
		format, oid := 0, 0
		if i < len(cols) {
			format, oid = cols[i].format, cols[i].oid
		}
		if f, ok := formatAt(formats, i); ok {
			format = f
		}
		b = appendValue(b, v, l == -1, format, oid)
	}
	return b
}

// formatAt returns the format of value i under a list of format codes as
// Bind sends them: none (all text), one (for all), or one per value.
func formatAt(formats []int, i int) (int, bool) {
	switch {
	case len(formats) == 0:
		return 0, false
	case len(formats) == 1:
		return formats[0], true
	case i < len(formats):
		return formats[i], true
	}
	return 0, false
}

// typeName is the name of a type OID in Describe's output.
func typeName(oid int) string {
	switch oid {
	case oidBool:
		return "bool"
	case oidBytea:
		return "bytea"
	case oidInt8:
		return "int8"
	case oidInt2:
		return "int2"
	case oidInt4:
		return "int4"
	case oidText:
		return "text"
	case oidJSON:
		return "json"
	case oidFloat4:
		return "float4"
	case oidFloat8:
		return "float8"
	case oidBPChar:
		return "bpchar"
	case oidVarchar:
		return "varchar"
	case oidDate:
		return "date"
	case oidTimestamp:
		return "timestamp"
	case oidTimestampTZ:
		return "timestamptz"
	case oidUUID:
		return "uuid"
	case oidNumeric:
		return "numeric"
	case oidJSONB:
		return "jsonb"
	}
	return "oid" + strconv.Itoa(oid)
}
