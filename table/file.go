package table

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"

	"github.com/pxq-dev/pxq/types"
)

// Files hold tables for offline analysis and sharing: Arrow IPC (.arrow,
// .ipc, .feather), Parquet (.parquet) and CSV (.csv). Captures (folders
// of such files with their metadata) are the capture package's.

// ReadFile reads a table from a file, by its extension. known, when not
// nil, is the relation the table should have (used to type CSV columns).
func ReadFile(path string, known types.Relation) (types.Relation, []arrow.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readFrom(f, path, known)
}

// ReadFS reads the table file name of fsys, as ReadFile does.
func ReadFS(fsys fs.FS, name string, known types.Relation) (types.Relation, []arrow.Record, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readFrom(f, name, known)
}

// randomAccess is what the Arrow IPC file and Parquet readers need of a
// file (os.File and the files of embed.FS have it).
type randomAccess interface {
	io.ReaderAt
	io.ReadSeeker
}

func readFrom(f fs.File, name string, known types.Relation) (types.Relation, []arrow.Record, error) {
	var rel types.Relation
	var recs []arrow.Record
	var err error
	ext := strings.ToLower(filepath.Ext(name))
	ra, ok := f.(randomAccess)
	switch {
	case ext == ".csv":
		rel, recs, err = readCSV(f, known)
	case ext != ".arrow" && ext != ".ipc" && ext != ".feather" && ext != ".arrows" && ext != ".parquet" && ext != ".pq":
		return nil, nil, fmt.Errorf("%s: unknown file type (want .arrow, .parquet or .csv)", name)
	case !ok:
		err = fmt.Errorf("the file system gives no random access")
	case ext == ".parquet" || ext == ".pq":
		rel, recs, err = readParquet(ra)
	default:
		rel, recs, err = readIPC(ra)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return rel, recs, nil
}

// Load adds the rows of the files pattern names (a file, a folder of
// table files or a glob, as ExpandPaths reads it) to the table name,
// made when the store lacks it. Parquet and Arrow IPC files stay where
// they are, read by scans as they need them (AttachFiles); CSV files and
// Arrow IPC streams are read into memory. known, when not nil, is the
// relation the table must have; it also types CSV columns.
func (s *Store) Load(name, pattern string, known types.Relation) (*Table, error) {
	paths, err := ExpandPaths(pattern)
	if err != nil {
		return nil, err
	}
	t, _, err := s.LoadPaths(name, paths, known)
	return t, err
}

// Loaded describes the rows LoadPaths added.
type Loaded struct {
	Rows             int64
	MinTime, MaxTime int64 // of time_ (0, 0 when unknown)
}

// LoadPaths is Load of a list of files.
func (s *Store) LoadPaths(name string, paths []string, known types.Relation) (*Table, Loaded, error) {
	var scan, whole []string
	for _, p := range paths {
		if Scannable(p) && !isIPCStream(p) {
			scan = append(scan, p)
		} else {
			whole = append(whole, p)
		}
	}
	var t *Table
	var l Loaded
	span := func(lo, hi int64) {
		if l.MinTime == 0 && l.MaxTime == 0 {
			l.MinTime, l.MaxTime = lo, hi
		} else if lo != 0 || hi != 0 {
			l.MinTime, l.MaxTime = min(l.MinTime, lo), max(l.MaxTime, hi)
		}
	}
	if len(scan) > 0 {
		ft, err := OpenFiles(scan, known)
		if err != nil {
			return nil, l, fmt.Errorf("table %s: %w", name, err)
		}
		if t, err = s.AttachFiles(name, ft); err != nil {
			ft.Close()
			return nil, l, fmt.Errorf("%s: %w", scan[0], err)
		}
		known = ft.Relation()
		l.Rows = ft.Rows()
		if lo, hi, ok := ft.TimeRange(); ok {
			span(lo, hi)
		}
	}
	for _, p := range whole {
		rel, recs, err := ReadFile(p, known)
		if err != nil {
			return nil, l, fmt.Errorf("table %s: %w", name, err)
		}
		if t, err = s.LoadRecords(name, rel, recs); err != nil {
			return nil, l, fmt.Errorf("%s: %w", p, err)
		}
		if i := rel.Index("time_"); i >= 0 && rel[i].Type == types.Time64NS {
			for _, r := range recs {
				if r.NumRows() > 0 {
					span(timeRange(r.Column(i)))
				}
			}
		}
		for _, r := range recs {
			l.Rows += r.NumRows()
		}
	}
	return t, l, nil
}

// isIPCStream reports whether an Arrow file is in the stream format (no
// "ARROW1" magic), which is read whole.
func isIPCStream(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".arrow", ".ipc", ".feather":
	default:
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false // the open that follows says why
	}
	defer f.Close()
	magic := make([]byte, 6)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) != "ARROW1"
}

