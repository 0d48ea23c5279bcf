package capture

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// RecordOptions tune a Recorder.
type RecordOptions struct {
	Options
	// Every is how often the store's rows go to the files (5 s when 0).
	Every time.Duration
	// Threshold spills sooner, as soon as the store holds this many
	// bytes (when 0: a quarter of the store's bound, at most 64 MiB):
	// far enough below the bound that the store never evicts rows of the
	// capture, and small enough that the rows waiting for the next spill
	// weigh little beside the rest of the process.
	Threshold int64
	// Warn is told, once per table, when the store dropped rows before
	// they were spilled; nil for none. Close's Dropped says it too.
	Warn func(msg string)
}

// Recorder writes a capture as its rows arrive: every few seconds, or
// sooner when the store fills, it takes (table.Table.Drain) the rows the
// store holds and adds them to the tables' Parquet files as row groups,
// so that a long capture is bounded by disk, not memory. Close writes
// the last rows, the files' footers, the process and metadata files and
// the manifest: the capture is the one Write would have written.
//
// The store's rows go to the files and leave memory: queries on the
// store see only what arrived since the last spill. Rows the store held
// in files before (Store.AttachFiles) are not recorded.
type Recorder struct {
	dir   string
	store *table.Store
	opts  RecordOptions

	mu     sync.Mutex // one spill at a time; guards what follows
	files  map[string]*tableFile
	seen   map[types.UInt128Value]bool
	upids  []types.UInt128Value
	warned map[string]bool
	err    error // the first spill error, returned by Close

	stop chan struct{}
	done chan struct{}
}

// tableFile is one table's file being written.
type tableFile struct {
	info TableInfo
	w    *table.ParquetWriter
}

// Dropped describes rows of one table that the store evicted before the
// recorder could spill them (it fell behind the sources).
type Dropped struct {
	Table string
	Rows  int64
	Since time.Time // when the first went
}

// maxThreshold is the largest default RecordOptions.Threshold.
const maxThreshold = 64 << 20

// Record starts recording store's rows to dir (made if needed; an old
// manifest there is removed). Call Close to finish the capture.
func Record(dir string, store *table.Store, opts RecordOptions) (*Recorder, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if opts.Every <= 0 {
		opts.Every = 5 * time.Second
	}
	if opts.Threshold <= 0 {
		opts.Threshold = store.MaxBytes() / 4
		if opts.Threshold <= 0 || opts.Threshold > maxThreshold {
			opts.Threshold = maxThreshold
		}
	}
	r := &Recorder{dir: dir, store: store, opts: opts, files: map[string]*tableFile{}, seen: map[types.UInt128Value]bool{},
		warned: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run()
	return r, nil
}

// run spills every opts.Every, and sooner past the threshold: the store's
// bytes are looked at every 50 ms, a sum of counters.
func (r *Recorder) run() {
	defer close(r.done)
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	last := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tk.C:
			if now.Sub(last) < r.opts.Every && r.store.Bytes() < r.opts.Threshold {
				continue
			}
			last = now
			r.Spill()
		}
	}
}

// Spill moves the rows the store holds now to the files. The recorder
// calls it on its own; it returns the rows written.
func (r *Recorder) Spill() (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	var rows int64
	for _, t := range r.store.Tables() {
		if st := t.Stats(); st.RowsDropped > 0 && !r.warned[t.Name()] {
			r.warned[t.Name()] = true
			if r.opts.Warn != nil {
				r.opts.Warn(fmt.Sprintf("%s: the store dropped %d rows since %s before they were written (the capture falls behind the sources)",
					t.Name(), st.RowsDropped, time.Unix(0, st.DroppedSince).Format("15:04:05")))
			}
		}
		n, err := r.spillTable(t)
		rows += n
		if err != nil {
			r.err = err
			return rows, err
		}
	}
	return rows, nil
}

// spillTable writes the rows t holds to its file, made on its first rows.
func (r *Recorder) spillTable(t *table.Table) (int64, error) {
	batches := t.Drain()
	if len(batches) == 0 {
		return 0, nil
	}
	recs, rows, err := keptRecords(t.Name(), batches, r.opts.Keep)
	if err != nil || rows == 0 {
		return 0, err
	}
	for _, rec := range recs {
		for _, u := range upidsOf(rec) {
			if !r.seen[u] && (r.opts.Keep == nil || r.opts.Keep(u.PID())) {
				r.seen[u] = true
				r.upids = append(r.upids, u)
			}
		}
	}
	tf := r.files[t.Name()]
	if tf == nil {
		tf = &tableFile{info: TableInfo{Name: t.Name(), File: t.Name() + ".parquet"}}
		if tf.w, err = table.NewParquetWriter(filepath.Join(r.dir, tf.info.File), t.Relation()); err != nil {
			return 0, fmt.Errorf("capture: %w", err)
		}
		r.files[t.Name()] = tf
	}
	if err := tf.w.Write(recs); err != nil {
		return 0, fmt.Errorf("capture: %w", err)
	}
	lo, hi := timeRange(recs)
	tf.info.StartNS, tf.info.EndNS = widen(tf.info.StartNS, tf.info.EndNS, lo, hi)
	tf.info.Rows += rows
	return rows, nil
}

// Abandon stops recording without finishing the capture: no manifest is
// written, so the folder does not open as a capture.
func (r *Recorder) Abandon() {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tf := range r.files {
		tf.w.Close()
	}
}

// Close stops recording, spills what the store holds, closes the files
// and writes the process and metadata files (looking up, through meta,
// the processes the rows name) and the manifest. It also returns the
// rows the store dropped before they could be written, by table.
func (r *Recorder) Close(meta metadata.Provider) (*Manifest, []Dropped, error) {
	close(r.stop)
	<-r.done
	_, err := r.Spill()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := &Manifest{Format: FormatVersion, PXQVersion: r.opts.PXQVersion, Created: time.Now().UTC()}
	for _, tf := range r.files {
		if cerr := tf.w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("capture: %w", cerr)
		}
		m.Tables = append(m.Tables, tf.info)
		m.StartNS, m.EndNS = widen(m.StartNS, m.EndNS, tf.info.StartNS, tf.info.EndNS)
	}
	sort.Slice(m.Tables, func(i, j int) bool { return m.Tables[i].Name < m.Tables[j].Name })
	var dropped []Dropped
	for _, t := range r.store.Tables() {
		if st := t.Stats(); st.RowsDropped > 0 {
			dropped = append(dropped, Dropped{Table: t.Name(), Rows: st.RowsDropped, Since: time.Unix(0, st.DroppedSince)})
		}
	}
	if err != nil {
		return nil, dropped, err
	}
	if err := finish(r.dir, m, meta, r.upids); err != nil {
		return nil, dropped, err
	}
	return m, dropped, nil
}
