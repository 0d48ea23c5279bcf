package table

import (
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// A Dict numbers the distinct values of a STRING column as scans read
// it (ReadOptions.Codes): the column then comes as INT64 codes, and
// Value turns a code back into its string. A Parquet dictionary page is
// numbered once, so a dictionary-encoded column costs a code per row
// instead of its strings, and whoever groups by it hashes integers. Codes
// are dense from 0 in the order values are first numbered (which, with
// several goroutines scanning, is not row order). A Dict is safe for
// concurrent use.
type Dict struct {
	mu   sync.Mutex
	ids  map[string]int64
	vals []string
}

// NewDict returns an empty dictionary.
func NewDict() *Dict { return &Dict{ids: map[string]int64{}} }

// code numbers s; the caller holds d.mu.
func (d *Dict) code(s string) int64 {
	if id, ok := d.ids[s]; ok {
		return id
	}
	id := int64(len(d.vals))
	d.vals = append(d.vals, s)
	d.ids[s] = id
	return id
}

// Code returns the code of s.
func (d *Dict) Code(s string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.code(s)
}

// codeStrings numbers the values of a string column laid out as
// offsets and bytes, into out.
func (d *Dict) codeStrings(off []int32, data []byte, out []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range out {
		out[i] = d.code(string(data[off[i]:off[i+1]]))
	}
}

// CodeArray returns the codes of a STRING array's values.
func (d *Dict) CodeArray(a arrow.Array) arrow.Array {
	s := a.(*array.String)
	out := make([]int64, s.Len())
	d.mu.Lock()
	for i := range out {
		out[i] = d.code(s.Value(i))
	}
	d.mu.Unlock()
	return fixedArray(arrow.PrimitiveTypes.Int64, len(out), int64Bytes(out))
}

// Strings returns the STRING array of codes' values.
func (d *Dict) Strings(codes []int64) arrow.Array {
	d.mu.Lock()
	defer d.mu.Unlock()
	off := make([]int32, len(codes)+1)
	var data []byte
	for i, c := range codes {
		data = append(data, d.vals[c]...)
		off[i+1] = int32(len(data))
	}
	if data == nil {
		data = []byte{}
	}
	return stringArray(off, data)
}

// coder turns a decoder's STRING batches into codes (for the decoders
// that do not number dictionary pages themselves).
type coder struct {
	columnDecoder
	dict *Dict
}

func (c *coder) read(n int) (arrow.Array, error) {
	a, err := c.columnDecoder.read(n)
	if err != nil {
		return nil, err
	}
	return c.dict.CodeArray(a), nil
}

// codedRelation is rel with the coded columns (codes[i] != nil) as INT64.
func codedRelation(rel types.Relation, codes []*Dict) types.Relation {
	if codes == nil {
		return rel
	}
	out := append(types.Relation(nil), rel...)
	for i, d := range codes {
		if d != nil {
			out[i].Type = types.Int64
		}
	}
	return out
}
