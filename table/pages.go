package table

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/file"

	"github.com/pxq-dev/pxq/types"
)

// pageDecoder decodes a column chunk from its pages (arrow's page reader
// reads and decompresses them) for the encodings nearly every file has:
// PLAIN, and dictionaries (PLAIN_DICTIONARY, RLE_DICTIONARY) of BYTE_ARRAY,
// INT32, INT64, DOUBLE and 16-byte FIXED_LEN_BYTE_ARRAY values, with RLE
// definition levels, in data pages v1 and v2. It decodes dictionary
// indices into an int32 slice and gathers the values from the dictionary
// straight into pxq's layout, where the column chunk readers of arrow's
// file package hand out one slice header per string, each written
// through the garbage collector's write barrier, that then needs a
// second copy: on dictionary strings those take 1.4 to 1.6× the time
// (BenchmarkParquetDecode). Other chunks (DELTA encodings, INT96,
// BOOLEAN, …) are read with those readers (pqDecoder).
type pageDecoder struct {
	col   *pqColumn
	pages file.PageReader
	// coded, when not nil, numbers the (STRING) column's values: a
	// dictionary page is numbered once, and the column comes as codes.
	coded *Dict

	// The dictionary, in the column's output form.
	hasDict  bool
	dictI64  []int64
	dictF64  []float64
	dictOff  []int32 // strings: offsets into dictData
	dictData []byte  // strings, and 16-byte values
	dictLen  int

	// The current data page.
	left   int // levels left in the page
	defs   rleDecoder
	isDict bool
	idx    rleDecoder
	plain  []byte // the rest of a PLAIN page's values

	levels []int32 // scratch: definition levels of a batch
	codes  []int32 // scratch: dictionary indices of a batch
}

// pageDecodable reports whether pageDecoder reads a column chunk of col
// whose pages use encodings.
func pageDecodable(col *pqColumn, encodings []parquet.Encoding) bool {
	switch col.phys {
	case parquet.Types.ByteArray, parquet.Types.Int32, parquet.Types.Int64, parquet.Types.Double:
	case parquet.Types.FixedLenByteArray:
		if col.t != types.UInt128 {
			return false
		}
	default:
		return false
	}
	for _, e := range encodings {
		switch e {
		case parquet.Encodings.Plain, parquet.Encodings.PlainDict, parquet.Encodings.RLEDict, parquet.Encodings.RLE:
		default:
			return false
		}
	}
	return true
}

// nextPage moves to the next data page, reading the dictionary page
// first when there is one.
func (d *pageDecoder) nextPage() error {
	for {
		if !d.pages.Next() {
			if err := d.pages.Err(); err != nil {
				return err
			}
			return fmt.Errorf("the column chunk ended before its rows did")
		}
		switch p := d.pages.Page().(type) {
		case *file.DictionaryPage:
			if err := d.readDictionary(p); err != nil {
				return fmt.Errorf("dictionary page: %w", err)
			}
		case *file.DataPageV1:
			data := p.Data()
			if d.col.maxDef > 0 {
				if parquet.Encoding(p.DefinitionLevelEncoding()) != parquet.Encodings.RLE || len(data) < 4 {
					return fmt.Errorf("definition levels: unsupported encoding %v", p.DefinitionLevelEncoding())
				}
				n := int(binary.LittleEndian.Uint32(data))
				if n > len(data)-4 {
					return fmt.Errorf("definition levels: %d bytes in a page of %d", n, len(data))
				}
				d.defs.reset(data[4:4+n], bits.Len16(uint16(d.col.maxDef)))
				data = data[4+n:]
			}
			return d.startValues(parquet.Encoding(p.Encoding()), int(p.NumValues()), data)
		case *file.DataPageV2:
			data := p.Data()
			rl, dl := int(p.RepetitionLevelByteLen()), int(p.DefinitionLevelByteLen())
			if rl+dl > len(data) {
				return fmt.Errorf("levels: %d bytes in a page of %d", rl+dl, len(data))
			}
			if d.col.maxDef > 0 {
				d.defs.reset(data[rl:rl+dl], bits.Len16(uint16(d.col.maxDef)))
			}
			return d.startValues(parquet.Encoding(p.Encoding()), int(p.NumValues()), data[rl+dl:])
		}
	}
}

