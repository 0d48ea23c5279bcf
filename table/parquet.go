package table

import (
	"fmt"
	"math"
	"os"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/metadata"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"github.com/apache/arrow/go/v15/parquet/schema"

	"github.com/pxq-dev/pxq/types"
)

// Parquet files are read a row group at a time, column chunk by column
// chunk: by pageDecoder (pages.go) for the common encodings, else by the
// typed column chunk readers of arrow's parquet/file package (pqDecoder),
// which decode a column's pages into a slice of its physical type. Both
// are below pqarrow's record reader, which builds every value with
// Arrow's builders: on a dictionary string column it takes 3× the time
// of pageDecoder, on a column of plain strings 1.35×
// (BenchmarkParquetDecode, docs/performance.md), and pxq wants its own
// layout anyway (no nulls, 64-bit ints, ns times). pqarrow still gives
// the file's Arrow schema, the stored one included, so semantic types
// come back as written.

// parquetFile is one Parquet file of a FileTable.
type parquetFile struct {
	path string
	cf   *countingFile
	md   *metadata.FileMetaData
	rel  types.Relation // the table's
	cols []pqColumn     // per column of rel
	us   []Unit
}

// pqColumn says how one column of the table is read from the file.
type pqColumn struct {
	name   string
	leaf   int // the file's column index
	t      types.DataType
	phys   parquet.Type
	mult   int64 // TIME64NS: ns per unit of the stored value
	uint32 bool  // INT32 holding unsigned values
	maxDef int16
}

func openParquet(f *os.File, path string, size int64, want types.Relation, reads *readCounter) (*parquetFile, error) {
	cf := &countingFile{f: f, size: size, reads: reads}
	pr, err := file.NewParquetReader(&seeker{countingFile: cf})
	if err != nil {
		return nil, err
	}
	md := pr.MetaData()
	sc := md.Schema
	root := sc.Root()
	for i := 0; i < root.NumFields(); i++ {
		if _, ok := root.Field(i).(*schema.PrimitiveNode); !ok {
			return nil, fmt.Errorf("column %s is nested: pxq reads columns of plain values", root.Field(i).Name())
		}
	}
	as, err := pqarrow.FromParquet(sc, &pqarrow.ArrowReadProperties{}, md.KeyValueMetadata())
	if err != nil {
		return nil, err
	}
	have, err := types.FromArrowSchema(as)
	if err != nil {
		return nil, err
	}
	p := &parquetFile{path: path, cf: cf, md: md, rel: want}
	idx := make([]int, len(have))
	for i := range idx {
		idx[i] = i
	}
	if want == nil {
		p.rel = have
	} else if idx, err = matchRelation(have, want); err != nil {
		return nil, err
	}
	for i, c := range p.rel {
		col, err := pqColumnOf(sc.Column(idx[i]), idx[i], c.Type, as.Field(idx[i]).Type)
		if err != nil {
			return nil, err
		}
		p.cols = append(p.cols, col)
	}
	for g := 0; g < pr.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		u := Unit{File: path, Index: g, Rows: rg.NumRows(), Bytes: make([]int64, len(p.rel)), Stats: make([]ColumnStats, len(p.rel))}
		for i := range p.rel {
			cc, err := rg.ColumnChunk(p.cols[i].leaf)
			if err != nil {
				return nil, fmt.Errorf("row group %d column %s: %w", g, p.rel[i].Name, err)
			}
			u.Bytes[i] = cc.TotalCompressedSize()
			u.Stats[i] = p.cols[i].stats(cc)
		}
		p.us = append(p.us, u)
	}
	return p, nil
}

