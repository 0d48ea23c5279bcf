// Package table is pxq's per-node table store: for each table an
// append-only list of immutable Arrow record batches with their time range,
// trimmed by age and by bytes.
//
// Readers take a snapshot, a slice of batches that later appends and
// expiries do not change; a writer never waits for a reader. Batches are
// allocated by the Go allocator and owned by the garbage collector: readers
// must not Release the records of a snapshot.
package table

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

// DefaultMaxAge is how long rows are kept unless configured otherwise.
const DefaultMaxAge = 24 * time.Hour

// Options bound a table's retention. Zero fields mean "no bound" except
// MaxAge, where zero means DefaultMaxAge.
type Options struct {
	MaxAge   time.Duration
	MaxBytes int64
	Desc     string
}

// Batch is one immutable record batch with the range of its time_ column.
type Batch struct {
	Record  arrow.Record
	MinTime int64 // smallest time_ in the batch (0 if the table has no time_)
	MaxTime int64 // largest time_
	Bytes   int64
}

// Table is one table of the store.
type Table struct {
	name     string
	desc     string
	rel      types.Relation
	schema   *arrow.Schema
	timeCol  int
	opts     Options
	mu       sync.Mutex              // serialises writers
	batches  atomic.Pointer[[]Batch] // readers load without locking
	bytes    atomic.Int64
	rows     atomic.Int64
	added    atomic.Int64 // batches ever added
	expired  atomic.Int64 // batches ever expired
	addBytes atomic.Int64
	files    atomic.Pointer[[]*FileTable] // rows held in files
	store    *Store                       // the store whose total bound applies
	// dropped counts the rows the byte bounds evicted, and droppedSince
	// is when the first went (unix ns), so that a command that needs
	// every row (pxq capture) can say what it lost.
	dropped      atomic.Int64
	droppedSince atomic.Int64
}

// Name returns the table's name.
func (t *Table) Name() string { return t.name }

// Desc returns the table's description.
func (t *Table) Desc() string { return t.desc }

// Relation returns the table's columns.
func (t *Table) Relation() types.Relation { return t.rel }

// Schema returns the Arrow schema every batch of the table has.
func (t *Table) Schema() *arrow.Schema { return t.schema }

// Append adds a record batch. Its columns must match the table's relation by
// name and type. The record must not be changed afterwards; the table keeps
// a reference.
func (t *Table) Append(rec arrow.Record) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if int(rec.NumCols()) != len(t.rel) {
		return fmt.Errorf("table %s: batch has %d columns, table has %d", t.name, rec.NumCols(), len(t.rel))
	}
	for i, c := range t.rel {
		f := rec.Schema().Field(i)
		if f.Name != c.Name || !arrow.TypeEqual(f.Type, c.Type.Arrow()) {
			return fmt.Errorf("table %s: column %d is %s %v, want %s %v", t.name, i, f.Name, f.Type, c.Name, c.Type.Arrow())
		}
	}
	if !rec.Schema().Equal(t.schema) {
		// Normalise field metadata so that every batch shares one schema.
		cols := rec.Columns()
		rec = array.NewRecord(t.schema, cols, rec.NumRows())
	} else {
		rec.Retain()
	}
	b := Batch{Record: rec, Bytes: RecordBytes(rec)}
	if t.timeCol >= 0 {
		b.MinTime, b.MaxTime = timeRange(rec.Column(t.timeCol))
	}
	t.mu.Lock()
	// Appending in place is safe: snapshots end at their own length and
	// never see the element written past it (load caps them), and only
	// this writer, under t.mu, appends. Copying the slice on every append
	// cost O(batches) per flush.
	next := append(t.loadFull(), b)
	t.batches.Store(&next)
	t.bytes.Add(b.Bytes)
	t.rows.Add(rec.NumRows())
	t.added.Add(1)
	t.addBytes.Add(b.Bytes)
	t.mu.Unlock()
	if t.store != nil {
		t.store.added(b.Bytes)
	}
	return nil
}