func (d *pageDecoder) startValues(enc parquet.Encoding, n int, data []byte) error {
	d.left = n
	switch enc {
	case parquet.Encodings.Plain:
		d.isDict, d.plain = false, data
	case parquet.Encodings.PlainDict, parquet.Encodings.RLEDict:
		if !d.hasDict {
			return fmt.Errorf("a dictionary page without a dictionary")
		}
		d.isDict = true
		if len(data) == 0 { // no values: every row is null
			d.idx.reset(nil, 0)
			return nil
		}
		d.idx.reset(data[1:], int(data[0]))
	default:
		return fmt.Errorf("unsupported encoding %v", enc)
	}
	return nil
}

// readDictionary keeps a dictionary page's values (PLAIN encoded) in the
// column's output form: the page's memory is the page reader's.
func (d *pageDecoder) readDictionary(p *file.DictionaryPage) error {
	n := int(p.NumValues())
	data := p.Data()
	d.hasDict, d.dictLen = true, n
	switch d.col.phys {
	case parquet.Types.Int64, parquet.Types.Int32:
		w := 8
		if d.col.phys == parquet.Types.Int32 {
			w = 4
		}
		if len(data) < n*w {
			return fmt.Errorf("%d values in %d bytes", n, len(data))
		}
		d.dictI64 = make([]int64, n)
		for i := range d.dictI64 {
			d.dictI64[i] = d.col.int64At(data, i)
		}
	case parquet.Types.Double:
		if len(data) < n*8 {
			return fmt.Errorf("%d values in %d bytes", n, len(data))
		}
		d.dictF64 = make([]float64, n)
		for i := range d.dictF64 {
			d.dictF64[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
		}
	case parquet.Types.FixedLenByteArray:
		if len(data) < n*16 {
			return fmt.Errorf("%d values in %d bytes", n, len(data))
		}
		d.dictData = append([]byte(nil), data[:n*16]...)
	case parquet.Types.ByteArray:
		d.dictOff = make([]int32, n+1)
		d.dictData = make([]byte, 0, len(data)-4*n)
		pos := 0
		for i := 0; i < n; i++ {
			if pos+4 > len(data) {
				return fmt.Errorf("value %d of %d: the page ends", i, n)
			}
			l := int(binary.LittleEndian.Uint32(data[pos:]))
			pos += 4
			if l > len(data)-pos {
				return fmt.Errorf("value %d of %d: %d bytes past the page", i, n, l)
			}
			d.dictData = append(d.dictData, data[pos:pos+l]...)
			pos += l
			d.dictOff[i+1] = int32(len(d.dictData))
		}
		// Room for gather's 16-byte blocks.
		d.dictData = append(d.dictData, make([]byte, 16)...)
		if d.coded != nil {
			// Gathered as INT64 codes.
			d.dictI64 = make([]int64, n)
			d.coded.codeStrings(d.dictOff, d.dictData, d.dictI64)
		}
	}
	return nil
}

// int64At reads the i-th PLAIN INT64 or INT32 value of data as pxq's.
func (c *pqColumn) int64At(data []byte, i int) int64 {
	if c.phys == parquet.Types.Int32 {
		v := binary.LittleEndian.Uint32(data[4*i:])
		if c.uint32 {
			return int64(v)
		}
		return int64(int32(v))
	}
	return int64(binary.LittleEndian.Uint64(data[8*i:])) * c.mult
}

// read decodes the next n rows of the column.
func (d *pageDecoder) read(n int) (arrow.Array, error) {
	t := d.col.t
	if d.coded != nil {
		t = types.Int64
	}
	out := newColumnOut(t, n)
	row := 0
	for row < n {
		if d.left == 0 {
			if err := d.nextPage(); err != nil {
				return nil, err
			}
			continue
		}
		m := min(n-row, d.left)
		// Which of the m rows have a value.
		var present []int32
		nv := m
		if d.col.maxDef > 0 {
			d.levels = grow(d.levels, m)
			if err := d.defs.decode(d.levels); err != nil {
				return nil, fmt.Errorf("definition levels: %w", err)
			}
			nv = 0
			for _, l := range d.levels {
				if l == int32(d.col.maxDef) {
					nv++
				}
			}
			if nv < m {
				present = d.levels
			}
		}
		var err error
		if d.isDict {
			d.codes = grow(d.codes, nv)
			if err := d.idx.decode(d.codes); err != nil {
				return nil, fmt.Errorf("dictionary indices: %w", err)
			}
			err = out.gather(d, row, m, present, d.codes)
			if err == nil && d.coded != nil && present != nil {
				// A null reads as "", which has a code of its own.
				empty := d.coded.Code("")
				for i, l := range present {
					if l != int32(d.col.maxDef) {
						out.i64[row+i] = empty
					}
				}
			}
		} else if d.coded != nil {
			// Plain strings (after a full dictionary): decode, number.
			tmp := newColumnOut(types.String, m)
			if d.plain, err = tmp.plain(d.col, d.plain, 0, m, nv, present); err == nil {
				d.coded.codeStrings(tmp.off, tmp.data, out.i64[row:row+m])
			}
		} else {
			d.plain, err = out.plain(d.col, d.plain, row, m, nv, present)
		}
		if err != nil {
			return nil, err
		}
		row += m
		d.left -= m
	}
	return out.array(), nil
}

// columnOut is one batch of a column being decoded.
type columnOut struct {
	t    types.DataType
	i64  []int64
	f64  []float64
	off  []int32 // strings
	data []byte  // strings, 16-byte values
}

func newColumnOut(t types.DataType, n int) *columnOut {
	o := &columnOut{t: t}
	switch t {
	case types.Int64, types.Time64NS:
		o.i64 = make([]int64, n)
	case types.Float64:
		o.f64 = make([]float64, n)
	case types.String:
		o.off = make([]int32, n+1)
	case types.UInt128:
		o.data = make([]byte, 16*n)
	}
	return o
}

// gather writes rows [row, row+m) from dictionary indices codes (one per
// present row; all rows when present is nil).
func (o *columnOut) gather(d *pageDecoder, row, m int, present []int32, codes []int32) error {
	for _, c := range codes {
		if uint32(c) >= uint32(d.dictLen) {
			return fmt.Errorf("dictionary index %d of a dictionary of %d", c, d.dictLen)
		}
	}
	maxDef := int32(d.col.maxDef)
	switch o.t {
	case types.Int64, types.Time64NS:
		dst := o.i64[row : row+m]
		if present == nil {
			for i, c := range codes {
				dst[i] = d.dictI64[c]
			}
			return nil
		}
		k := 0
		for i, l := range present {
			if l == maxDef {
				dst[i] = d.dictI64[codes[k]]
				k++
			}
		}
	case types.Float64:
		dst := o.f64[row : row+m]
		k := 0
		for i := range dst {
			if present == nil || present[i] == maxDef {
				dst[i] = d.dictF64[codes[k]]
				k++
			}
		}
	case types.UInt128:
		dst := o.data[16*row : 16*(row+m)]
		k := 0
		for i := 0; i < m; i++ {
			if present == nil || present[i] == maxDef {
				c := int(codes[k])
				copy(dst[16*i:16*i+16], d.dictData[16*c:16*c+16])
				k++
			}
		}
	case types.String:
		doff, ddata := d.dictOff, d.dictData
		need := 0
		for _, c := range codes {
			need += int(doff[c+1] - doff[c])
		}
		if len(o.data)+need > math.MaxInt32 {
			return fmt.Errorf("more string bytes than a batch holds")
		}
		// Values of up to 16 bytes move as one 16-byte block: the
		// dictionary and the output have 16 bytes of room past their
		// ends, and what a block writes past its value the next one
		// overwrites.
		o.data = growBytes(o.data, need+16)
		pos := int32(len(o.data))
		buf := o.data[:cap(o.data)]
		off := o.off[row+1 : row+m+1]
		k := 0
		for i := range off {
			if present == nil || present[i] == maxDef {
				c := codes[k]
				k++
				lo, hi := doff[c], doff[c+1]
				if hi-lo <= 16 {
					*(*[16]byte)(buf[pos:]) = *(*[16]byte)(ddata[lo:])
				} else {
					copy(buf[pos:], ddata[lo:hi])
				}
				pos += hi - lo
			}
			off[i] = pos
		}
		o.data = buf[:pos]
	}
	return nil
}

// plain decodes rows [row, row+m), nv of them with a value, from PLAIN
// values, and returns the rest.
func (o *columnOut) plain(col *pqColumn, data []byte, row, m, nv int, present []int32) ([]byte, error) {
	maxDef := int32(col.maxDef)
	has := func(i int) bool { return present == nil || present[i] == maxDef }
	switch o.t {
	case types.Int64, types.Time64NS:
		w := 8
		if col.phys == parquet.Types.Int32 {
			w = 4
		}
		if len(data) < nv*w {
			return nil, fmt.Errorf("%d values in %d bytes", nv, len(data))
		}
		dst := o.i64[row : row+m]
		if present == nil && w == 8 && col.mult == 1 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 8*m), data)
			return data[8*m:], nil
		}
		k := 0
		for i := range dst {
			if has(i) {
				dst[i] = col.int64At(data, k)
				k++
			}
		}
		return data[nv*w:], nil
	case types.Float64:
		if len(data) < nv*8 {
			return nil, fmt.Errorf("%d values in %d bytes", nv, len(data))
		}
		dst := o.f64[row : row+m]
		k := 0
		for i := range dst {
			if has(i) {
				dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*k:]))
				k++
			}
		}
		return data[nv*8:], nil
	case types.UInt128:
		if len(data) < nv*16 {
			return nil, fmt.Errorf("%d values in %d bytes", nv, len(data))
		}
		k := 0
		for i := 0; i < m; i++ {
			if has(i) {
				copy(o.data[16*(row+i):], data[16*k:16*k+16])
				k++
			}
		}
		return data[nv*16:], nil
	case types.String:
		// Measure first, so that the bytes are allocated once.
		need, pos := 0, 0
		for k := 0; k < nv; k++ {
			if pos+4 > len(data) {
				return nil, fmt.Errorf("value %d of %d: the page ends", k, nv)
			}
			l := int(binary.LittleEndian.Uint32(data[pos:]))
			if l > len(data)-pos-4 {
				return nil, fmt.Errorf("value %d of %d: %d bytes past the page", k, nv, l)
			}
			need += l
			pos += 4 + l
		}
		if len(o.data)+need > math.MaxInt32 {
			return nil, fmt.Errorf("more string bytes than a batch holds")
		}
		o.data = growBytes(o.data, need)
		p := 0
		off := o.off[row+1 : row+m+1]
		for i := range off {
			if has(i) {
				l := int(binary.LittleEndian.Uint32(data[p:]))
				o.data = append(o.data, data[p+4:p+4+l]...)
				p += 4 + l
			}
			off[i] = int32(len(o.data))
		}
		return data[pos:], nil
	}
	return nil, fmt.Errorf("unsupported column type %v", o.t)
}

