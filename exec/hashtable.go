package exec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/funcs"
	"github.com/pxq-dev/pxq/types"
)

// keyTable maps the distinct values of one or more key columns to dense
// ids 0, 1, … in order of first appearance. The hash aggregate uses the
// ids as group numbers, the hash join as build-side key numbers.
// Implementations are typed so that no row is boxed: intTable for one
// INT64/TIME64NS column, stringTable for one STRING column, rowTable
// (keys encoded into bytes) for anything else.
type keyTable interface {
	// insert sets ids[i] to the id of row i's key, adding new keys.
	insert(cols []arrow.Array, n int, ids []uint32)
	// find sets ids[i] to the id of row i's key, or -1 when absent.
	find(cols []arrow.Array, n int, ids []int32)
	// len returns the number of distinct keys.
	len() int
	// keys returns the distinct keys as columns, in id order.
	keys() []arrow.Array
	// size estimates the bytes held.
	size() int64
}

func newKeyTable(ts []types.DataType) keyTable {
	if len(ts) == 0 {
		return &unitTable{}
	}
	if len(ts) > 1 {
		return newMultiTable(ts)
	}
	switch ts[0] {
	case types.Int64, types.Time64NS:
		return newIntTable(ts[0])
	case types.String:
		return &stringTable{bt: newBytesTable()}
	}
	return newRowTable(ts)
}

// unitTable is the key table of no key columns: every row has the one
// key, id 0. A join on no keys is a cross join.
type unitTable struct{ seen bool }

func (t *unitTable) insert(_ []arrow.Array, n int, ids []uint32) {
	for i := 0; i < n; i++ {
		ids[i] = 0
	}
	t.seen = t.seen || n > 0
}

func (t *unitTable) find(_ []arrow.Array, n int, ids []int32) {
	id := int32(-1)
	if t.seen {
		id = 0
	}
	for i := 0; i < n; i++ {
		ids[i] = id
	}
}

func (t *unitTable) len() int {
	if t.seen {
		return 1
	}
	return 0
}

func (t *unitTable) keys() []arrow.Array { return nil }
func (t *unitTable) size() int64         { return 0 }

// compatibleKeys reports whether key columns of types a and b can be
// compared through one key table (a join's two sides).
func compatibleKeys(a, b types.DataType) bool {
	norm := func(t types.DataType) types.DataType {
		if t == types.Time64NS {
			return types.Int64
		}
		return t
	}
	return norm(a) == norm(b)
}

// multiTable keys on several columns a column at a time: each column
// maps its values to per-column ids through its own typed table, and the
// ids are then combined pairwise, (id so far << 32 | next column's id),
// through integer tables. No row is encoded into bytes. The key values of
// each final id are kept in typed columns for keys().
type multiTable struct {
	cols    []keyTable  // per column
	comb    []*intTable // comb[k-1] combines columns 0..k-1 with column k
	vals    []*colBuf   // key values per final id
	colIDs  []uint32
	acc     []uint32
	packed  []int64
	fcolIDs []int32
	facc    []int32
}

func newMultiTable(ts []types.DataType) *multiTable {
	t := &multiTable{}
	for i, typ := range ts {
		t.cols = append(t.cols, newKeyTable([]types.DataType{typ}))
		t.vals = append(t.vals, newColBuf(typ))
		if i > 0 {
			t.comb = append(t.comb, newIntTable(types.Int64))
		}
	}
	return t
}

func (t *multiTable) insert(cols []arrow.Array, n int, ids []uint32) {
	if cap(t.colIDs) < n {
		t.colIDs, t.acc, t.packed = make([]uint32, n), make([]uint32, n), make([]int64, n)
	}
	acc, colIDs, packed := t.acc[:n], t.colIDs[:n], t.packed[:n]
	t.cols[0].insert(cols[:1], n, acc)
	before := t.comb[len(t.comb)-1].len()
	for k := 1; k < len(cols); k++ {
		t.cols[k].insert(cols[k:k+1], n, colIDs)
		for i := range packed {
			packed[i] = int64(acc[i])<<32 | int64(colIDs[i])
		}
		out := acc
		if k == len(cols)-1 {
			out = ids[:n]
		}
		t.comb[k-1].insertVals(packed, out)
		acc = out
	}
	// Keep the key values of the ids that appeared in this batch, in id
	// order (ids are given in order of first appearance).
	next := uint32(before)
	for i, id := range ids[:n] {
		if id == next {
			for k, c := range cols {
				t.vals[k].appendRow(c, i)
			}
			next++
		}
	}
}

