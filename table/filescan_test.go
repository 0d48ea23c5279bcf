package table

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet"
	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/pxq-dev/pxq/types"
)

// writeParquet writes rec to path in row groups of group rows.
func writeParquet(t *testing.T, path string, rec arrow.Record, group int64, opts ...parquet.WriterProperty) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]parquet.WriterProperty{parquet.WithMaxRowGroupLength(group), parquet.WithCompression(compress.Codecs.Zstd)}, opts...)
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, parquet.NewWriterProperties(opts...), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// foreign makes rows as another program would write them: nullable
// columns with nulls, narrow ints, float32, microsecond times, and a
// string column with few values (dictionary pages) beside one whose
// values are all different (plain pages once the dictionary is full).
func foreign(n int) arrow.Record {
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time_", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		{Name: "small", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32},
		{Name: "f32", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "kind", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := 0; i < n; i++ {
		null := i%7 == 3
		if null && i%2 == 1 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_000_000 + i))
		}
		if null {
			b.Field(1).AppendNull()
			b.Field(3).AppendNull()
			b.Field(4).AppendNull()
			b.Field(6).AppendNull()
		} else {
			b.Field(1).(*array.Int32Builder).Append(int32(i%100 - 50))
			b.Field(3).(*array.Float32Builder).Append(float32(i) / 4)
			b.Field(4).(*array.StringBuilder).Append([]string{"GET", "POST", "PUT"}[i%3])
			b.Field(6).(*array.BooleanBuilder).Append(i%2 == 0)
		}
		b.Field(2).(*array.Uint32Builder).Append(uint32(4_000_000_000 + i))
		b.Field(5).(*array.StringBuilder).Append(fmt.Sprintf("request-%08d-%s", i, strings.Repeat("x", i%13)))
	}
	return b.NewRecord()
}

// readAll reads every unit of ft with every column.
func readAll(t *testing.T, ft *FileTable, opts ReadOptions) [][]any {
	t.Helper()
	cols := make([]int, len(ft.Relation()))
	for i := range cols {
		cols[i] = i
	}
	var rows [][]any
	for u := range ft.Units() {
		r, err := ft.Open(u, cols, opts)
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec == nil {
				break
			}
			if rec.NumCols() != int64(len(cols)) {
				t.Fatalf("%d columns, want %d", rec.NumCols(), len(cols))
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				row := make([]any, rec.NumCols())
				for c := range row {
					if rec.Column(c).NullN() > 0 {
						t.Fatalf("column %d has nulls", c)
					}
					row[c] = valueAt(rec.Column(c), i)
				}
				rows = append(rows, row)
			}
		}
		r.Close()
	}
	return rows
}

func valueAt(a arrow.Array, i int) any {
	switch x := a.(type) {
	case *array.Int64:
		return x.Value(i)
	case *array.Timestamp:
		return int64(x.Value(i))
	case *array.Float64:
		return x.Value(i)
	case *array.String:
		return x.Value(i)
	case *array.Boolean:
		return x.Value(i)
	case *array.FixedSizeBinary:
		return string(x.Value(i))
	}
	panic(fmt.Sprintf("type %T", a))
}

// TestParquetForeignFile reads files pxq did not write, in several row
// groups, with nulls (read as zero values), dictionary pages, plain pages
// after a full dictionary, data pages v1 and v2, many small pages.
func TestParquetForeignFile(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []parquet.WriterProperty
	}{
		// Small dictionary pages: the id column falls back to plain pages.
		{"v1", []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(4096)}},
		{"v2 small pages", []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(512), parquet.WithBatchSize(64)}},
		{"no dictionary", []parquet.WriterProperty{parquet.WithDictionaryDefault(false), parquet.WithDataPageSize(2048)}},
	} {
		t.Run(c.name, func(t *testing.T) { testForeignFile(t, c.opts) })
	}
}