// LoadRecords adds rows read from a file to the table name, made with rel
// if the store does not have it. Loaded data is kept for as long as the
// store lives (a table made here never expires by age).
func (s *Store) LoadRecords(name string, rel types.Relation, recs []arrow.Record) (*Table, error) {
	t, err := s.Create(name, rel, Options{MaxAge: 100 * 365 * 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if err := t.Append(r); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func readIPC(f randomAccess) (types.Relation, []arrow.Record, error) {
	// Both the file format and the stream format are accepted.
	if fr, err := ipc.NewFileReader(f); err == nil {
		defer fr.Close()
		var recs []arrow.Record
		for i := 0; i < fr.NumRecords(); i++ {
			r, err := fr.Record(i)
			if err != nil {
				return nil, nil, err
			}
			r.Retain()
			recs = append(recs, r)
		}
		return normalize(fr.Schema(), recs)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	sr, err := ipc.NewReader(f)
	if err != nil {
		return nil, nil, err
	}
	defer sr.Release()
	var recs []arrow.Record
	for sr.Next() {
		r := sr.Record()
		r.Retain()
		recs = append(recs, r)
	}
	if err := sr.Err(); err != nil {
		return nil, nil, err
	}
	return normalize(sr.Schema(), recs)
}

func readParquet(f randomAccess) (types.Relation, []arrow.Record, error) {
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, nil, err
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 64*1024)
	defer tr.Release()
	var recs []arrow.Record
	for tr.Next() {
		r := tr.Record()
		r.Retain()
		recs = append(recs, r)
	}
	return normalize(tbl.Schema(), recs)
}

// normalize converts columns to pxq's Arrow types (timestamps to ns, small
// ints to int64, float32 to float64) and reads the relation.
func normalize(s *arrow.Schema, recs []arrow.Record) (types.Relation, []arrow.Record, error) {
	rel, err := types.FromArrowSchema(s)
	if err != nil {
		return nil, nil, err
	}
	want := rel.ArrowSchema()
	out := make([]arrow.Record, len(recs))
	for i, r := range recs {
		cols := make([]arrow.Array, r.NumCols())
		for c := range cols {
			col, err := convertColumn(r.Column(c), rel[c].Type)
			if err != nil {
				return nil, nil, fmt.Errorf("column %s: %w", rel[c].Name, err)
			}
			cols[c] = col
		}
		out[i] = array.NewRecord(want, cols, r.NumRows())
	}
	return rel, out, nil
}

func convertColumn(a arrow.Array, t types.DataType) (arrow.Array, error) {
	if arrow.TypeEqual(a.DataType(), t.Arrow()) {
		return a, nil
	}
	mem := memory.DefaultAllocator
	n := a.Len()
	switch t {
	case types.Time64NS:
		ts, ok := a.(*array.Timestamp)
		if !ok {
			break
		}
		mult := map[arrow.TimeUnit]int64{arrow.Second: 1e9, arrow.Millisecond: 1e6, arrow.Microsecond: 1e3, arrow.Nanosecond: 1}[ts.DataType().(*arrow.TimestampType).Unit]
		b := array.NewTimestampBuilder(mem, types.TimeType)
		for i := 0; i < n; i++ {
			b.Append(arrow.Timestamp(int64(ts.Value(i)) * mult))
		}
		return b.NewArray(), nil
	case types.Int64:
		b := array.NewInt64Builder(mem)
		for i := 0; i < n; i++ {
			var v int64
			switch x := a.(type) {
			case *array.Int32:
				v = int64(x.Value(i))
			case *array.Int16:
				v = int64(x.Value(i))
			case *array.Int8:
				v = int64(x.Value(i))
			case *array.Uint32:
				v = int64(x.Value(i))
			case *array.Uint16:
				v = int64(x.Value(i))
			case *array.Uint8:
				v = int64(x.Value(i))
			default:
				return nil, fmt.Errorf("cannot read %v as INT64", a.DataType())
			}
			b.Append(v)
		}
		return b.NewArray(), nil
	case types.Float64:
		if x, ok := a.(*array.Float32); ok {
			b := array.NewFloat64Builder(mem)
			for i := 0; i < n; i++ {
				b.Append(float64(x.Value(i)))
			}
			return b.NewArray(), nil
		}
	case types.String:
		b := array.NewStringBuilder(mem)
		switch x := a.(type) {
		case *array.LargeString:
			for i := 0; i < n; i++ {
				b.Append(x.Value(i))
			}
			return b.NewArray(), nil
		case *array.Binary:
			for i := 0; i < n; i++ {
				b.Append(string(x.Value(i)))
			}
			return b.NewArray(), nil
		}
	}
	return nil, fmt.Errorf("cannot read %v as %v", a.DataType(), t)
}

// readCSV reads a CSV file with a header. Columns are typed by known when
// it names them; otherwise each column takes the narrowest type that fits
// every value: INT64, FLOAT64, BOOLEAN, TIME64NS (RFC 3339, or a column
// named time_ holding integers) or STRING.
func readCSV(f io.Reader, known types.Relation) (types.Relation, []arrow.Record, error) {
	r := csv.NewReader(f)
	r.ReuseRecord = false
	rows, err := r.ReadAll()
	if err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("no header")
	}
	header, rows := rows[0], rows[1:]
	rel := make(types.Relation, len(header))
	for c, name := range header {
		name = strings.TrimSpace(name)
		if i := known.Index(name); i >= 0 {
			rel[c] = known[i]
			continue
		}
		rel[c] = types.Column{Name: name, Type: inferType(name, rows, c), Semantic: types.STNone}
		if rel[c].Type == types.Time64NS {
			rel[c].Semantic = types.STTimeNS
		}
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, rel.ArrowSchema())
	defer b.Release()
	for line, row := range rows {
		for c := range rel {
			v := ""
			if c < len(row) {
				v = row[c]
			}
			if err := appendCSV(b.Field(c), rel[c].Type, v); err != nil {
				return nil, nil, fmt.Errorf("line %d column %s: %w", line+2, rel[c].Name, err)
			}
		}
	}
	return rel, []arrow.Record{b.NewRecord()}, nil
}

func inferType(name string, rows [][]string, c int) types.DataType {
	all := func(ok func(string) bool) bool {
		for _, r := range rows {
			if c < len(r) && !ok(r[c]) {
				return false
			}
		}
		return true
	}
	isInt := func(s string) bool { _, err := strconv.ParseInt(s, 10, 64); return err == nil }
	if name == "time_" && all(isInt) {
		return types.Time64NS
	}
	switch {
	case all(isInt):
		return types.Int64
	case all(func(s string) bool { _, err := strconv.ParseFloat(s, 64); return err == nil }):
		return types.Float64
	case all(func(s string) bool { _, err := strconv.ParseBool(s); return err == nil }):
		return types.Boolean
	case all(func(s string) bool { _, err := time.Parse(time.RFC3339Nano, s); return err == nil }):
		return types.Time64NS
	}
	return types.String
}

func appendCSV(b array.Builder, t types.DataType, s string) error {
	switch t {
	case types.Int64:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil && s != "" {
			return err
		}
		b.(*array.Int64Builder).Append(v)
	case types.Float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil && s != "" {
			return err
		}
		b.(*array.Float64Builder).Append(v)
	case types.Boolean:
		v, err := strconv.ParseBool(s)
		if err != nil && s != "" {
			return err
		}
		b.(*array.BooleanBuilder).Append(v)
	case types.Time64NS:
		var ns int64
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			ns = v
		} else if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			ns = t.UnixNano()
		} else if s != "" {
			return fmt.Errorf("%q is not a time", s)
		}
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(ns))
	case types.UInt128:
		var u types.UInt128Value
		parts := strings.Split(s, ":")
		if len(parts) == 3 {
			a, _ := strconv.ParseUint(parts[0], 10, 32)
			p, _ := strconv.ParseUint(parts[1], 10, 32)
			st, _ := strconv.ParseUint(parts[2], 10, 64)
			u = types.UPID(uint32(a), uint32(p), st)
		} else if s != "" {
			return fmt.Errorf("%q is not a UPID (asid:pid:start)", s)
		}
		b.(*array.FixedSizeBinaryBuilder).Append(u.Bytes())
	default:
		b.(*array.StringBuilder).Append(s)
	}
	return nil
}

