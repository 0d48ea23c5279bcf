package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/compute"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// Options tune Write.
type Options struct {
	// PXQVersion is recorded in the manifest (engine.Version).
	PXQVersion string
	// Keep, when set, keeps only the processes whose pid it accepts: in
	// process_stats (a /proc sample of every process on the host) and in
	// the processes file. Other tables are written whole.
	Keep func(pid uint32) bool
}

// KeepPIDs returns an Options.Keep that accepts pids.
func KeepPIDs(pids ...uint32) func(uint32) bool {
	m := make(map[uint32]bool, len(pids))
	for _, p := range pids {
		m[p] = true
	}
	return func(pid uint32) bool { return m[pid] }
}

// Write saves the rows of store's non-empty tables to dir (made if
// needed), with what meta knows of them over their time range: the
// processes their upid columns name and meta's Snapshot. It looks every
// process up now, so call it while they are known (before the sources
// stop remembering them). The manifest is written last: a folder with
// tables but no manifest was not completely written.
func Write(dir string, store *table.Store, meta metadata.Provider, opts Options) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	// An old manifest would describe the tables being replaced.
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("capture: %w", err)
	}
	m := &Manifest{Format: FormatVersion, PXQVersion: opts.PXQVersion, Created: time.Now().UTC()}
	seen := map[types.UInt128Value]bool{}
	var upids []types.UInt128Value
	for _, t := range store.Tables() {
		all, err := t.ReadAll() // rows loaded from files too
		if err != nil {
			return nil, fmt.Errorf("capture of %s: %w", t.Name(), err)
		}
		recs, rows, err := keptRecords(t.Name(), all, opts.Keep)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			for _, u := range upidsOf(rec) {
				if !seen[u] && (opts.Keep == nil || opts.Keep(u.PID())) {
					seen[u] = true
					upids = append(upids, u)
				}
			}
		}
		if len(recs) == 0 {
			continue
		}
		ti := TableInfo{Name: t.Name(), File: t.Name() + ".parquet", Rows: rows}
		ti.StartNS, ti.EndNS = timeRange(recs)
		if err := table.WriteFile(filepath.Join(dir, ti.File), t.Relation(), recs); err != nil {
			return nil, fmt.Errorf("capture: %w", err)
		}
		m.Tables = append(m.Tables, ti)
		m.StartNS, m.EndNS = widen(m.StartNS, m.EndNS, ti.StartNS, ti.EndNS)
	}

	if err := finish(dir, m, meta, upids); err != nil {
		return nil, err
	}
	return m, nil
}

// finish writes the side files of the capture m describes, whose rows
// name upids, and its manifest last.
func finish(dir string, m *Manifest, meta metadata.Provider, upids []types.UInt128Value) error {
	start, end := m.StartNS, m.EndNS
	if start == 0 && end == 0 { // no times: everything the provider knows
		end = 1<<63 - 1
	}
	snap := metadata.Take(meta, start, end, upids)
	snap.StartNS, snap.EndNS = m.StartNS, m.EndNS
	m.Metadata = snap.Mode
	m.Hosts = hostsOf(snap)

	procs := make([]processRecord, len(snap.Processes))
	for i, p := range snap.Processes {
		procs[i] = processRecord{UPID: p.UPID.String(), Process: *p}
	}
	for _, f := range []struct {
		name string
		v    any
	}{{ProcessesFile, procs}, {MetadataFile, snap}, {ManifestFile, m}} {
		if err := writeJSON(filepath.Join(dir, f.name), f.v); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
	}
	return nil
}

// keptRecords returns the records of a table's batches that a capture
// keeps, and their rows: the non-empty ones, and of process_stats only
// the processes keep accepts (when not nil).
func keptRecords(name string, batches []table.Batch, keep func(uint32) bool) ([]arrow.Record, int64, error) {
	var recs []arrow.Record
	var rows int64
	for _, b := range batches {
		rec := b.Record
		if name == "process_stats" && keep != nil {
			var err error
			if rec, err = keepPIDs(rec, keep); err != nil {
				return nil, 0, fmt.Errorf("capture of %s: %w", name, err)
			}
		}
		if rec.NumRows() == 0 {
			continue
		}
		recs = append(recs, rec)
		rows += rec.NumRows()
	}
	return recs, rows, nil
}

// writeJSON writes v, indented, through a temporary file renamed into
// place, so that a reader never sees half a file.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// upidColumn returns rec's upid column, or nil.
func upidColumn(rec arrow.Record) *array.FixedSizeBinary {
	for i, f := range rec.Schema().Fields() {
		if f.Name == "upid" {
			if c, ok := rec.Column(i).(*array.FixedSizeBinary); ok {
				return c
			}
		}
	}
	return nil
}

// upidsOf lists the distinct UPIDs of rec's upid column, in row order.
func upidsOf(rec arrow.Record) []types.UInt128Value {
	c := upidColumn(rec)
	if c == nil {
		return nil
	}
	var out []types.UInt128Value
	seen := map[types.UInt128Value]bool{}
	for i := 0; i < c.Len(); i++ {
		if u := types.GetUInt128(c.Value(i)); !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// keepPIDs keeps the rows of rec whose upid's pid keep accepts.
func keepPIDs(rec arrow.Record, keep func(uint32) bool) (arrow.Record, error) {
	c := upidColumn(rec)
	if c == nil {
		return rec, nil
	}
	b := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i := 0; i < c.Len(); i++ {
		b.Append(keep(types.GetUInt128(c.Value(i)).PID()))
	}
	mask := b.NewArray()
	defer mask.Release()
	return compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
}
