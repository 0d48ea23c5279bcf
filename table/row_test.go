package table

import (
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/types"
)

var otherCols struct {
	Time TimeCol  `col:"time_" desc:"time"`
	N    Int64Col `col:"n" desc:"a number"`
}

var otherDecl = Declare("other", "another table", &otherCols)

// setAll sets every column of a testDecl row.
func setAll(r *Row) {
	testCols.Time.Set(r, 1)
	testCols.UPID.Set(r, types.UPID(1, 2, 3))
	testCols.Path.Set(r, "/p")
	testCols.Latency.Set(r, 4)
	testCols.Ratio.Set(r, 0.5)
	testCols.OK.Set(r, true)
}

// TestRowChecks: a row that misses a column, sets one twice or takes a
// handle of another table is refused whole, and the next row is fine.
func TestRowChecks(t *testing.T) {
	w, err := testDecl.Create(NewStore(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		row  func(r *Row)
		want string
	}{
		{"missing", func(r *Row) { setAll(r); r.End(); testCols.Time.Set(r, 1) }, "misses column upid, path, latency, ratio, ok"},
		{"twice", func(r *Row) { setAll(r); testCols.Path.Set(r, "/q") }, "set column path twice"},
		{"foreign", func(r *Row) { setAll(r); otherCols.N.Set(r, 1) }, "column of another table"},
	} {
		r := w.Row()
		c.row(r)
		err := r.End()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: End() = %v, want %q", c.name, err, c.want)
		}
		setAll(r)
		if err := r.End(); err != nil {
			t.Errorf("%s: the next row: %v", c.name, err)
		}
	}
	w.Flush()
	// The "missing" case appended one whole row before its bad one.
	if rows, refused := w.Counts(); rows != 4 || refused != 3 {
		t.Errorf("counts: %d rows, %d refused; want 4, 3", rows, refused)
	}
	n := 0
	for _, b := range w.t.Snapshot(0, 0) {
		n += int(b.Record.NumRows())
	}
	if n != 4 {
		t.Errorf("table has %d rows, want 4", n)
	}
}

// A declaration's writer refuses a table whose columns differ from it,
// and a writer made without a declaration refuses rows built by handle.
func TestDeclWriterChecksColumns(t *testing.T) {
	s := NewStore(0)
	rel := testDecl.Relation()
	rel[2], rel[3] = rel[3], rel[2]
	tb, err := s.Create("swapped", rel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testDecl.Writer(tb); err == nil {
		t.Error("a writer over a table with two columns swapped")
	}
	if _, err := s.Create("t", otherDecl.Relation(), Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := testDecl.Create(s); err == nil {
		t.Error("Create over an existing table of other columns")
	}
	r := NewWriter(tb).Row()
	setAll(r)
	if err := r.End(); err == nil {
		t.Error("a writer without a declaration took a row")
	}
}

func TestDeclarePanics(t *testing.T) {
	for name, cols := range map[string]any{
		"not a pointer": struct{}{},
		"no columns":    &struct{}{},
		"not a handle":  &struct{ X int }{},
		"no desc": &struct {
			X Int64Col `col:"x"`
		}{},
		"twice": &struct {
			X Int64Col `col:"x" desc:"x"`
			Y Int64Col `col:"x" desc:"y"`
		}{},
		"bad semantic type": &struct {
			X Int64Col `col:"x" sem:"ST_NOPE" desc:"x"`
		}{},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Declare did not panic", name)
				}
			}()
			Declare("bad", "a bad declaration", cols)
		}()
	}
}