// WriteFile writes the rows of t's batches to a file, by its extension.
func WriteFile(path string, rel types.Relation, recs []arrow.Record) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	schema := rel.ArrowSchema()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		tbl := array.NewTableFromRecords(schema, recs)
		defer tbl.Release()
		// WriteTable closes what it writes to; keep the file for our Close.
		err = pqarrow.WriteTable(tbl, struct{ io.Writer }{f}, rowGroupRows, parquetProps(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	case ".csv":
		err = fmt.Errorf("writing CSV files: use `pxq run -o csv`")
	default:
		var w *ipc.FileWriter
		w, err = ipc.NewFileWriter(f, ipc.WithSchema(schema))
		if err == nil {
			for _, r := range recs {
				if err = w.Write(array.NewRecord(schema, r.Columns(), r.NumRows())); err != nil {
					break
				}
			}
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// withoutNulls returns a with every null replaced by its type's zero
// value (0, "", false), as pxq reads nulls: it has none. a itself is
// returned when it has no nulls.
func withoutNulls(a arrow.Array) arrow.Array {
	if a.NullN() == 0 {
		return a
	}
	n := a.Len()
	switch x := a.(type) {
	case *array.String:
		off := make([]int32, n+1)
		var data []byte
		for i := 0; i < n; i++ {
			if x.IsValid(i) {
				data = append(data, x.Value(i)...)
			}
			off[i+1] = int32(len(data))
		}
		return stringArray(off, data)
	case *array.Boolean:
		bits := make([]byte, (n+7)/8)
		for i := 0; i < n; i++ {
			if x.IsValid(i) && x.Value(i) {
				bits[i>>3] |= 1 << (uint(i) & 7)
			}
		}
		return fixedArray(a.DataType(), n, bits)
	}
	fw, ok := a.DataType().(arrow.FixedWidthDataType)
	if !ok || fw.BitWidth()%8 != 0 {
		return a
	}
	w := fw.BitWidth() / 8
	src := a.Data().Buffers()[1].Bytes()[a.Data().Offset()*w:]
	vals := make([]byte, n*w)
	copy(vals, src[:n*w])
	for i := 0; i < n; i++ {
		if a.IsNull(i) {
			clear(vals[i*w : (i+1)*w])
		}
	}
	return fixedArray(a.DataType(), n, vals)
}
