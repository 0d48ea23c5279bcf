package table

import (
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// TestWriterColumns writes rows of every type through AppendRow and
// AppendValues, across batch boundaries, and reads every value back.
func TestWriterColumns(t *testing.T) {
	tb, err := NewStore(0).Create("t", testRel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(tb)
	w.MaxRows = 7
	const n = 100
	str := func(i int) string { return strings.Repeat(fmt.Sprint(i%10), i%13) } // empty strings too
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			err = w.AppendRow(int64(i), types.UPID(uint32(i), uint32(i*3), uint64(i)*10_000_000), str(i), i, float64(i)/4, i%3 == 0)
		} else {
			err = w.AppendValues([]Value{Time(int64(i)), UInt128(types.UPID(uint32(i), uint32(i*3), uint64(i)*10_000_000)),
				StrBytes([]byte(str(i))), Int(int64(i)), Float(float64(i) / 4), Bool(i%3 == 0)})
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
	if err := w.AppendValues([]Value{Time(1), UInt128(types.UPID(1, 1, 1)), Int(3), Int(1), Float(1), Bool(true)}); err == nil {
		t.Fatal("a STRING column took an INT64 value")
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

// BenchmarkWriterHTTPRow appends rows shaped like the socket tracer's
// http_events rows (typed values, 512-byte body, headers JSON).
func BenchmarkWriterHTTPRow(b *testing.B) {
	rel := types.Relation{{Name: "time_", Type: types.Time64NS}, {Name: "upid", Type: types.UInt128}}
	for i := 0; i < 8; i++ {
		rel = append(rel, types.Column{Name: fmt.Sprint("s", i), Type: types.String})
	}
	for i := 0; i < 10; i++ {
		rel = append(rel, types.Column{Name: fmt.Sprint("i", i), Type: types.Int64})
	}
	tb, err := NewStore(0).Create("t", rel, Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := NewWriter(tb)
	body := []byte(strings.Repeat("x", 512))
	hdr := []byte(`{"Content-Length":"512","Content-Type":"text/plain","Date":"Wed, 25 Nov 2026 08:00:00 GMT"}`)
	vals := []Value{Time(1), UInt128(types.UPID(1, 2, 3)), Str("127.0.0.1"), Str("/bench?q=1"), Str("GET"), StrBytes(hdr), StrBytes(nil), Str("OK"), StrBytes(hdr), StrBytes(body)}
	for i := 0; i < 10; i++ {
		vals = append(vals, Int(int64(i)))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body) + 2*len(hdr)))
	for i := 0; i < b.N; i++ {
		if err := w.AppendValues(vals); err != nil {
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