// pqColumnOf checks that a Parquet column reads as pxq type t and says
// how.
func pqColumnOf(c *schema.Column, leaf int, t types.DataType, at arrow.DataType) (pqColumn, error) {
	col := pqColumn{name: c.Name(), leaf: leaf, t: t, phys: c.PhysicalType(), mult: 1, maxDef: c.MaxDefinitionLevel()}
	if c.MaxRepetitionLevel() > 0 {
		return col, fmt.Errorf("column %s is repeated: pxq reads columns of plain values", c.Name())
	}
	ok := false
	switch t {
	case types.Boolean:
		ok = col.phys == parquet.Types.Boolean
	case types.Int64:
		ok = col.phys == parquet.Types.Int64 || col.phys == parquet.Types.Int32
		if lt, isInt := c.LogicalType().(*schema.IntLogicalType); isInt && !lt.IsSigned() && col.phys == parquet.Types.Int32 {
			col.uint32 = true
		}
	case types.Float64:
		ok = col.phys == parquet.Types.Double || col.phys == parquet.Types.Float
	case types.String:
		ok = col.phys == parquet.Types.ByteArray
	case types.UInt128:
		ok = col.phys == parquet.Types.FixedLenByteArray && c.TypeLength() == 16
	case types.Time64NS:
		switch col.phys {
		case parquet.Types.Int96:
			ok = true
		case parquet.Types.Int64:
			ok = true
			unit := arrow.Nanosecond
			if lt, isTS := c.LogicalType().(*schema.TimestampLogicalType); isTS {
				switch lt.TimeUnit() {
				case schema.TimeUnitMillis:
					unit = arrow.Millisecond
				case schema.TimeUnitMicros:
					unit = arrow.Microsecond
				}
			} else if ts, isTS := at.(*arrow.TimestampType); isTS {
				unit = ts.Unit
			}
			col.mult = map[arrow.TimeUnit]int64{arrow.Second: 1e9, arrow.Millisecond: 1e6, arrow.Microsecond: 1e3, arrow.Nanosecond: 1}[unit]
		}
	}
	if !ok {
		return col, fmt.Errorf("column %s: cannot read Parquet %v (%v) as %v", c.Name(), col.phys, c.LogicalType(), t)
	}
	return col, nil
}

// stats converts a column chunk's statistics to pxq's values. A chunk
// with nulls (or that may have some) also holds the zero value, which is
// what a null reads as.
func (c *pqColumn) stats(cc *metadata.ColumnChunkMetaData) ColumnStats {
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() {
		return ColumnStats{}
	}
	var out ColumnStats
	switch s := st.(type) {
	case *metadata.Int64Statistics:
		lo, hi := s.Min(), s.Max()
		if c.mult != 1 {
			if lo > math.MaxInt64/c.mult || lo < math.MinInt64/c.mult || hi > math.MaxInt64/c.mult || hi < math.MinInt64/c.mult {
				return ColumnStats{}
			}
			lo, hi = lo*c.mult, hi*c.mult
		}
		out = ColumnStats{Known: true, Min: lo, Max: hi}
	case *metadata.Int32Statistics:
		lo, hi := int64(s.Min()), int64(s.Max())
		if c.uint32 {
			lo, hi = int64(uint32(s.Min())), int64(uint32(s.Max()))
		}
		out = ColumnStats{Known: true, Min: lo, Max: hi}
	case *metadata.Float64Statistics:
		if math.IsNaN(s.Min()) || math.IsNaN(s.Max()) {
			return ColumnStats{}
		}
		out = ColumnStats{Known: true, Min: s.Min(), Max: s.Max()}
	case *metadata.Float32Statistics:
		lo, hi := float64(s.Min()), float64(s.Max())
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return ColumnStats{}
		}
		out = ColumnStats{Known: true, Min: lo, Max: hi}
	case *metadata.ByteArrayStatistics:
		out = ColumnStats{Known: true, Min: string(s.Min()), Max: string(s.Max())}
	case *metadata.BooleanStatistics:
		out = ColumnStats{Known: true, Min: s.Min(), Max: s.Max()}
	default:
		return ColumnStats{}
	}
	if c.maxDef > 0 && (!st.HasNullCount() || st.NullCount() > 0) {
		out = widen(out, zeroOf(c.t))
	}
	return out
}

// zeroOf is the value a null of type t reads as.
func zeroOf(t types.DataType) any {
	switch t {
	case types.Float64:
		return 0.0
	case types.String:
		return ""
	case types.Boolean:
		return false
	}
	return int64(0)
}

// widen extends a range to hold v.
func widen(s ColumnStats, v any) ColumnStats {
	switch x := v.(type) {
	case int64:
		s.Min, s.Max = min(s.Min.(int64), x), max(s.Max.(int64), x)
	case float64:
		s.Min, s.Max = min(s.Min.(float64), x), max(s.Max.(float64), x)
	case string:
		s.Min, s.Max = min(s.Min.(string), x), max(s.Max.(string), x)
	case bool:
		if !x {
			s.Min = false
		}
	}
	return s
}

func (p *parquetFile) relation() types.Relation { return p.rel }
func (p *parquetFile) units() []Unit            { return p.us }
func (p *parquetFile) close() error             { return p.cf.f.Close() }

