package format

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/types"
)

var streamRel = types.Relation{
	{Name: "time_", Type: types.Time64NS},
	{Name: "svc", Type: types.String},
	{Name: "n", Type: types.Int64},
	{Name: "x", Type: types.Float64},
}

// streamBatch makes rows [lo, lo+n) of a test table.
func streamBatch(lo, n int) arrow.Record {
	b := array.NewRecordBuilder(memory.DefaultAllocator, streamRel.ArrowSchema())
	defer b.Release()
	for i := lo; i < lo+n; i++ {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000_000 + int64(i)*1e6))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("svc, \"%d\"", i%3)) // quoted in CSV
		b.Field(2).(*array.Int64Builder).Append(int64(i))
		b.Field(3).(*array.Float64Builder).Append(float64(i) / 7)
	}
	return b.NewRecord()
}

// A Stream writes the bytes that CSV and JSON (and pxq run's markers)
// write for the same tables: one table or several, cut or not.
func TestStreamMatchesWriters(t *testing.T) {
	tables := []*Table{
		{Name: "a", Relation: streamRel, Records: []arrow.Record{streamBatch(0, 5), streamBatch(5, 1), streamBatch(6, 30)}},
		{Name: "b", Relation: streamRel, Records: []arrow.Record{streamBatch(100, 2)}, Truncated: true},
		{Name: "empty", Relation: streamRel},
	}
	for _, output := range []string{"csv", "json"} {
		for _, ts := range [][]*Table{tables[:1], tables[1:2], tables} {
			var want bytes.Buffer
			for _, tb := range ts {
				var err error
				if output == "csv" {
					err = CSV(&want, tb, len(ts) > 1)
				} else {
					err = JSON(&want, tb)
				}
				if err != nil {
					t.Fatal(err)
				}
				if tb.Truncated {
					if err := TruncationMarker(&want, output, tb.Name, tb.Rows()); err != nil {
						t.Fatal(err)
					}
				}
			}
			var got bytes.Buffer
			s := NewJSONStream(&got)
			if output == "csv" {
				s = NewCSVStream(&got, len(ts) > 1)
			}
			for _, tb := range ts {
				if err := s.Table(tb.Name, tb.Relation); err != nil {
					t.Fatal(err)
				}
				for _, r := range tb.Records {
					if err := s.Batch(tb.Name, r); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Done(tb.Name, tb.Truncated); err != nil {
					t.Fatal(err)
				}
			}
			if got.String() != want.String() {
				t.Errorf("%s, %d tables:\n got %q\nwant %q", output, len(ts), got.String(), want.String())
			}
			for i, st := range s.Tables() {
				if st.Name != ts[i].Name || st.Rows != ts[i].Rows() || st.Truncated != ts[i].Truncated {
					t.Errorf("%s: summary %+v, table %s of %d rows", output, st, ts[i].Name, ts[i].Rows())
				}
			}
		}
	}
}

// A Stream writes rows before the table ends, and holds at most its
// buffer: a table of 200 k rows reaches the writer batch by batch.
func TestStreamWritesBeforeDone(t *testing.T) {
	for _, s := range []struct {
		name string
		new  func(w *countWriter) *Stream
	}{
		{"csv", func(w *countWriter) *Stream { return NewCSVStream(w, false) }},
		{"json", func(w *countWriter) *Stream { return NewJSONStream(w) }},
	} {
		var w countWriter
		st := s.new(&w)
		if err := st.Table("t", streamRel); err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < 200_000; lo += 10_000 {
			before := w.n
			if err := st.Batch("t", streamBatch(lo, 10_000)); err != nil {
				t.Fatal(err)
			}
			if w.n == before {
				t.Fatalf("%s: a batch of 10,000 rows wrote nothing to the writer", s.name)
			}
			if w.max > 64<<10+4096 {
				t.Fatalf("%s: one write of %d bytes: more than the buffer", s.name, w.max)
			}
		}
		if err := st.Done("t", false); err != nil {
			t.Fatal(err)
		}
		if err := st.Batch("t", streamBatch(0, 1)); err == nil {
			t.Errorf("%s: a batch after Done was taken", s.name)
		}
	}
}

type countWriter struct{ n, max int }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	c.max = max(c.max, len(p))
	return len(p), nil
}
