package table

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// testCols declares testRel's columns, so that rows by position and by
// handle go to one table.
var testCols struct {
	Time    TimeCol    `col:"time_" sem:"ST_TIME_NS" desc:"time"`
	UPID    UInt128Col `col:"upid" sem:"ST_UPID" desc:"process"`
	Path    StringCol  `col:"path" desc:"path"`
	Latency Int64Col   `col:"latency" sem:"ST_DURATION_NS" desc:"latency"`
	Ratio   Float64Col `col:"ratio" sem:"ST_PERCENT" desc:"ratio"`
	OK      BoolCol    `col:"ok" desc:"ok"`
}

var testDecl = Declare("t", "a test table", &testCols)

// TestWriterColumns writes rows of every type through AppendRow and
// declared rows (set in another order than the columns'), across batch
// boundaries, and reads every value back.
func TestWriterColumns(t *testing.T) {
	if got := testDecl.Relation(); fmt.Sprint(got) != fmt.Sprint(testRel) {
		t.Fatalf("declared %v, want %v", got, testRel)
	}
	w, err := testDecl.Create(NewStore(0))
	if err != nil {
		t.Fatal(err)
	}
	tb := w.t
	w.MaxRows = 7
	const n = 100
	str := func(i int) string { return strings.Repeat(fmt.Sprint(i%10), i%13) } // empty strings too
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			err = w.AppendRow(int64(i), types.UPID(uint32(i), uint32(i*3), uint64(i)*10_000_000), str(i), i, float64(i)/4, i%3 == 0)
		} else {
			r := w.Row()
			testCols.OK.Set(r, i%3 == 0)
			testCols.Ratio.Set(r, float64(i)/4)
			if i%4 == 1 {
				testCols.Path.SetBytes(r, []byte(str(i)))
			} else {
				testCols.Path.Set(r, str(i))
			}
			testCols.Latency.Set(r, int64(i))
			testCols.UPID.Set(r, types.UPID(uint32(i), uint32(i*3), uint64(i)*10_000_000))
			testCols.Time.Set(r, int64(i))
			err = r.End()
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 50 {
			w.Flush() // a short batch in the middle
		}
	}
	// A bad row is refused whole and leaves the columns aligned.
	if err := w.AppendRow(int64(1), types.UPID(1, 1, 1), 3, int64(1), 1.0, true); err == nil {
		t.Fatal("a STRING column took an int")
	}
	r := w.Row()
	testCols.Time.Set(r, 1)
	testCols.Path.Set(r, "x")
	if err := r.End(); err == nil || !strings.Contains(err.Error(), "misses column upid, latency, ratio, ok") {
		t.Fatalf("a row with two columns: %v", err)
	}
	if rows, refused := w.Counts(); rows != n || refused != 2 {
		t.Fatalf("counts %d rows, %d refused; want %d, 2", rows, refused, n)
	}
	w.Flush()
	i := 0
	for _, b := range tb.Snapshot(0, 0) {
		r := b.Record
		ts := r.Column(0).(*array.Timestamp)
		up := r.Column(1).(*array.FixedSizeBinary)
		ps := r.Column(2).(*array.String)
		ls := r.Column(3).(*array.Int64)
		fs := r.Column(4).(*array.Float64)
		bs := r.Column(5).(*array.Boolean)
		for j := 0; j < int(r.NumRows()); j++ {
			want := types.UPID(uint32(i), uint32(i*3), uint64(i)*10_000_000)
			if int64(ts.Value(j)) != int64(i) || types.GetUInt128(up.Value(j)) != want || ps.Value(j) != str(i) ||
				ls.Value(j) != int64(i) || fs.Value(j) != float64(i)/4 || bs.Value(j) != (i%3 == 0) {
				t.Fatalf("row %d: got %v %v %q %v %v %v", i, ts.Value(j), types.GetUInt128(up.Value(j)), ps.Value(j), ls.Value(j), fs.Value(j), bs.Value(j))
			}
			i++
		}
		if o := ps.ValueOffsets(); o[0] != 0 || int(o[len(o)-1]) != len(ps.ValueBytes()) {
			t.Fatalf("string offsets %d..%d for %d bytes", o[0], o[len(o)-1], len(ps.ValueBytes()))
		}
	}
	if i != n {
		t.Fatalf("read %d rows, wrote %d", i, n)
	}
}

// benchCols is shaped like the socket tracer's http_events rows.
var benchCols struct {
	Time TimeCol    `col:"time_" desc:"t"`
	UPID UInt128Col `col:"upid" desc:"u"`
	S0   StringCol  `col:"s0" desc:"s"`
	S1   StringCol  `col:"s1" desc:"s"`
	S2   StringCol  `col:"s2" desc:"s"`
	S3   StringCol  `col:"s3" desc:"s"`
	S4   StringCol  `col:"s4" desc:"s"`
	S5   StringCol  `col:"s5" desc:"s"`
	S6   StringCol  `col:"s6" desc:"s"`
	S7   StringCol  `col:"s7" desc:"s"`
	I0   Int64Col   `col:"i0" desc:"i"`
	I1   Int64Col   `col:"i1" desc:"i"`
	I2   Int64Col   `col:"i2" desc:"i"`
	I3   Int64Col   `col:"i3" desc:"i"`
	I4   Int64Col   `col:"i4" desc:"i"`
	I5   Int64Col   `col:"i5" desc:"i"`
	I6   Int64Col   `col:"i6" desc:"i"`
	I7   Int64Col   `col:"i7" desc:"i"`
	I8   Int64Col   `col:"i8" desc:"i"`
	I9   Int64Col   `col:"i9" desc:"i"`
}