func (p *parquetFile) open(index int, cols []int, opts ReadOptions, reads *readCounter) (UnitReader, error) {
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = opts.Incremental
	pr, err := file.NewParquetReader(&seeker{countingFile: p.cf}, file.WithReadProps(props), file.WithMetadata(p.md))
	if err != nil {
		return nil, err
	}
	rg := pr.RowGroup(index)
	u := &parquetUnit{left: rg.NumRows(), max: opts.BatchRows, next: opts.BatchRows}
	if opts.Incremental {
		// A scan that will likely stop early starts small.
		u.next = min(1024, opts.BatchRows)
	}
	rel := make(types.Relation, len(cols))
	for i, c := range cols {
		col := &p.cols[c]
		var dict *Dict
		if opts.Codes != nil {
			dict = opts.Codes[i]
		}
		cc, err := rg.MetaData().ColumnChunk(col.leaf)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", p.rel[c].Name, err)
		}
		if pageDecoding && pageDecodable(col, cc.Encodings()) {
			pages, err := rg.GetColumnPageReader(col.leaf)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", p.rel[c].Name, err)
			}
			u.decs = append(u.decs, &pageDecoder{col: col, pages: pages, coded: dict})
		} else {
			cr, err := rg.Column(col.leaf)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", p.rel[c].Name, err)
			}
			var d columnDecoder = &pqDecoder{col: col, rd: cr}
			if dict != nil {
				d = &coder{columnDecoder: d, dict: dict}
			}
			u.decs = append(u.decs, d)
		}
		rel[i] = p.rel[c]
	}
	u.schema = codedRelation(rel, opts.Codes).ArrowSchema()
	return u, nil
}

// pageDecoding turns pageDecoder on; benchmarks turn it off to compare.
var pageDecoding = true

// parquetUnit reads one row group.
type parquetUnit struct {
	left      int64
	next, max int // rows of the next batch, and the most
	decs      []columnDecoder
	schema    *arrow.Schema
}

// columnDecoder decodes a column chunk n values at a time: pageDecoder
// for the common encodings, pqDecoder for the others.
type columnDecoder interface {
	read(n int) (arrow.Array, error)
	name() string
}

func (d *pqDecoder) name() string   { return d.col.name }
func (d *pageDecoder) name() string { return d.col.name }

func (u *parquetUnit) Next() (arrow.Record, error) {
	if u.left <= 0 {
		return nil, nil
	}
	n := int(min(int64(u.next), u.left))
	u.next = min(u.next*4, u.max)
	cols := make([]arrow.Array, len(u.decs))
	for i, d := range u.decs {
		a, err := d.read(n)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", d.name(), err)
		}
		cols[i] = a
	}
	u.left -= int64(n)
	return array.NewRecord(u.schema, cols, int64(n)), nil
}

func (u *parquetUnit) Close() error {
	u.decs, u.left = nil, 0
	return nil
}

