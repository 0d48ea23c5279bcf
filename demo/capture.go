package demo

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/compute"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// A demo capture is a folder with one Parquet file per table (as
// table.Store.LoadCapture reads them) and processes.json, the command
// lines of the traced processes, so that ctx['cmdline'] still resolves
// after they exit.

// ProcessesFile is the name of a capture's process list.
const ProcessesFile = "processes.json"

// shipped is the capture recorded from a real `pxq demo --save-capture`
// run, used where eBPF is not allowed.
//
//go:embed testdata/capture
var shipped embed.FS

// ShippedDir is the shipped capture's folder in the source tree, relative
// to this package; tests of other packages load it from there.
const ShippedDir = "testdata/capture"

// ProcessInfo is one entry of processes.json.
type ProcessInfo struct {
	UPID    string `json:"upid"` // asid:pid:start_ns
	Cmdline string `json:"cmdline"`
}

// SaveCapture writes the store's non-empty tables to dir as Parquet files,
// and the command lines of the processes that keep accepts to
// processes.json. Rows of process_stats are kept only for those
// processes; other tables are written whole. A nil keep accepts every
// process.
func SaveCapture(dir string, store *table.Store, meta metadata.Provider, keep func(pid uint32) bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if keep == nil {
		keep = func(uint32) bool { return true }
	}
	seen := map[types.UInt128Value]bool{}
	for _, t := range store.Tables() {
		var recs []arrow.Record
		for _, b := range t.Snapshot(0, 0) {
			rec := b.Record
			if t.Name() == "process_stats" {
				var err error
				if rec, err = filterPIDs(rec, keep); err != nil {
					return fmt.Errorf("capture of %s: %w", t.Name(), err)
				}
			}
			if rec.NumRows() > 0 {
				recs = append(recs, rec)
				collectUPIDs(rec, seen)
			}
		}
		if len(recs) == 0 {
			continue
		}
		if err := table.WriteFile(filepath.Join(dir, t.Name()+".parquet"), t.Relation(), recs); err != nil {
			return err
		}
	}
	var procs []ProcessInfo
	for u := range seen {
		if !keep(u.PID()) {
			continue
		}
		if p := meta.Process(u); p != nil && p.Cmdline != "" {
			procs = append(procs, ProcessInfo{UPID: u.String(), Cmdline: p.Cmdline})
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].UPID < procs[j].UPID })
	b, err := json.MarshalIndent(procs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ProcessesFile), append(b, '\n'), 0o644)
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

func upidAt(c *array.FixedSizeBinary, i int) types.UInt128Value {
	b := c.Value(i)
	var u types.UInt128Value
	for k := 0; k < 8; k++ {
		u.High |= uint64(b[k]) << (8 * k)
		u.Low |= uint64(b[8+k]) << (8 * k)
	}
	return u
}

func collectUPIDs(rec arrow.Record, seen map[types.UInt128Value]bool) {
	c := upidColumn(rec)
	if c == nil {
		return
	}
	for i := 0; i < c.Len(); i++ {
		seen[upidAt(c, i)] = true
	}
}

// filterPIDs keeps the rows of rec whose upid's pid keep accepts.
func filterPIDs(rec arrow.Record, keep func(uint32) bool) (arrow.Record, error) {
	c := upidColumn(rec)
	if c == nil {
		return rec, nil
	}
	b := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i := 0; i < c.Len(); i++ {
		b.Append(keep(upidAt(c, i).PID()))
	}
	mask := b.NewArray()
	defer mask.Release()
	return compute.FilterRecordBatch(context.Background(), rec, mask, compute.DefaultFilterOptions())
}

// LoadCapture loads a capture folder into store and tells procs the
// command lines of its processes. It returns the time of the capture's
// last row, to run scripts "as of" then.
func LoadCapture(dir string, store *table.Store, procs *metadata.Processes) (end int64, err error) {
	if err := store.LoadCapture(dir); err != nil {
		return 0, fmt.Errorf("loading capture %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ProcessesFile)); err == nil && procs != nil {
		var list []ProcessInfo
		if err := json.Unmarshal(b, &list); err != nil {
			return 0, fmt.Errorf("capture %s: %s: %w", dir, ProcessesFile, err)
		}
		for _, p := range list {
			var asid, pid uint32
			var start uint64
			if _, err := fmt.Sscanf(p.UPID, "%d:%d:%d", &asid, &pid, &start); err != nil {
				return 0, fmt.Errorf("capture %s: upid %q: %w", dir, p.UPID, err)
			}
			procs.Observe(metadata.Process{UPID: types.UPID(asid, pid, start), Cmdline: p.Cmdline})
		}
	}
	for _, t := range store.Tables() {
		for _, b := range t.Snapshot(0, 0) {
			end = max(end, b.MaxTime)
		}
	}
	return end, nil
}

// LoadShipped loads the capture shipped inside pxq into store (through a
// temporary folder, removed before it returns).
func LoadShipped(store *table.Store, procs *metadata.Processes) (end int64, err error) {
	tmp, err := os.MkdirTemp("", "pxq-demo-capture-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	sub, err := fs.Sub(shipped, ShippedDir)
	if err != nil {
		return 0, err
	}
	if err := os.CopyFS(tmp, sub); err != nil {
		return 0, fmt.Errorf("unpacking the shipped capture: %w", err)
	}
	return LoadCapture(tmp, store, procs)
}

// PIDSet returns a keep function for SaveCapture that accepts pids.
func PIDSet(pids ...uint32) func(uint32) bool {
	m := map[uint32]bool{}
	for _, p := range pids {
		m[p] = true
	}
	return func(pid uint32) bool { return m[pid] }
}