func (t *multiTable) find(cols []arrow.Array, n int, ids []int32) {
	if cap(t.fcolIDs) < n {
		t.fcolIDs, t.facc, t.packed = make([]int32, n), make([]int32, n), make([]int64, n)
	}
	acc, colIDs, packed := t.facc[:n], t.fcolIDs[:n], t.packed[:n]
	t.cols[0].find(cols[:1], n, acc)
	for k := 1; k < len(cols); k++ {
		t.cols[k].find(cols[k:k+1], n, colIDs)
		for i := range packed {
			if acc[i] < 0 || colIDs[i] < 0 {
				packed[i] = -1
			} else {
				packed[i] = int64(acc[i])<<32 | int64(colIDs[i])
			}
		}
		out := acc
		if k == len(cols)-1 {
			out = ids[:n]
		}
		t.comb[k-1].findVals(packed, out)
		acc = out
	}
}

func (t *multiTable) len() int { return t.comb[len(t.comb)-1].len() }
func (t *multiTable) keys() []arrow.Array {
	out := make([]arrow.Array, len(t.vals))
	for i, c := range t.vals {
		out[i] = c.array()
	}
	return out
}
func (t *multiTable) size() int64 {
	var n int64
	for _, c := range t.cols {
		n += c.size()
	}
	for _, c := range t.comb {
		n += c.size()
	}
	for _, c := range t.vals {
		n += c.size()
	}
	return n
}

// intTable is an open-addressing hash table (linear probing, Fibonacci
// hashing) from int64 keys to ids.
type intTable struct {
	t     types.DataType
	slots []islot
	shift uint
	vals  []int64 // key of each id
}

type islot struct {
	key int64
	id  uint32 // id+1; 0 marks an empty slot
}

func newIntTable(t types.DataType) *intTable {
	it := &intTable{t: t}
	it.rehash(1 << 10)
	return it
}

func (t *intTable) rehash(size int) {
	t.slots = make([]islot, size)
	t.shift = uint(64 - bitsLen(size))
	mask := uint64(size - 1)
	for id, k := range t.vals {
		p := (uint64(k) * 0x9E3779B97F4A7C15) >> t.shift
		for t.slots[p].id != 0 {
			p = (p + 1) & mask
		}
		t.slots[p] = islot{k, uint32(id + 1)}
	}
}

func bitsLen(size int) int {
	n := 0
	for size > 1 {
		size >>= 1
		n++
	}
	return n
}

func (t *intTable) insert(cols []arrow.Array, n int, ids []uint32) {
	t.insertVals(funcs.Int64s(cols[0])[:n], ids)
}

// insertVals sets ids[i] to the id of vals[i], adding new keys.
func (t *intTable) insertVals(vals []int64, ids []uint32) {
	ids = ids[:len(vals)]
	slots, shift := t.slots, t.shift
	mask := uint64(len(slots) - 1)
	for i, k := range vals {
		p := (uint64(k) * 0x9E3779B97F4A7C15) >> shift
		for {
			s := &slots[p]
			if s.id == 0 {
				t.vals = append(t.vals, k)
				id := uint32(len(t.vals))
				s.key, s.id = k, id
				ids[i] = id - 1
				if 2*len(t.vals) > len(slots) {
					t.rehash(2 * len(slots))
					slots, shift = t.slots, t.shift
					mask = uint64(len(slots) - 1)
				}
				break
			}
			if s.key == k {
				ids[i] = s.id - 1
				break
			}
			p = (p + 1) & mask
		}
	}
}

func (t *intTable) find(cols []arrow.Array, n int, ids []int32) {
	t.findVals(funcs.Int64s(cols[0])[:n], ids)
}

// findVals sets ids[i] to the id of vals[i], or -1. A negative value is
// never a key of a combining table and finds nothing there.
func (t *intTable) findVals(vals []int64, ids []int32) {
	slots, shift := t.slots, t.shift
	mask := uint64(len(slots) - 1)
	for i, k := range vals {
		p := (uint64(k) * 0x9E3779B97F4A7C15) >> shift
		for {
			s := slots[p]
			if s.id == 0 {
				ids[i] = -1
				break
			}
			if s.key == k {
				ids[i] = int32(s.id - 1)
				break
			}
			p = (p + 1) & mask
		}
	}
}