// pqDecoder decodes one column chunk, n values at a time. Its scratch
// slices are reused from batch to batch; what it returns is new.
type pqDecoder struct {
	col  *pqColumn
	rd   file.ColumnChunkReader
	defs []int16
	i32  []int32
	f32  []float32
	bs   []bool
	ba   []parquet.ByteArray
	fl   []parquet.FixedLenByteArray
	i96  []parquet.Int96
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// read decodes the next n values of the column.
func (d *pqDecoder) read(n int) (arrow.Array, error) {
	var defs []int16
	if d.col.maxDef > 0 {
		d.defs = grow(d.defs, n)
		defs = d.defs
	}
	var levels int64
	var nv int
	var err error
	check := func() error {
		if err != nil {
			return err
		}
		if levels != int64(n) {
			return fmt.Errorf("the column chunk ended after %d of %d values", levels, n)
		}
		return nil
	}
	// present reports, when some values were null, which rows have one:
	// values come packed, nulls read as zero values.
	present := func(i int) bool { return defs[i] == d.col.maxDef }
	switch r := d.rd.(type) {
	case *file.Int64ColumnChunkReader:
		vals := make([]int64, n)
		levels, nv, err = r.ReadBatch(int64(n), vals, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		if nv < n {
			spread(vals, nv, present)
		}
		if d.col.mult != 1 {
			for i := range vals {
				vals[i] *= d.col.mult
			}
		}
		return fixedArray(d.col.t.Arrow(), n, int64Bytes(vals)), nil
	case *file.Int32ColumnChunkReader:
		d.i32 = grow(d.i32, n)
		levels, nv, err = r.ReadBatch(int64(n), d.i32, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		vals := make([]int64, n)
		for i, v := range d.i32[:nv] {
			if d.col.uint32 {
				vals[i] = int64(uint32(v))
			} else {
				vals[i] = int64(v)
			}
		}
		if nv < n {
			spread(vals, nv, present)
		}
		return fixedArray(arrow.PrimitiveTypes.Int64, n, int64Bytes(vals)), nil
	case *file.Float64ColumnChunkReader:
		vals := make([]float64, n)
		levels, nv, err = r.ReadBatch(int64(n), vals, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		if nv < n {
			spread(vals, nv, present)
		}
		return fixedArray(arrow.PrimitiveTypes.Float64, n, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), 8*n)), nil
	case *file.Float32ColumnChunkReader:
		d.f32 = grow(d.f32, n)
		levels, nv, err = r.ReadBatch(int64(n), d.f32, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		vals := make([]float64, n)
		for i, v := range d.f32[:nv] {
			vals[i] = float64(v)
		}
		if nv < n {
			spread(vals, nv, present)
		}
		return fixedArray(arrow.PrimitiveTypes.Float64, n, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), 8*n)), nil
	case *file.BooleanColumnChunkReader:
		d.bs = grow(d.bs, n)
		levels, nv, err = r.ReadBatch(int64(n), d.bs, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		if nv < n {
			spread(d.bs, nv, present)
		}
		bits := make([]byte, (n+7)/8)
		for i, v := range d.bs {
			if v {
				bits[i>>3] |= 1 << (uint(i) & 7)
			}
		}
		return fixedArray(arrow.FixedWidthTypes.Boolean, n, bits), nil
	case *file.ByteArrayColumnChunkReader:
		d.ba = grow(d.ba, n)
		levels, nv, err = r.ReadBatch(int64(n), d.ba, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		vals := d.ba[:nv]
		total := 0
		for _, v := range vals {
			total += len(v)
		}
		if total > math.MaxInt32 {
			return nil, fmt.Errorf("%d bytes of strings in %d rows: more than a batch holds", total, n)
		}
		off := make([]int32, n+1)
		data := make([]byte, total)
		pos, k := 0, 0
		for i := 0; i < n; i++ {
			if nv == n || present(i) {
				pos += copy(data[pos:], vals[k])
				k++
			}
			off[i+1] = int32(pos)
		}
		return stringArray(off, data), nil
	case *file.FixedLenByteArrayColumnChunkReader:
		d.fl = grow(d.fl, n)
		levels, nv, err = r.ReadBatch(int64(n), d.fl, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		data := make([]byte, 16*n)
		k := 0
		for i := 0; i < n; i++ {
			if nv == n || present(i) {
				if len(d.fl[k]) != 16 {
					return nil, fmt.Errorf("a value of %d bytes in a 16-byte column", len(d.fl[k]))
				}
				copy(data[16*i:], d.fl[k])
				k++
			}
		}
		return fixedArray(types.UInt128Type, n, data), nil
	case *file.Int96ColumnChunkReader:
		d.i96 = grow(d.i96, n)
		levels, nv, err = r.ReadBatch(int64(n), d.i96, defs, nil)
		if err := check(); err != nil {
			return nil, err
		}
		vals := make([]int64, n)
		for i, v := range d.i96[:nv] {
			vals[i] = v.ToTime().UnixNano()
		}
		if nv < n {
			spread(vals, nv, present)
		}
		return fixedArray(types.TimeType, n, int64Bytes(vals)), nil
	}
	return nil, fmt.Errorf("unsupported Parquet column reader %T", d.rd)
}

// spread moves the nv packed values of vals to the rows that have one,
// from the back so that nothing is overwritten before it moves, and sets
// the other rows to the zero value.
func spread[T any](vals []T, nv int, present func(int) bool) {
	var zero T
	k := nv - 1
	for i := len(vals) - 1; i >= 0; i-- {
		if present(i) {
			vals[i] = vals[k]
			k--
		} else {
			vals[i] = zero
		}
	}
}

func int64Bytes(v []int64) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*8)
}

// fixedArray wraps the values of a fixed-width column (not copied).
func fixedArray(dt arrow.DataType, n int, b []byte) arrow.Array {
	return array.MakeFromData(array.NewData(dt, n, []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0))
}

// stringArray wraps offsets (n+1, from 0) and value bytes (not copied).
func stringArray(off []int32, data []byte) arrow.Array {
	ob := unsafe.Slice((*byte)(unsafe.Pointer(&off[0])), len(off)*4)
	return array.MakeFromData(array.NewData(arrow.BinaryTypes.String, len(off)-1,
		[]*memory.Buffer{nil, memory.NewBufferBytes(ob), memory.NewBufferBytes(data)}, nil, 0, 0))
}
