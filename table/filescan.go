package table

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/types"
)

// A FileTable is a table held in files (Parquet, Arrow IPC), read on
// demand by file scans: a scan opens only the units it needs (a Parquet
// row group, an Arrow record batch) and decodes only the columns it
// needs, batch by batch, so that memory is bounded by a few batches and
// not by the files. Units carry what the files say about their rows
// (row counts, per-column min and max), which a scan uses to skip whole
// units without reading them.
//
// A FileTable is immutable and safe for concurrent use; every scan opens
// its own readers.
type FileTable struct {
	rel   types.Relation
	files []dataFile
	units []Unit
	size  int64
	rows  int64

	reads struct{ units, chunks, bytes atomic.Int64 }
}

// Unit is the smallest piece of a FileTable a scan reads.
type Unit struct {
	// File is the path of the file holding the unit, Index its position
	// in the file (row group or record batch).
	File  string
	Index int
	Rows  int64
	// Bytes is, per column of the table's relation, what reading that
	// column of this unit reads from the file (compressed), or nil when
	// the format reads whole units (Arrow IPC).
	Bytes []int64
	// Stats is, per column of the table's relation, the range of its
	// values in this unit; Known is false when the file does not say.
	Stats []ColumnStats

	file int
}

// ColumnStats is the range of one column's values in a unit, as pxq
// sees them (a null read as its type's zero value is within the range).
// Min and Max hold int64 (INT64, TIME64NS in ns), float64, string or bool.
type ColumnStats struct {
	Known    bool
	Min, Max any
}

// ReadCounts are what scans have read of a FileTable so far.
type ReadCounts struct {
	Units  int64 // units opened
	Chunks int64 // (unit, column) pairs decoded
	Bytes  int64 // bytes read from the files, metadata included
}

// ReadOptions tune how a unit is read.
type ReadOptions struct {
	// BatchRows caps the rows of each record a UnitReader returns
	// (0: 65536).
	BatchRows int
	// Incremental reads column data as it is decoded rather than each
	// column chunk at once: for scans that will likely stop early (a
	// limit), at the cost of more, smaller reads.
	Incremental bool
	// Codes, when not nil, has per requested column a Dict that numbers
	// its values, or nil: those (STRING) columns come as INT64 codes.
	Codes []*Dict
}

// DefaultBatchRows is the batch size of ReadOptions.BatchRows' zero value.
const DefaultBatchRows = 65536

// UnitReader returns a unit's rows in batches. Next returns nil at the
// end. Records have the requested columns, in the requested order, with
// pxq's Arrow types and no nulls.
type UnitReader interface {
	Next() (arrow.Record, error)
	Close() error
}

// dataFile is one file of a FileTable.
type dataFile interface {
	// relation is the table's relation, as the file was opened for.
	relation() types.Relation
	// units describes the file's units in the table's relation.
	units() []Unit
	// open reads unit index of the file: cols are columns of the
	// table's relation.
	open(index int, cols []int, opts ReadOptions, reads *readCounter) (UnitReader, error)
	close() error
}

// readCounter is the FileTable's counters, shared by its readers.
type readCounter = struct{ units, chunks, bytes atomic.Int64 }

// FileKinds are the extensions of the files a FileTable reads.
var FileKinds = []string{".parquet", ".pq", ".arrow", ".ipc", ".feather"}

// IsTableFile reports whether name has the extension of a table file that
// ReadFile reads (FileKinds, CSV and Arrow IPC streams).
func IsTableFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".parquet", ".pq", ".arrow", ".ipc", ".feather", ".arrows", ".csv":
		return true
	}
	return false
}

// Scannable reports whether a FileTable can read the file (the others are
// read whole, by ReadFile).
func Scannable(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, k := range FileKinds {
		if ext == k {
			return true
		}
	}
	return false
}