func (t *intTable) len() int { return len(t.vals) }
func (t *intTable) keys() []arrow.Array {
	if t.t == types.Time64NS {
		return []arrow.Array{funcs.NewTimeArray(t.vals)}
	}
	return []arrow.Array{funcs.NewInt64Array(t.vals)}
}
func (t *intTable) size() int64 { return int64(len(t.slots))*16 + int64(cap(t.vals))*8 }

// bytesTable is an open-addressing hash table from byte strings to ids;
// the keys live in one arena. Keys of up to 16 bytes (methods, IP
// addresses, names: most keys) are also held as two words, hashed with
// one multiply and compared as two integers, which is about three times
// as fast as hashing and comparing the bytes; longer keys go through
// hash/maphash and bytes.Equal.
type bytesTable struct {
	seed   maphash.Seed
	s0, s1 uint64 // seeds of the short keys' hash
	slots  []bslot
	mask   uint64
	hashes []uint64 // hash of each id
	off    []int32  // key of id i is data[off[i]:off[i+1]]
	data   []byte
	words  []uint64 // id i's shortWords at 2i, 2i+1 (zero for long keys)
}

type bslot struct {
	tag uint32 // high bits of the hash
	id  uint32 // id+1; 0 marks an empty slot
}

func newBytesTable() *bytesTable {
	t := &bytesTable{seed: maphash.MakeSeed(), off: []int32{0}}
	t.s0 = maphash.Comparable(t.seed, uint64(0x9E3779B97F4A7C15))
	t.s1 = maphash.Comparable(t.seed, uint64(0xC2B2AE3D27D4EB4F))
	t.rehash(1 << 10)
	return t
}

func (t *bytesTable) rehash(size int) {
	t.slots = make([]bslot, size)
	t.mask = uint64(size - 1)
	for id, h := range t.hashes {
		p := h & t.mask
		for t.slots[p].id != 0 {
			p = (p + 1) & t.mask
		}
		t.slots[p] = bslot{uint32(h >> 32), uint32(id + 1)}
	}
}

// shortKey is the longest key held as words.
const shortKey = 16

// shortWords packs a key of at most 16 bytes into two words that, with
// its length, determine it: overlapping loads from both ends, so no
// byte past the key is read.
func shortWords(k []byte) (w0, w1 uint64) {
	switch n := len(k); {
	case n >= 8:
		return binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[n-8:])
	case n >= 4:
		return uint64(binary.LittleEndian.Uint32(k)) | uint64(binary.LittleEndian.Uint32(k[n-4:]))<<32, 0
	case n > 0:
		return uint64(k[0]) | uint64(k[n/2])<<8 | uint64(k[n-1])<<16, 0
	}
	return 0, 0
}

// shortHash mixes a short key's words and length with the table's
// seeds: the high and low halves of one 128-bit product.
func (t *bytesTable) shortHash(w0, w1 uint64, n int) uint64 {
	hi, lo := bits.Mul64(w0^t.s0, w1^t.s1^uint64(n))
	return hi ^ lo
}

// lookup returns the id of key, adding it when add is set (else -1).
func (t *bytesTable) lookup(key []byte, add bool) int32 {
	if len(key) <= shortKey {
		return t.lookupShort(key, add)
	}
	h := maphash.Bytes(t.seed, key)
	tag := uint32(h >> 32)
	p := h & t.mask
	for {
		s := t.slots[p]
		if s.id == 0 {
			if !add {
				return -1
			}
			return t.add(key, h, p, 0, 0)
		}
		if s.tag == tag {
			id := s.id - 1
			if bytes.Equal(t.data[t.off[id]:t.off[id+1]], key) {
				return int32(id)
			}
		}
		p = (p + 1) & t.mask
	}
}

func (t *bytesTable) lookupShort(key []byte, add bool) int32 {
	w0, w1 := shortWords(key)
	n := int32(len(key))
	h := t.shortHash(w0, w1, len(key))
	tag := uint32(h >> 32)
	p := h & t.mask
	for {
		s := t.slots[p]
		if s.id == 0 {
			if !add {
				return -1
			}
			return t.add(key, h, p, w0, w1)
		}
		if s.tag == tag {
			id := s.id - 1
			if t.words[2*id] == w0 && t.words[2*id+1] == w1 && t.off[id+1]-t.off[id] == n {
				return int32(id)
			}
		}
		p = (p + 1) & t.mask
	}
}