// Drain removes every in-memory batch from the table and returns them,
// oldest first: for a writer that moves rows elsewhere (a capture
// spilling to its files) before the byte bounds would drop them.
// Snapshots taken before keep their batches.
func (t *Table) Drain() []Batch {
	t.mu.Lock()
	all := t.load()
	var bytes, rows int64
	for _, b := range all {
		bytes += b.Bytes
		rows += b.Record.NumRows()
	}
	t.batches.Store(new([]Batch))
	t.bytes.Add(-bytes)
	t.rows.Add(-rows)
	t.mu.Unlock()
	if t.store != nil {
		t.store.bytes.Add(-bytes)
	}
	return all
}

// load returns the batches, capped so that a reader's append copies.
func (t *Table) load() []Batch {
	all := t.loadFull()
	return all[:len(all):len(all)]
}

// loadFull returns the batches with the capacity appends write into.
func (t *Table) loadFull() []Batch {
	if p := t.batches.Load(); p != nil {
		return *p
	}
	return nil
}

// Files returns the files holding rows of the table besides its batches
// (AttachFiles), which scans read before the batches.
func (t *Table) Files() []*FileTable {
	if p := t.files.Load(); p != nil {
		return *p
	}
	return nil
}

// Snapshot returns the in-memory batches (not the rows of Files) that may
// hold rows with start <= time_ < end.
// end <= 0 means no upper bound. Batches are in append order; rows outside
// the range may be present and must be filtered by the reader.
func (t *Table) Snapshot(start, end int64) []Batch {
	all := t.load()
	if t.timeCol < 0 || (start <= 0 && end <= 0) {
		return all
	}
	out := make([]Batch, 0, len(all))
	for _, b := range all {
		if b.MaxTime < start || (end > 0 && b.MinTime >= end) {
			continue
		}
		out = append(out, b)
	}
	return out
}

// Stats describes a table's contents.
type Stats struct {
	Name           string
	Rows, Bytes    int64
	Batches        int
	BatchesAdded   int64
	BatchesExpired int64
	BytesAdded     int64
	MaxBytes       int64
	MinTime        int64
	// FileBytes is the size of the files holding rows of the table
	// (Rows counts theirs too; Bytes is what memory holds).
	FileBytes int64
	// RowsDropped counts the rows the byte bounds (the table's and the
	// store's) evicted, DroppedSince is when the first went (unix ns, 0
	// when none did). Rows past MaxAge are not counted.
	RowsDropped, DroppedSince int64
}

// Stats returns counters of the table.
func (t *Table) Stats() Stats {
	all := t.load()
	s := Stats{Name: t.name, Rows: t.rows.Load(), Bytes: t.bytes.Load(), Batches: len(all),
		BatchesAdded: t.added.Load(), BatchesExpired: t.expired.Load(), BytesAdded: t.addBytes.Load(), MaxBytes: t.opts.MaxBytes,
		RowsDropped: t.dropped.Load(), DroppedSince: t.droppedSince.Load()}
	if len(all) > 0 {
		s.MinTime = all[0].MinTime
	}
	for _, f := range t.Files() {
		s.Rows += f.Rows()
		s.FileBytes += f.Size()
		if lo, _, ok := f.TimeRange(); ok && (s.MinTime == 0 || lo < s.MinTime) {
			s.MinTime = lo
		}
	}
	return s
}

// expire drops whole batches older than now-MaxAge and, oldest first, the
// batches over MaxBytes. It returns the bytes freed.
func (t *Table) expire(now time.Time, extraBytes int64) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := t.load()
	maxAge := t.opts.MaxAge
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	cutoff := now.Add(-maxAge).UnixNano()
	bytes := t.bytes.Load()
	i := 0
	var freed, dropped int64
	for i < len(all) {
		b := all[i]
		tooOld := t.timeCol >= 0 && b.MaxTime < cutoff
		tooBig := (t.opts.MaxBytes > 0 && bytes > t.opts.MaxBytes) || extraBytes > freed
		if !tooOld && !tooBig {
			break
		}
		if !tooOld {
			dropped += b.Record.NumRows()
		}
		bytes -= b.Bytes
		freed += b.Bytes
		t.rows.Add(-b.Record.NumRows())
		i++
	}
	if i == 0 {
		return 0
	}
	next := append([]Batch(nil), all[i:]...)
	t.batches.Store(&next)
	t.bytes.Add(-freed)
	t.expired.Add(int64(i))
	if dropped > 0 {
		t.dropped.Add(dropped)
		t.droppedSince.CompareAndSwap(0, now.UnixNano())
	}
	if t.store != nil {
		t.store.bytes.Add(-freed)
	}
	return freed
}