// ExpandPaths returns the table files a --table or capture argument
// names, sorted: the file itself, every table file of a folder, or every
// table file matching a glob (path/filepath.Match syntax).
func ExpandPaths(pattern string) ([]string, error) {
	if st, err := os.Stat(pattern); err == nil {
		if !st.IsDir() {
			return []string{pattern}, nil
		}
		entries, err := os.ReadDir(pattern)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range entries {
			if !e.IsDir() && IsTableFile(e.Name()) {
				out = append(out, filepath.Join(pattern, e.Name()))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no table files (.parquet, .arrow, .csv) in the folder", pattern)
		}
		return out, nil
	} else if !strings.ContainsAny(pattern, "*?[") {
		return nil, err
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pattern, err)
	}
	var out []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && !st.IsDir() && IsTableFile(m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no table files match", pattern)
	}
	sort.Strings(out)
	return out, nil
}

// OpenFiles opens Parquet and Arrow IPC files as one table, reading only
// their metadata. want, when not nil, is the relation the table must
// have (a declared table's): every file must hold each of its columns,
// by name, in a type that reads as the column's, and no other column.
// When want is nil the first file's columns are the table's, and the
// other files must have the same.
func OpenFiles(paths []string, want types.Relation) (*FileTable, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no files")
	}
	t := &FileTable{rel: want}
	for _, p := range paths {
		f, size, err := openDataFile(p, t.rel, &t.reads)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if t.rel == nil {
			t.rel = f.relation()
		}
		for _, u := range f.units() {
			u.file = len(t.files)
			t.units = append(t.units, u)
			t.rows += u.Rows
		}
		t.files = append(t.files, f)
		t.size += size
	}
	return t, nil
}

func openDataFile(path string, want types.Relation, reads *readCounter) (dataFile, int64, error) {
	if !Scannable(path) {
		return nil, 0, fmt.Errorf("not a file a scan reads (want %s)", strings.Join(FileKinds, ", "))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	var df dataFile
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		df, err = openParquet(f, path, st.Size(), want, reads)
	default:
		df, err = openIPC(f, path, st.Size(), want, reads)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return df, st.Size(), nil
}

// Relation returns the table's columns.
func (t *FileTable) Relation() types.Relation { return t.rel }

// Units returns the table's units, file by file in the order the files
// were given.
func (t *FileTable) Units() []Unit { return t.units }

// Rows returns the rows of every unit.
func (t *FileTable) Rows() int64 { return t.rows }

// Size returns the bytes of the table's files.
func (t *FileTable) Size() int64 { return t.size }

// Files returns the number of files.
func (t *FileTable) Files() int { return len(t.files) }

// TimeRange returns the smallest and largest time_ of the table's rows,
// as the files' statistics say; ok is false when the table has no time_
// column or a file does not say.
func (t *FileTable) TimeRange() (lo, hi int64, ok bool) {
	c := t.rel.Index("time_")
	if c < 0 || t.rel[c].Type != types.Time64NS {
		return 0, 0, false
	}
	first := true
	for _, u := range t.units {
		if u.Rows == 0 {
			continue
		}
		st := u.Stats[c]
		if !st.Known {
			return 0, 0, false
		}
		if first || st.Min.(int64) < lo {
			lo = st.Min.(int64)
		}
		if first || st.Max.(int64) > hi {
			hi = st.Max.(int64)
		}
		first = false
	}
	return lo, hi, !first
}

// Reads returns what scans have read so far.
func (t *FileTable) Reads() ReadCounts {
	return ReadCounts{Units: t.reads.units.Load(), Chunks: t.reads.chunks.Load(), Bytes: t.reads.bytes.Load()}
}

// Open reads unit u (an index into Units) with the columns cols of the
// table's relation, in that order.
func (t *FileTable) Open(u int, cols []int, opts ReadOptions) (UnitReader, error) {
	if u < 0 || u >= len(t.units) {
		return nil, fmt.Errorf("table file: no unit %d (there are %d)", u, len(t.units))
	}
	for i, c := range cols {
		if c < 0 || c >= len(t.rel) {
			return nil, fmt.Errorf("table file: no column %d (there are %d)", c, len(t.rel))
		}
		if opts.Codes != nil && opts.Codes[i] != nil && t.rel[c].Type != types.String {
			return nil, fmt.Errorf("table file: column %s is %v: only strings are numbered", t.rel[c].Name, t.rel[c].Type)
		}
	}
	if opts.Codes != nil && len(opts.Codes) != len(cols) {
		return nil, fmt.Errorf("table file: %d codes for %d columns", len(opts.Codes), len(cols))
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	unit := t.units[u]
	r, err := t.files[unit.file].open(unit.Index, cols, opts, &t.reads)
	if err != nil {
		return nil, fmt.Errorf("%s: unit %d: %w", unit.File, unit.Index, err)
	}
	t.reads.units.Add(1)
	t.reads.chunks.Add(int64(len(cols)))
	return &namedReader{UnitReader: r, name: fmt.Sprintf("%s: row group %d", unit.File, unit.Index)}, nil
}

// namedReader names the unit in its errors.
type namedReader struct {
	UnitReader
	name string
}

func (r *namedReader) Next() (arrow.Record, error) {
	rec, err := r.UnitReader.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	return rec, nil
}

// Close closes the table's files.
func (t *FileTable) Close() error {
	var first error
	for _, f := range t.files {
		if err := f.close(); err != nil && first == nil {
			first = err
		}
	}
	t.files = nil
	return first
}

// countingFile counts the bytes read from a file into the table's
// counters. It is what every reader of a file reads through.
type countingFile struct {
	f     *os.File
	size  int64
	reads *readCounter
}

func (c *countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.reads.bytes.Add(int64(n))
	return n, err
}

// seeker gives a countingFile the Seek of the readers that ask a file's
// size that way; each reader has its own position.
type seeker struct {
	*countingFile
	pos int64
}

func (s *seeker) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("seek: negative position")
	}
	s.pos = off
	return off, nil
}

