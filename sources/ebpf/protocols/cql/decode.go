package cql

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/wire"
)

// cursor reads the protocol's notations ([short], [string], [bytes], …)
// off the front of a body. A read past the end sets bad, after which
// every read returns zero values.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) take(n int) []byte {
	if c.bad || n < 0 || n > len(c.b) {
		c.bad = true
		return nil
	}
	p := c.b[:n]
	c.b = c.b[n:]
	return p
}

func (c *cursor) byte() byte {
	if p := c.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (c *cursor) short() uint16 {
	if p := c.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (c *cursor) int() int32 {
	if p := c.take(4); p != nil {
		return int32(binary.BigEndian.Uint32(p))
	}
	return 0
}

// str is a [string]; longStr a [long string]; shortBytes [short bytes].
func (c *cursor) str() []byte        { return c.take(int(c.short())) }
func (c *cursor) longStr() []byte    { return c.take(int(c.int())) }
func (c *cursor) shortBytes() []byte { return c.take(int(c.short())) }

// value is a [bytes] or [value]: n < 0 is null (-1) or not set (-2).
func (c *cursor) value() (b []byte, n int32) {
	n = c.int()
	if n < 0 {
		if n < -2 {
			c.bad = true
		}
		return nil, n
	}
	return c.take(int(n)), n
}

func (c *cursor) strList() [][]byte {
	n := int(c.short())
	if n > len(c.b)/2 {
		c.bad = true
		return nil
	}
	l := make([][]byte, 0, n)
	for i := 0; i < n && !c.bad; i++ {
		l = append(l, c.str())
	}
	return l
}

// skipBytesMap skips a [bytes map].
func (c *cursor) skipBytesMap() {
	for n := int(c.short()); n > 0 && !c.bad; n-- {
		c.str()
		c.value()
	}
}

// Opcodes.
const (
	opError         = 0x00
	opStartup       = 0x01
	opReady         = 0x02
	opAuthenticate  = 0x03
	opOptions       = 0x05
	opSupported     = 0x06
	opQuery         = 0x07
	opResult        = 0x08
	opPrepare       = 0x09
	opExecute       = 0x0a
	opRegister      = 0x0b
	opEvent         = 0x0c
	opBatch         = 0x0d
	opAuthChallenge = 0x0e
	opAuthResponse  = 0x0f
	opAuthSuccess   = 0x10
)

func requestOp(op byte) bool {
	switch op {
	case opStartup, opOptions, opQuery, opPrepare, opExecute, opRegister, opBatch, opAuthResponse:
		return true
	}
	return false
}

func responseOp(op byte) bool {
	switch op {
	case opError, opReady, opAuthenticate, opSupported, opResult, opEvent, opAuthChallenge, opAuthSuccess:
		return true
	}
	return false
}

var consistencies = [...]string{"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL", "LOCAL_ONE"}

func consistencyName(c uint16) string {
	if int(c) < len(consistencies) {
		return consistencies[c]
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// Data types of [option]s.
const (
	tCustom    = 0x0000
	tASCII     = 0x0001
	tBigint    = 0x0002
	tBlob      = 0x0003
	tBoolean   = 0x0004
	tCounter   = 0x0005
	tDecimal   = 0x0006
	tDouble    = 0x0007
	tFloat     = 0x0008
	tInt       = 0x0009
	tTimestamp = 0x000b
	tUUID      = 0x000c
	tVarchar   = 0x000d
	tVarint    = 0x000e
	tTimeUUID  = 0x000f
	tInet      = 0x0010
	tDate      = 0x0011
	tTime      = 0x0012
	tSmallint  = 0x0013
	tTinyint   = 0x0014
	tDuration  = 0x0015
	tList      = 0x0020
	tMap       = 0x0021
	tSet       = 0x0022
	tUDT       = 0x0030
	tTuple     = 0x0031
)

// option reads an [option] naming a data type, and returns its id
// (collections and user types are read through, and shown as hex).
func (c *cursor) option(depth int) uint16 {
	id := c.short()
	if depth > 16 {
		c.bad = true
		return id
	}
	switch id {
	case tCustom:
		c.str()
	case tList, tSet:
		c.option(depth + 1)
	case tMap:
		c.option(depth + 1)
		c.option(depth + 1)
	case tUDT:
		c.str()
		c.str()
		for n := int(c.short()); n > 0 && !c.bad; n-- {
			c.str()
			c.option(depth + 1)
		}
	case tTuple:
		for n := int(c.short()); n > 0 && !c.bad; n-- {
			c.option(depth + 1)
		}
	}
	return id
}

// column is a column spec of a result's or a prepared statement's
// metadata.
type column struct {
	name []byte
	typ  uint16
}

// metadata reads a result's metadata (rows, or the bind markers of a
// prepared statement when prepared) and returns its columns; v is the
// protocol version.
func (c *cursor) metadata(v byte, prepared bool) (cols []column, count int) {
	flags := c.int()
	count = int(c.int())
	if count < 0 || count > len(c.b) {
		c.bad = true
		return nil, 0
	}
	if prepared {
		if v >= 4 {
			pk := int(c.int())
			if pk < 0 || pk > len(c.b)/2 {
				c.bad = true
				return nil, 0
			}
			c.take(2 * pk)
		}
	} else {
		if flags&0x0002 != 0 { // has more pages
			c.value()
		}
		if v >= 5 && flags&0x0008 != 0 { // metadata changed
			c.shortBytes()
		}
		if flags&0x0004 != 0 { // no metadata
			return nil, count
		}
	}
	global := flags&0x0001 != 0
	if global {
		c.str()
		c.str()
	}
	for i := 0; i < count && !c.bad; i++ {
		if !global {
			c.str()
			c.str()
		}
		name := c.str()
		cols = append(cols, column{name: name, typ: c.option(0)})
	}
	return cols, count
}

// text is the rendering of a message, cut at its bound.
type text struct {
	b     []byte
	limit int
}

func (t *text) add(s ...string)   { t.b = wire.AppendCapped(t.b, t.limit, s...) }
func (t *text) addBytes(s []byte) { t.b = wire.AppendCapped(t.b, t.limit, s) }

// json appends s as a JSON string.
func (t *text) json(s []byte) {
	if len(t.b) >= t.limit {
		return
	}
	t.b = wire.AppendCapped(t.b, t.limit, wire.AppendJSONString(nil, s))
}

func hexBytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return "0x" + hex.EncodeToString(b)
}

// value appends one bound value as JSON: decoded by its type when it is
// known and simple, as a string of hex otherwise.
func (t *text) value(b []byte, n int32, typ uint16, typed bool) {
	switch {
	case n == -1:
		t.add("null")
		return
	case n == -2:
		t.add(`"<unset>"`)
		return
	}
	if typed {
		if s, ok := decodeValue(b, typ); ok {
			t.add(s)
			return
		}
	}
	t.add(`"`, hexBytes(b), `"`)
}

// decodeValue renders a value of a simple type as JSON.
func decodeValue(b []byte, typ uint16) (string, bool) {
	switch typ {
	case tASCII, tVarchar:
		if !utf8.Valid(b) {
			return "", false
		}
		return string(wire.AppendJSONString(nil, b)), true
	case tBigint, tCounter, tTime:
		if len(b) == 8 {
			return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)), 10), true
		}
	case tInt:
		if len(b) == 4 {
			return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(b))), 10), true
		}
	case tSmallint:
		if len(b) == 2 {
			return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(b))), 10), true
		}
	case tTinyint:
		if len(b) == 1 {
			return strconv.FormatInt(int64(int8(b[0])), 10), true
		}
	case tBoolean:
		if len(b) == 1 {
			return strconv.FormatBool(b[0] != 0), true
		}
	case tDouble:
		if len(b) == 8 {
			return jsonFloat(math.Float64frombits(binary.BigEndian.Uint64(b)), 64)
		}
	case tFloat:
		if len(b) == 4 {
			return jsonFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 32)
		}
	case tTimestamp:
		if len(b) == 8 {
			ms := int64(binary.BigEndian.Uint64(b))
			return `"` + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") + `"`, true
		}
	case tUUID, tTimeUUID:
		if len(b) == 16 {
			h := hex.EncodeToString(b)
			return `"` + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:] + `"`, true
		}
	case tInet:
		if a, ok := netip.AddrFromSlice(b); ok {
			return `"` + a.String() + `"`, true
		}
	case tDate:
		if len(b) == 4 {
			days := int64(binary.BigEndian.Uint32(b)) - 1<<31
			return `"` + time.Unix(days*86400, 0).UTC().Format("2006-01-02") + `"`, true
		}
	}
	return "", false
}

func jsonFloat(f float64, bits int) (string, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return `"` + strconv.FormatFloat(f, 'g', -1, bits) + `"`, true
	}
	return strconv.FormatFloat(f, 'g', -1, bits), true
}

// values appends the bound values of query parameters as a JSON array
// (an object when they are named), decoded by types when known.
func (t *text) values(c *cursor, n int, named bool, types []uint16) {
	open, end := "[", "]"
	if named {
		open, end = "{", "}"
	}
	t.add(open)
	for i := 0; i < n && !c.bad; i++ {
		if i > 0 {
			t.add(",")
		}
		if named {
			t.json(c.str())
			t.add(":")
		}
		b, ln := c.value()
		if c.bad {
			break
		}
		typ, typed := uint16(0), i < len(types)
		if typed {
			typ = types[i]
		}
		t.value(b, ln, typ, typed && !named)
	}
	t.add(end)
}

// params appends a QUERY's or EXECUTE's parameters: the values (a line
// of JSON, when there are any) and the consistency (a line of its own).
func (t *text) params(c *cursor, v byte, types []uint16) {
	consistency := c.short()
	var flags uint32
	if v >= 5 {
		flags = uint32(c.int())
	} else {
		flags = uint32(c.byte())
	}
	if c.bad {
		return
	}
	if flags&0x01 != 0 {
		if n := int(c.short()); n > 0 && !c.bad {
			t.add("\n")
			t.values(c, n, flags&0x40 != 0, types)
		}
	}
	t.add("\nconsistency=", consistencyName(consistency))
}

// stringMap appends a [string map] (sorted by key) or a [string
// multimap] as a JSON object.
func (t *text) stringMap(c *cursor, multi bool) {
	type kv struct {
		k []byte
		v [][]byte
	}
	n := int(c.short())
	if n > len(c.b)/4 {
		c.bad = true
		return
	}
	var m []kv
	for i := 0; i < n && !c.bad; i++ {
		k := c.str()
		if multi {
			m = append(m, kv{k, c.strList()})
		} else {
			m = append(m, kv{k, [][]byte{c.str()}})
		}
	}
	if c.bad {
		return
	}
	slices.SortFunc(m, func(a, b kv) int { return slices.Compare(a.k, b.k) })
	t.add("{")
	for i, e := range m {
		if i > 0 {
			t.add(",")
		}
		t.json(e.k)
		t.add(":")
		if !multi {
			t.json(e.v[0])
			continue
		}
		t.strings(e.v)
	}
	t.add("}")
}

// strings appends a JSON array of strings.
func (t *text) strings(l [][]byte) {
	t.add("[")
	for i, s := range l {
		if i > 0 {
			t.add(",")
		}
		t.json(s)
	}
	t.add("]")
}

// schemaChange appends a schema change's type, target and names.
func (t *text) schemaChange(c *cursor) {
	change, target := c.str(), c.str()
	t.addBytes(change)
	t.add(" ")
	t.addBytes(target)
	switch string(target) {
	case "KEYSPACE":
		t.add(" keyspace=")
		t.addBytes(c.str())
	case "TABLE", "TYPE", "FUNCTION", "AGGREGATE":
		t.add(" keyspace=")
		t.addBytes(c.str())
		t.add(" name=")
		t.addBytes(c.str())
		if target[0] == 'F' || target[0] == 'A' {
			t.add(" args=")
			t.strings(c.strList())
		}
	}
}

func addrFrom(b []byte) (string, bool) {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return "", false
	}
	return a.Unmap().String(), true
}