// Store is the set of tables of one node.
type Store struct {
	mu       sync.RWMutex
	tables   map[string]*Table
	maxBytes int64        // total bound across tables; 0 = none
	bytes    atomic.Int64 // in-memory bytes of all tables
	// live is set by RunRetention: from then on an append past maxBytes
	// evicts at once, so that the store never holds more than its bound
	// between two retention passes (10 s of a busy tracer is hundreds of
	// MB). Without it (rows loaded for one query) the bound waits for
	// Expire.
	live atomic.Bool
	trim sync.Mutex // one eviction at a time
}

// NewStore returns an empty store. maxBytes bounds the bytes of all tables
// together (0 for no bound).
func NewStore(maxBytes int64) *Store {
	return &Store{tables: map[string]*Table{}, maxBytes: maxBytes}
}

// Create adds a table, or returns the existing one of that name if its
// relation is the same.
func (s *Store) Create(name string, rel types.Relation, opts Options) (*Table, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tables[name]; ok {
		if err := sameColumns(t.rel, rel); err != nil {
			return nil, fmt.Errorf("table %s has other columns: %w", name, err)
		}
		return t, nil
	}
	t := &Table{name: name, desc: opts.Desc, rel: rel, schema: rel.ArrowSchema(), timeCol: -1, opts: opts, store: s}
	if i := rel.Index("time_"); i >= 0 && rel[i].Type == types.Time64NS {
		t.timeCol = i
	}
	s.tables[name] = t
	return t, nil
}

// sameColumns says how rel differs from the table's columns have, by
// name, type and position.
func sameColumns(have, rel types.Relation) error {
	for i, c := range rel {
		switch {
		case i >= len(have):
			return fmt.Errorf("column %s is not one of its %d columns", c.Name, len(have))
		case c.Name != have[i].Name:
			return fmt.Errorf("column %d is %s, not %s", i, have[i].Name, c.Name)
		case c.Type != have[i].Type:
			return fmt.Errorf("column %s is %v, not %v", c.Name, have[i].Type, c.Type)
		}
	}
	if len(have) > len(rel) {
		return fmt.Errorf("column %s is missing", have[len(rel)].Name)
	}
	return nil
}