var benchDecl = Declare("http", "rows like http_events", &benchCols)

// BenchmarkWriterHTTPRow appends rows shaped like the socket tracer's
// http_events rows (typed values, 512-byte body, headers JSON).
func BenchmarkWriterHTTPRow(b *testing.B) {
	w, err := benchDecl.Create(NewStore(0))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(strings.Repeat("x", 512))
	hdr := []byte(`{"Content-Length":"512","Content-Type":"text/plain","Date":"Wed, 25 Nov 2026 08:00:00 GMT"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body) + 2*len(hdr)))
	c := &benchCols
	for i := 0; i < b.N; i++ {
		r := w.Row()
		c.Time.Set(r, 1)
		c.UPID.Set(r, types.UPID(1, 2, 3))
		c.S0.Set(r, "127.0.0.1")
		c.S1.Set(r, "/bench?q=1")
		c.S2.Set(r, "GET")
		c.S3.SetBytes(r, hdr)
		c.S4.SetBytes(r, nil)
		c.S5.Set(r, "OK")
		c.S6.SetBytes(r, hdr)
		c.S7.SetBytes(r, body)
		for j, h := range []Int64Col{c.I0, c.I1, c.I2, c.I3, c.I4, c.I5, c.I6, c.I7, c.I8, c.I9} {
			h.Set(r, int64(j))
		}
		if err := r.End(); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			// The tracer flushes every 100 ms: about 2,000 rows at
			// 20 k requests a second.
			w.Flush()
		}
	}
	w.Flush()
}

// TestAppendNamed: unnamed columns get zero values, an unknown name is
// refused and leaves the table as it was.
func TestAppendNamed(t *testing.T) {
	s := NewStore(0)
	rel := types.Relation{{Name: "time_", Type: types.Time64NS}, {Name: "n", Type: types.Int64}, {Name: "s", Type: types.String}}
	tb, err := s.Create("t", rel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(tb)
	if err := w.AppendNamed(map[string]any{"time_": int64(5), "s": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := w.AppendNamed(map[string]any{"nope": int64(1)}); err == nil {
		t.Error("an unknown column was accepted")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := tb.Stats(); st.Rows != 1 {
		t.Fatalf("%d rows, want 1", st.Rows)
	}
}

// TestWriterBatchesStayIntact: full batches and a small one in between
// keep their values while the writer goes on, share no buffer, and the
// small one holds buffers of its size, not the writer's.
func TestWriterBatchesStayIntact(t *testing.T) {
	s := NewStore(0)
	rel := types.Relation{{Name: "n", Type: types.Int64}, {Name: "s", Type: types.String}}
	tb, err := s.Create("t", rel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(tb)
	w.MaxRows = 1000
	val := func(i int) string { return strings.Repeat(string(rune('a'+i%26)), i%5) }
	i := 0
	write := func(n int) {
		for ; n > 0; n-- {
			if err := w.AppendRow(i, val(i)); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	write(3000) // three full batches
	write(10)   // a small one, flushed
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	write(1500) // one more full batch and a half one left in the writer
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	batches := tb.Snapshot(0, 0)
	if len(batches) != 6 {
		t.Fatalf("%d batches, want 6", len(batches))
	}
	small := batches[3].Record
	for c, a := range small.Columns() {
		for _, b := range a.Data().Buffers() {
			// Exact but for the allocator's size classes.
			if b != nil && cap(b.Buf()) > b.Len()+b.Len()/4+8 {
				t.Errorf("10-row batch, column %d: buffer of %d bytes holds %d", c, cap(b.Buf()), b.Len())
			}
		}
	}
	// Buffers handed over are not shared by two batches.
	seen := map[*byte]int{}
	j := 0
	for k, b := range batches {
		for c, a := range b.Record.Columns() {
			for _, buf := range a.Data().Buffers() {
				if buf == nil || buf.Len() == 0 {
					continue
				}
				p := &buf.Buf()[0]
				if prev, ok := seen[p]; ok {
					t.Fatalf("batches %d and %d share a buffer of column %d", prev, k, c)
				}
				seen[p] = k
			}
		}
		ns := b.Record.Column(0).(*array.Int64)
		ss := b.Record.Column(1).(*array.String)
		for r := 0; r < int(b.Record.NumRows()); r++ {
			if ns.Value(r) != int64(j) || ss.Value(r) != val(j) {
				t.Fatalf("row %d: %d %q, want %d %q", j, ns.Value(r), ss.Value(r), j, val(j))
			}
			j++
		}
	}
	if j != i {
		t.Fatalf("read %d rows, wrote %d", j, i)
	}
}