func testForeignFile(t *testing.T, opts []parquet.WriterProperty) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.parquet")
	const n = 5000
	rec := foreign(n)
	writeParquet(t, path, rec, 1200, opts...)
	ft, err := OpenFiles([]string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	// The page decoder reads the columns of the common encodings, arrow's
	// column readers the others.
	r, err := ft.Open(0, []int{0, 1, 2, 3, 4, 5, 6}, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range r.(*namedReader).UnitReader.(*parquetUnit).decs {
		_, page := d.(*pageDecoder)
		kinds = append(kinds, fmt.Sprint(d.name(), "=", page))
	}
	r.Close()
	if got := strings.Join(kinds, " "); got != "time_=true small=true u32=true f32=false kind=true id=true ok=false" {
		t.Errorf("decoders: %s", got)
	}
	if got := len(ft.Units()); got != 5 {
		t.Fatalf("%d row groups, want 5", got)
	}
	want := types.Relation{
		{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS}, {Name: "small", Type: types.Int64},
		{Name: "u32", Type: types.Int64}, {Name: "f32", Type: types.Float64}, {Name: "kind", Type: types.String},
		{Name: "id", Type: types.String}, {Name: "ok", Type: types.Boolean},
	}
	if fmt.Sprint(ft.Relation()) != fmt.Sprint(want) {
		t.Fatalf("relation %v, want %v", ft.Relation(), want)
	}
	for _, opts := range []ReadOptions{{BatchRows: 333}, {BatchRows: 100000}, {BatchRows: 50, Incremental: true}} {
		rows := readAll(t, ft, opts)
		if len(rows) != n {
			t.Fatalf("%+v: %d rows, want %d", opts, len(rows), n)
		}
		for i, row := range rows {
			null := i%7 == 3
			wantRow := []any{int64(1_000_000+i) * 1000, int64(i%100 - 50), int64(4_000_000_000 + i), float64(i) / 4,
				[]string{"GET", "POST", "PUT"}[i%3], fmt.Sprintf("request-%08d-%s", i, strings.Repeat("x", i%13)), i%2 == 0}
			if null {
				wantRow[1], wantRow[3], wantRow[4], wantRow[6] = int64(0), 0.0, "", false
				if i%2 == 1 {
					wantRow[0] = int64(0)
				}
			}
			if fmt.Sprint(row) != fmt.Sprint(wantRow) {
				t.Fatalf("%+v: row %d: %v, want %v", opts, i, row, wantRow)
			}
		}
	}
	// The string columns numbered by a Dict read as the same strings.
	dict := NewDict()
	var coded []any
	for u := range ft.Units() {
		r, err := ft.Open(u, []int{4, 2, 5}, ReadOptions{BatchRows: 500, Codes: []*Dict{dict, nil, dict}})
		if err != nil {
			t.Fatal(err)
		}
		for {
			rec, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if rec == nil {
				break
			}
			if rec.Schema().Field(0).Type.ID() != arrow.INT64 || rec.Schema().Field(1).Type.ID() != arrow.INT64 {
				t.Fatalf("coded schema %v", rec.Schema())
			}
			kinds := dict.Strings(rec.Column(0).(*array.Int64).Int64Values())
			ids := dict.Strings(rec.Column(2).(*array.Int64).Int64Values())
			for i := 0; i < int(rec.NumRows()); i++ {
				coded = append(coded, fmt.Sprint(valueAt(kinds, i), valueAt(ids, i)))
			}
		}
		r.Close()
	}
	for i, row := range readAll(t, ft, ReadOptions{}) {
		if want := fmt.Sprint(row[4], row[5]); coded[i] != want {
			t.Fatalf("coded row %d: %v, want %v", i, coded[i], want)
		}
	}
	// Statistics: per row group, with the zero value where nulls are.
	u := ft.Units()[1] // rows 1200..2399
	if st := u.Stats[2]; !st.Known || st.Min != int64(4_000_001_200) || st.Max != int64(4_000_002_399) {
		t.Errorf("u32 stats of row group 1: %+v", st)
	}
	if st := u.Stats[1]; !st.Known || st.Min != int64(-50) || st.Max != int64(49) {
		t.Errorf("small stats of row group 1: %+v", st)
	}
	if st := u.Stats[0]; !st.Known || st.Min != int64(0) || st.Max != int64(2399_000)+1_000_000_000 {
		t.Errorf("time_ stats of row group 1 (it has nulls): %+v", st)
	}
	if st := u.Stats[4]; !st.Known || st.Min != "" || st.Max != "PUT" {
		t.Errorf("kind stats of row group 1: %+v", st)
	}
	for i, b := range u.Bytes {
		if b <= 0 {
			t.Errorf("column %d: %d bytes", i, b)
		}
	}
}

// TestFileScanReadsWhatItIsAsked counts the row groups and columns read.
func TestFileScanReadsWhatItIsAsked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.parquet")
	writeParquet(t, path, foreign(3000), 1000)
	ft, err := OpenFiles([]string{path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ft.Close()
	before := ft.Reads()
	if before.Units != 0 || before.Chunks != 0 || before.Bytes <= 0 || before.Bytes >= ft.Size() {
		t.Fatalf("after open: %+v of %d bytes", before, ft.Size())
	}
	r, err := ft.Open(2, []int{5, 1}, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if rec.NumRows() != 1000 || rec.Schema().Field(0).Name != "id" || rec.Schema().Field(1).Name != "small" {
		t.Fatalf("read %d rows of %v", rec.NumRows(), rec.Schema())
	}
	after := ft.Reads()
	u := ft.Units()[2]
	if after.Units != 1 || after.Chunks != 2 {
		t.Errorf("read %+v, want 1 unit, 2 chunks", after)
	}
	if got, want := after.Bytes-before.Bytes, u.Bytes[5]+u.Bytes[1]; got != want {
		t.Errorf("read %d bytes, want the two column chunks' %d", got, want)
	}
	// Incremental reads of a big chunk read less than the chunk.
	big := filepath.Join(dir, "big.parquet")
	writeParquet(t, big, foreign(200000), 200000, parquet.WithDictionaryDefault(false), parquet.WithCompression(compress.Codecs.Uncompressed))
	bt, err := OpenFiles([]string{big}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Close()
	before = bt.Reads()
	r, err = bt.Open(0, []int{5}, ReadOptions{Incremental: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = r.Next(); err != nil || rec.NumRows() != 1024 {
		t.Fatalf("first incremental batch: %v rows, %v", rec, err)
	}
	r.Close()
	if got, chunk := bt.Reads().Bytes-before.Bytes, bt.Units()[0].Bytes[5]; got*4 > chunk {
		t.Errorf("read %d bytes of a %d-byte chunk for 1024 of 200000 rows", got, chunk)
	}
}

// TestFileSchemaMismatch: a file for a declared table must have its
// columns; the error names the column.
func TestFileSchemaMismatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.parquet")
	writeParquet(t, path, foreign(10), 10)
	rel := types.Relation{
		{Name: "time_", Type: types.Time64NS}, {Name: "small", Type: types.Int64}, {Name: "u32", Type: types.Int64},
		{Name: "f32", Type: types.Float64}, {Name: "kind", Type: types.String}, {Name: "id", Type: types.String},
		{Name: "ok", Type: types.Boolean},
	}
	if _, err := OpenFiles([]string{path}, rel); err != nil {
		t.Fatalf("the file's own relation: %v", err)
	}
	cases := []struct {
		rel  types.Relation
		want string
	}{
		{append(rel[:6:6], types.Column{Name: "ok", Type: types.String}), "column ok is BOOLEAN in the file, STRING in the table"},
		{append(rel[:0:0], rel[1:]...), "column time_ is not a column of the table"},
		{append(rel[:7:7], types.Column{Name: "latency", Type: types.Int64}), "column latency is missing"},
	}
	for _, c := range cases {
		_, err := OpenFiles([]string{path}, c.rel)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%v: error %v, want one naming the file and saying %q", c.rel.Names(), err, c.want)
		}
	}
	st := NewStore(0)
	if _, err := st.Create("events", rel[1:], Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := st.Load("events", path, rel[1:])
	if err == nil || !strings.Contains(err.Error(), "column time_") {
		t.Errorf("Load into a declared table: %v, want an error naming time_", err)
	}
}

// TestFilesOfOneTable reads a folder and a glob of Parquet and Arrow IPC
// files as one table.
func TestFilesOfOneTable(t *testing.T) {
	dir := t.TempDir()
	rel := types.Relation{{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS}, {Name: "v", Type: types.Int64}, {Name: "s", Type: types.String}}
	st := NewStore(0)
	tb, _ := st.Create("src", rel, Options{})
	w := NewWriter(tb)
	for i := 0; i < 300; i++ {
		if err := w.AppendRow(int64(1000+i), int64(i), fmt.Sprint("v", i%5)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			w.Flush()
		}
	}
	var recs []arrow.Record
	for _, b := range tb.Snapshot(0, 0) {
		recs = append(recs, b.Record)
	}
	for i, name := range []string{"a.parquet", "b.arrow", "c.parquet"} {
		if err := WriteFile(filepath.Join(dir, name), rel, recs[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a table"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pattern := range []string{dir, filepath.Join(dir, "*")} {
		st := NewStore(0)
		tb, err := st.Load("t", pattern, nil)
		if err != nil {
			t.Fatalf("%s: %v", pattern, err)
		}
		if len(tb.Files()) != 1 || tb.Files()[0].Files() != 3 || tb.Stats().Rows != 300 {
			t.Fatalf("%s: %d file sets, stats %+v", pattern, len(tb.Files()), tb.Stats())
		}
		ft := tb.Files()[0]
		rows := readAll(t, ft, ReadOptions{BatchRows: 64})
		for i, r := range rows {
			if r[0] != int64(1000+i) || r[1] != int64(i) || r[2] != fmt.Sprint("v", i%5) {
				t.Fatalf("%s: row %d: %v", pattern, i, r)
			}
		}
		if lo, hi, ok := ft.TimeRange(); !ok || lo != 1000 || hi != 1299 {
			t.Errorf("%s: time range %d %d %v", pattern, lo, hi, ok)
		}
		ft.Close()
	}
	if _, err := ExpandPaths(filepath.Join(dir, "*.csv")); err == nil || !strings.Contains(err.Error(), "no table files match") {
		t.Errorf("a glob matching nothing: %v", err)
	}
}

// BenchmarkParquetDecode decodes one column of a 1 M-row file of four
// row groups (zstd): a dictionary string column of 4 values, one of 8192,
// a plain string column, and an int64 column of plain pages; with pxq's
// page decoder and with arrow's column chunk readers, interleaved.
func BenchmarkParquetDecode(b *testing.B) {
	const n = 1 << 20
	dir := b.TempDir()
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "method", Type: arrow.BinaryTypes.String}, {Name: "path", Type: arrow.BinaryTypes.String},
		{Name: "id", Type: arrow.BinaryTypes.String}, {Name: "latency", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	bld := array.NewRecordBuilder(mem, schema)
	for i := 0; i < n; i++ {
		x := uint64(i) * 0x9E3779B97F4A7C15
		bld.Field(0).(*array.StringBuilder).Append([]string{"GET", "POST", "PUT", "DELETE"}[x>>62])
		bld.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("/api/v1/items/%d", x>>51))
		bld.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("request-%016x", x))
		bld.Field(3).(*array.Int64Builder).Append(int64(x >> 40))
	}
	path := filepath.Join(dir, "b.parquet")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(n/4),
		parquet.WithCompression(compress.Codecs.Zstd)), pqarrow.DefaultWriterProps())
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Write(bld.NewRecord()); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	ft, err := OpenFiles([]string{path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ft.Close()
	defer func() { pageDecoding = true }()
	for c, name := range []string{"method", "path", "id", "latency"} {
		// Interleaved: pxq's page decoder, arrow's column chunk reader,
		// pqarrow's record reader (row group by row group, as the
		// batches of a scan).
		for _, reader := range []string{"pages", "arrow", "pqarrow", "pages", "arrow", "pqarrow"} {
			b.Run(name+"/"+reader, func(b *testing.B) {
				pageDecoding = reader == "pages"
				for i := 0; i < b.N; i++ {
					if reader == "pqarrow" {
						readPqarrow(b, path, c)
						continue
					}
					for u := range ft.Units() {
						r, err := ft.Open(u, []int{c}, ReadOptions{})
						if err != nil {
							b.Fatal(err)
						}
						for {
							rec, err := r.Next()
							if err != nil {
								b.Fatal(err)
							}
							if rec == nil {
								break
							}
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
			})
		}
	}
}

// TestParquetDictionaryWidths reads dictionary columns of 1 to 70,000
// distinct values (index widths 0 to 17 bits), whole pages of nulls
// among them, in row groups and batches that cut runs.
func TestParquetDictionaryWidths(t *testing.T) {
	dir := t.TempDir()
	for _, distinct := range []int{1, 2, 3, 255, 256, 257, 70000} {
		const n = 20000
		schema := arrow.NewSchema([]arrow.Field{
			{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
			{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		want := make([][2]any, n)
		for r := 0; r < n; r++ {
			// Runs of repeats, then mixed values, then nulls.
			v := (r / 7) % distinct
			if r%3000 > 2000 {
				v = (r * 7919) % distinct
			}
			if r >= 4000 && r < 4600 {
				b.Field(0).AppendNull()
				b.Field(1).AppendNull()
				want[r] = [2]any{"", int64(0)}
				continue
			}
			s := fmt.Sprintf("value-%d", v)
			b.Field(0).(*array.StringBuilder).Append(s)
			b.Field(1).(*array.Int64Builder).Append(int64(v) * 1_000_003)
			want[r] = [2]any{s, int64(v) * 1_000_003}
		}
		path := filepath.Join(dir, fmt.Sprintf("d%d.parquet", distinct))
		writeParquet(t, path, b.NewRecord(), 7000, parquet.WithDataPageSize(1024), parquet.WithDictionaryPageSizeLimit(1<<20))
		ft, err := OpenFiles([]string{path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rows := readAll(t, ft, ReadOptions{BatchRows: 777})
		ft.Close()
		if len(rows) != n {
			t.Fatalf("%d distinct: %d rows", distinct, len(rows))
		}
		for r, row := range rows {
			if row[0] != want[r][0] || row[1] != want[r][1] {
				t.Fatalf("%d distinct: row %d: %v, want %v", distinct, r, row, want[r])
			}
		}
	}
}

// readPqarrow reads column c of every row group with pqarrow's record
// reader, in batches of DefaultBatchRows.
func readPqarrow(b *testing.B, path string, c int) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		b.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: DefaultBatchRows}, memory.DefaultAllocator)
	if err != nil {
		b.Fatal(err)
	}
	for g := 0; g < pr.NumRowGroups(); g++ {
		rr, err := fr.GetRecordReader(context.Background(), []int{c}, []int{g})
		if err != nil {
			b.Fatal(err)
		}
		for rr.Next() {
		}
		if err := rr.Err(); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		rr.Release()
	}
}