// AttachFiles adds the rows of files to the table name, made with their
// relation when the store does not have it; an existing table must have
// the same columns. Like rows loaded from files, they never expire, and
// they are not counted in the store's bytes (memory holds none of them).
func (s *Store) AttachFiles(name string, f *FileTable) (*Table, error) {
	t, err := s.Create(name, f.Relation(), Options{MaxAge: 100 * 365 * 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	next := append(append([]*FileTable(nil), t.Files()...), f)
	t.files.Store(&next)
	return t, nil
}

// Table returns the named table, or nil.
func (s *Store) Table(name string) *Table {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tables[name]
}

// Tables returns every table, sorted by name.
func (s *Store) Tables() []*Table {
	s.mu.RLock()
	out := make([]*Table, 0, len(s.tables))
	for _, t := range s.tables {
		out = append(out, t)
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Compact merges, in every table, runs of consecutive small batches
// (compact.go) and returns the bytes that saved. A table it cannot
// compact keeps its batches as they were.
func (s *Store) Compact() int64 {
	var saved int64
	for _, t := range s.Tables() {
		n, _ := t.compact()
		saved += n
	}
	return saved
}

// Bytes returns the bytes the store's tables hold in memory.
func (s *Store) Bytes() int64 { return s.bytes.Load() }

// MaxBytes returns the store's total bound (0: none).
func (s *Store) MaxBytes() int64 { return s.maxBytes }

// added counts an appended batch and, once retention runs, evicts past
// the total bound. An appender that finds another evicting goes on: that
// one brings the store under its bound.
func (s *Store) added(bytes int64) {
	if s.bytes.Add(bytes) <= s.maxBytes || s.maxBytes <= 0 || !s.live.Load() || !s.trim.TryLock() {
		return
	}
	defer s.trim.Unlock()
	s.trimTotal(s.Tables(), time.Now())
}

// Expire applies every table's age and byte bounds, then the store's total
// bound, taking from the table with the oldest data first.
func (s *Store) Expire(now time.Time) {
	tables := s.Tables()
	for _, t := range tables {
		t.expire(now, 0)
	}
	s.trim.Lock()
	defer s.trim.Unlock()
	s.trimTotal(tables, now)
}

// trimTotal drops the oldest batches until the store is within its bound.
func (s *Store) trimTotal(tables []*Table, now time.Time) {
	var total int64
	for _, t := range tables {
		total += t.bytes.Load()
	}
	for s.maxBytes > 0 && total > s.maxBytes {
		var oldest *Table
		for _, t := range tables {
			all := t.load()
			if len(all) == 0 {
				continue
			}
			if oldest == nil || all[0].MaxTime < oldest.load()[0].MaxTime {
				oldest = t
			}
		}
		if oldest == nil {
			return
		}
		freed := oldest.expire(now, 1) // drop at least one batch
		if freed == 0 {
			return
		}
		total -= freed
	}
}

// RunRetention calls Expire and Compact every period until stop is
// closed. From its start, appends past the store's total bound evict at
// once.
func (s *Store) RunRetention(period time.Duration, stop <-chan struct{}) {
	s.live.Store(true)
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tk.C:
			s.Expire(now)
			s.Compact()
		}
	}
}

// RecordBytes returns the bytes a record takes on the heap: the capacity
// of its buffers (string data, offsets, validity bitmaps, dictionaries and
// children included) and the Go objects around them. Those objects cost
// about 7 KB for a batch of 21 columns, as much as twenty rows of
// http_events: a quiet table flushed every 100 ms holds little more than
// them, and a store bound that ignored them would let the heap grow many
// times past it (TestAccountingMatchesHeap measures both).
func RecordBytes(rec arrow.Record) int64 {
	n := recordOverhead + columnOverhead*rec.NumCols()
	for _, c := range rec.Columns() {
		n += arrayBytes(c.Data())
	}
	return n
}

// The heap overhead of a record besides its buffers' bytes, measured
// for arrow v15 on amd64 (TestAccountingMatchesHeap keeps them honest):
// per record, the record, its slice of arrays and its Batch; per column,
// the array, its Data and its slice of buffers; per buffer, the Buffer.
const (
	recordOverhead = 160
	columnOverhead = 16 + 200
	bufferOverhead = 80
)

func arrayBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += bufferOverhead + int64(cap(b.Buf()))
		}
	}
	for _, c := range d.Children() {
		n += columnOverhead + arrayBytes(c)
	}
	// Dictionary returns a nil *Data in an interface when there is none.
	if dict, ok := d.Dictionary().(*array.Data); ok && dict != nil {
		n += columnOverhead + arrayBytes(dict)
	}
	return n
}

func timeRange(col arrow.Array) (lo, hi int64) {
	ts, ok := col.(*array.Timestamp)
	if !ok || ts.Len() == 0 {
		return 0, 0
	}
	vals := ts.TimestampValues()
	lo, hi = int64(vals[0]), int64(vals[0])
	for _, v := range vals[1:] {
		if int64(v) < lo {
			lo = int64(v)
		}
		if int64(v) > hi {
			hi = int64(v)
		}
	}
	return lo, hi
}