// growBytes returns b with room for n more bytes.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n+len(b)/4)
	copy(nb, b)
	return nb
}

func (o *columnOut) array() arrow.Array {
	switch o.t {
	case types.Int64:
		return fixedArray(arrow.PrimitiveTypes.Int64, len(o.i64), int64Bytes(o.i64))
	case types.Time64NS:
		return fixedArray(types.TimeType, len(o.i64), int64Bytes(o.i64))
	case types.Float64:
		return fixedArray(arrow.PrimitiveTypes.Float64, len(o.f64), unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(o.f64))), 8*len(o.f64)))
	case types.UInt128:
		return fixedArray(types.UInt128Type, len(o.data)/16, o.data)
	}
	if o.data == nil {
		o.data = []byte{}
	}
	return stringArray(o.off, o.data)
}

// rleDecoder reads Parquet's RLE/bit-packed hybrid encoding: runs of one
// repeated value, and groups of 8 values of width bits each.
type rleDecoder struct {
	buf    []byte
	width  int
	rleN   int   // values left in the current repeated run
	rleV   int32 // its value
	bpN    int   // values left in the current bit-packed run
	bp     []byte
	bitPos uint
}

func (r *rleDecoder) reset(buf []byte, width int) {
	*r = rleDecoder{buf: buf, width: width}
}

