// Package protocoltest runs a protocol's parser as the tracer does, for
// the protocol's unit and fuzz tests: the parser's rows go through the
// writers of its declared tables into a real table store and are read
// back by column name. A row the writer refuses (a column missing or set
// twice) or a batch whose columns differ from the declaration fails the
// test.
package protocoltest

import (
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Harness is one connection of a protocol, parsed.
type Harness struct {
	t       testing.TB
	Conn    *protocols.Conn
	Parser  protocols.Parser
	Counts  map[string]int64 // the parser's counters
	Store   *table.Store
	writers map[string]*table.Writer
}

// New makes the parser of p for the connection c with cfg, over a store
// that holds p's tables.
func New(t testing.TB, p protocols.Protocol, c protocols.Conn, cfg protocols.Config) *Harness {
	t.Helper()
	h := &Harness{t: t, Conn: &c, Counts: map[string]int64{}, Store: table.NewStore(0), writers: map[string]*table.Writer{}}
	for _, d := range p.Tables() {
		w, err := d.Create(h.Store)
		if err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
		h.writers[d.Name()] = w
	}
	h.Parser = p.NewParser(protocols.Env{
		Conn: h.Conn,
		Cfg:  cfg,
		Row: func(d *table.Decl) *table.Row {
			w := h.writers[d.Name()]
			if w == nil {
				t.Fatalf("%s's parser asked for table %s, which is not in its Tables", p.Name(), d.Name())
			}
			return w.Row()
		},
		Count: func(name string, n int64) { h.Counts[name] += n },
	})
	return h
}

// Rows flushes the table and returns every row written to it so far, each
// as a map from column name to value (see TableRows).
func (h *Harness) Rows(name string) []map[string]any {
	h.t.Helper()
	w := h.writers[name]
	if w == nil {
		h.t.Fatalf("no table %s", name)
	}
	if err := w.Flush(); err != nil {
		h.t.Fatal(err)
	}
	if _, refused := w.Counts(); refused > 0 {
		h.t.Fatalf("table %s: %d rows refused (a column missing or set twice)", name, refused)
	}
	return TableRows(h.t, h.Store.Table(name))
}

// TableRows returns the rows of tb as maps from column name to Go value
// (int64, float64, string, bool, types.UInt128Value; times as int64 ns),
// checking that every batch has the table's columns.
func TableRows(t testing.TB, tb *table.Table) []map[string]any {
	t.Helper()
	if tb == nil {
		return nil
	}
	want := tb.Relation().ArrowSchema()
	var out []map[string]any
	for _, b := range tb.Snapshot(0, 0) {
		rec := b.Record
		if !rec.Schema().Equal(want) {
			t.Fatalf("table %s: a batch has columns %v, the table %v", tb.Name(), rec.Schema(), want)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			r := make(map[string]any, rec.NumCols())
			for j, f := range rec.Schema().Fields() {
				r[f.Name] = Value(rec.Column(j), i)
			}
			out = append(out, r)
		}
	}
	return out
}

// Value returns the i'th value of a as a Go value.
func Value(a arrow.Array, i int) any {
	switch c := a.(type) {
	case *array.Int64:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	case *array.Timestamp:
		return int64(c.Value(i))
	case *array.FixedSizeBinary:
		return types.GetUInt128(c.Value(i))
	case *array.Float64:
		return c.Value(i)
	}
	return nil
}