func (s *seeker) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	n, err := s.ReadAt(p, s.pos)
	s.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// matchRelation maps the columns of a file (have) onto the table's (want):
// for each column of want, its index in have. Types must read as want's
// (types.FromArrow has already mapped have's), and the sets of names
// must be equal.
func matchRelation(have, want types.Relation) ([]int, error) {
	idx := make([]int, len(want))
	for i, c := range want {
		j := have.Index(c.Name)
		if j < 0 {
			return nil, fmt.Errorf("column %s is missing (the table has %s)", c.Name, describe(want))
		}
		if have[j].Type != c.Type {
			return nil, fmt.Errorf("column %s is %v in the file, %v in the table", c.Name, have[j].Type, c.Type)
		}
		idx[i] = j
	}
	for _, c := range have {
		if want.Index(c.Name) < 0 {
			return nil, fmt.Errorf("column %s is not a column of the table (it has %s)", c.Name, describe(want))
		}
	}
	return idx, nil
}

// describe lists a relation's columns for an error message.
func describe(rel types.Relation) string {
	names := rel.Names()
	if len(names) > 12 {
		return strings.Join(names[:12], ", ") + fmt.Sprintf(", … (%d columns)", len(names))
	}
	return strings.Join(names, ", ")
}

// ReadAll returns every row of the table: those of its files, read whole
// (all their columns in memory: for the few commands that need every
// row, like writing a capture), then its in-memory batches.
func (t *Table) ReadAll() ([]Batch, error) {
	var out []Batch
	for _, ft := range t.Files() {
		cols := make([]int, len(ft.Relation()))
		for i := range cols {
			cols[i] = i
		}
		for u := range ft.Units() {
			r, err := ft.Open(u, cols, ReadOptions{BatchRows: 1 << 20})
			if err != nil {
				return nil, err
			}
			for {
				rec, err := r.Next()
				if err != nil {
					r.Close()
					return nil, err
				}
				if rec == nil {
					break
				}
				b := Batch{Record: rec, Bytes: RecordBytes(rec)}
				if t.timeCol >= 0 {
					b.MinTime, b.MaxTime = timeRange(rec.Column(t.timeCol))
				}
				out = append(out, b)
			}
			r.Close()
		}
	}
	return append(out, t.Snapshot(0, 0)...), nil
}