// add makes key, of hash h, the next id, in the empty slot p.
func (t *bytesTable) add(key []byte, h, p, w0, w1 uint64) int32 {
	id := len(t.hashes)
	if len(t.data)+len(key) > math.MaxInt32 {
		panic("group keys exceed 2 GiB")
	}
	t.hashes = append(t.hashes, h)
	t.data = append(t.data, key...)
	t.off = append(t.off, int32(len(t.data)))
	t.words = append(t.words, w0, w1)
	t.slots[p] = bslot{uint32(h >> 32), uint32(id + 1)}
	if 2*len(t.hashes) > len(t.slots) {
		t.rehash(2 * len(t.slots))
	}
	return int32(id)
}

func (t *bytesTable) size() int64 {
	return int64(len(t.slots))*8 + int64(cap(t.hashes))*8 + int64(cap(t.off))*4 + int64(cap(t.data)) + int64(cap(t.words))*8
}

// stringTable keys on one STRING column's value bytes.
type stringTable struct{ bt *bytesTable }

func (t *stringTable) insert(cols []arrow.Array, n int, ids []uint32) {
	off, data := funcs.StringParts(cols[0])
	for i := 0; i < n; i++ {
		ids[i] = uint32(t.bt.lookup(data[off[i]:off[i+1]], true))
	}
}

func (t *stringTable) find(cols []arrow.Array, n int, ids []int32) {
	off, data := funcs.StringParts(cols[0])
	for i := 0; i < n; i++ {
		ids[i] = t.bt.lookup(data[off[i]:off[i+1]], false)
	}
}

func (t *stringTable) len() int { return len(t.bt.hashes) }
func (t *stringTable) keys() []arrow.Array {
	return []arrow.Array{funcs.NewStringArray(t.bt.off, t.bt.data)}
}
func (t *stringTable) size() int64 { return t.bt.size() }

// rowTable keys on any columns by encoding each row's key into bytes:
// fixed-width values as their 8 (16 for UINT128, 1 for BOOLEAN) bytes,
// strings as a 4-byte length and their bytes. The key values of each id
// are kept in typed columns for keys().
type rowTable struct {
	ts   []types.DataType
	bt   *bytesTable
	cols []*colBuf
	buf  []byte
}

func newRowTable(ts []types.DataType) *rowTable {
	t := &rowTable{ts: ts, bt: newBytesTable()}
	for _, typ := range ts {
		t.cols = append(t.cols, newColBuf(typ))
	}
	return t
}

// encode appends row i's key to b.
func (t *rowTable) encode(b []byte, cols []arrow.Array, i int) []byte {
	for _, c := range cols {
		switch c.DataType().ID() {
		case arrow.INT64, arrow.TIMESTAMP:
			b = binary.LittleEndian.AppendUint64(b, uint64(funcs.Int64s(c)[i]))
		case arrow.FLOAT64:
			f := funcs.Float64s(c)[i]
			if f == 0 {
				f = 0 // one key for +0 and -0
			}
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		case arrow.BOOL:
			bits, off := funcs.Bits(c)
			if funcs.BitAt(bits, off+i) {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case arrow.STRING:
			off, data := funcs.StringParts(c)
			s := data[off[i]:off[i+1]]
			b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		case arrow.FIXED_SIZE_BINARY:
			b = append(b, funcs.UInt128Bytes(c)[16*i:16*i+16]...)
		default:
			panic(fmt.Sprintf("exec: cannot key on %v", c.DataType()))
		}
	}
	return b
}

func (t *rowTable) insert(cols []arrow.Array, n int, ids []uint32) {
	for i := 0; i < n; i++ {
		t.buf = t.encode(t.buf[:0], cols, i)
		before := len(t.bt.hashes)
		id := t.bt.lookup(t.buf, true)
		if int(id) == before {
			for k, c := range cols {
				t.cols[k].appendRow(c, i)
			}
		}
		ids[i] = uint32(id)
	}
}

func (t *rowTable) find(cols []arrow.Array, n int, ids []int32) {
	for i := 0; i < n; i++ {
		t.buf = t.encode(t.buf[:0], cols, i)
		ids[i] = t.bt.lookup(t.buf, false)
	}
}

func (t *rowTable) len() int { return len(t.bt.hashes) }
func (t *rowTable) keys() []arrow.Array {
	out := make([]arrow.Array, len(t.cols))
	for i, c := range t.cols {
		out[i] = c.array()
	}
	return out
}
func (t *rowTable) size() int64 {
	n := t.bt.size()
	for _, c := range t.cols {
		n += c.size()
	}
	return n
}
