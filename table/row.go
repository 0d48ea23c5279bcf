package table

import (
	"fmt"
	"strings"

	"github.com/pxq-dev/pxq/types"
)

// Row builds one row of a declared table (Decl): every column is set
// once through its handle, in any order, then End appends the row. A row
// that misses a column, sets one twice or sets a column of another table
// is refused whole at End, so the columns stay aligned and a mistake is
// an error on the first row rather than a silent shift. The checks cost a
// compare or two per value.
//
// A Row is reused from row to row and used by one goroutine at a time.
type Row struct {
	// Buf is scratch space for the bytes of the row's values, kept from
	// row to row: a source may append to Buf[:0] and give slices of it
	// to SetBytes, keeping what it appended in Buf. It is not read by the
	// Row.
	Buf []byte

	w    *Writer
	decl uint32
	vals []value
	// seen[i] == gen when column i is set in the current row; gen
	// changes at each End, so nothing is cleared between rows.
	seen []uint32
	gen  uint32
	n    int  // columns set in the current row
	dup  int  // a column set twice in the current row, or -1
	bad  bool // a handle of another table was used
	// spare takes the value of a foreign handle.
	spare value
}

// value is one column's value in a Row.
type value struct {
	i     int64 // BOOLEAN (0 or 1), INT64, TIME64NS, FLOAT64 bits
	u     types.UInt128Value
	s     string
	b     []byte
	bytes bool // a STRING value is b, not s
}

// Row returns the writer's row builder, the same one on every call. The
// writer must come from Decl.Create or Decl.Writer; rows of any other
// writer are refused.
func (w *Writer) Row() *Row {
	if w.row == nil {
		n := len(w.cols)
		w.row = &Row{w: w, vals: make([]value, n), seen: make([]uint32, n), gen: 1, dup: -1}
		if w.decl != nil {
			w.row.decl = w.decl.id
		}
	}
	return w.row
}

func (r *Row) set(c col) *value {
	if c.decl != r.decl || int(c.i) >= len(r.vals) {
		r.bad = true
		return &r.spare
	}
	if r.seen[c.i] == r.gen {
		r.dup = int(c.i)
	} else {
		r.seen[c.i] = r.gen
		r.n++
	}
	return &r.vals[c.i]
}

// End appends the row and starts the next one. It returns an error, and
// appends nothing, when the row misses a column, set one twice or was
// given a handle of another table; the writer counts such rows.
func (r *Row) End() error {
	gen, n, dup, bad := r.gen, r.n, r.dup, r.bad
	r.gen++
	if r.gen == 0 { // wrapped: forget every mark
		clear(r.seen)
		r.gen = 1
	}
	r.n, r.dup, r.bad = 0, -1, false
	if n == len(r.vals) && dup < 0 && !bad {
		return r.w.appendValues(r.vals)
	}
	r.w.refuse()
	return r.err(gen, dup, bad)
}

// err describes a refused row.
func (r *Row) err(gen uint32, dup int, bad bool) error {
	t := r.w.t
	if bad {
		if r.decl == 0 {
			return fmt.Errorf("table %s: row of a writer without a declaration", t.name)
		}
		return fmt.Errorf("table %s: row set a column of another table", t.name)
	}
	if dup >= 0 {
		return fmt.Errorf("table %s: row set column %s twice", t.name, t.rel[dup].Name)
	}
	var missing []string
	for i, g := range r.seen {
		if g != gen {
			missing = append(missing, t.rel[i].Name)
		}
	}
	return fmt.Errorf("table %s: row misses column %s", t.name, strings.Join(missing, ", "))
}