// decode fills out with the next len(out) values.
func (r *rleDecoder) decode(out []int32) error {
	if r.width > 32 {
		return fmt.Errorf("bit width %d", r.width)
	}
	mask := uint64(1)<<uint(r.width) - 1
	for i := 0; i < len(out); {
		switch {
		case r.rleN > 0:
			k := min(r.rleN, len(out)-i)
			v := r.rleV
			for j := i; j < i+k; j++ {
				out[j] = v
			}
			i += k
			r.rleN -= k
		case r.bpN > 0:
			k := min(r.bpN, len(out)-i)
			w := uint(r.width)
			j := i
			// Whole groups of 8 values of up to 8 bits are one 64-bit
			// load.
			if w <= 8 && r.bitPos%(8*w) == 0 {
				for ; j+8 <= i+k && int(r.bitPos>>3)+8 <= len(r.bp); j += 8 {
					word := binary.LittleEndian.Uint64(r.bp[r.bitPos>>3:])
					o := out[j : j+8 : j+8]
					o[0] = int32(word & mask)
					o[1] = int32((word >> w) & mask)
					o[2] = int32((word >> (2 * w)) & mask)
					o[3] = int32((word >> (3 * w)) & mask)
					o[4] = int32((word >> (4 * w)) & mask)
					o[5] = int32((word >> (5 * w)) & mask)
					o[6] = int32((word >> (6 * w)) & mask)
					o[7] = int32((word >> (7 * w)) & mask)
					r.bitPos += 8 * w
				}
			}
			for ; j < i+k; j++ {
				byteAt := r.bitPos >> 3
				var word uint64
				if int(byteAt)+8 <= len(r.bp) {
					word = binary.LittleEndian.Uint64(r.bp[byteAt:])
				} else {
					var tmp [8]byte
					copy(tmp[:], r.bp[byteAt:])
					word = binary.LittleEndian.Uint64(tmp[:])
				}
				out[j] = int32((word >> (r.bitPos & 7)) & mask)
				r.bitPos += w
			}
			i += k
			r.bpN -= k
		default:
			h, n := binary.Uvarint(r.buf)
			if n <= 0 {
				return fmt.Errorf("the run headers end after %d of %d values", i, len(out))
			}
			r.buf = r.buf[n:]
			if h&1 == 0 {
				vb := (r.width + 7) / 8
				if len(r.buf) < vb {
					return fmt.Errorf("a run's value is cut")
				}
				var v uint32
				for k := 0; k < vb; k++ {
					v |= uint32(r.buf[k]) << (8 * k)
				}
				r.buf = r.buf[vb:]
				r.rleN, r.rleV = int(h>>1), int32(v)
			} else {
				groups := int(h >> 1)
				size := groups * r.width
				if size > len(r.buf) {
					// A last run may be written short.
					size = len(r.buf)
				}
				r.bp, r.buf = r.buf[:size], r.buf[size:]
				r.bpN, r.bitPos = min(groups*8, size*8/max(r.width, 1)), 0
				if r.width == 0 {
					r.bpN = groups * 8
				}
			}
		}
	}
	return nil
}
