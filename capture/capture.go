// Package capture writes and reads pxq's captures: a folder holding what
// a table store recorded and what its metadata provider knew of it, to
// replay anywhere (`pxq run --capture DIR`) with the same answers,
// ctx['cmdline'] and ctx['pod'] included. Every command that saves a
// capture calls Write; every command that loads one calls Open.
//
// A capture folder holds:
//
//	manifest.json    format version, pxq's version, hosts, metadata mode,
//	                 time range, and each table's file, rows and time range
//	NAME.parquet     one per table, with the Arrow schema (semantic types)
//	processes.json   the processes behind the rows: UPID, command line,
//	                 container and pod, as the provider resolved them
//	metadata.json    a metadata.Snapshot: pods, services, replica sets,
//	                 deployments, containers, namespaces and nodes that
//	                 existed during the time range, with their lifetimes,
//	                 pod IP leases and service cluster IPs
//
// Folders written by older pxq versions (no manifest.json) still open: one
// `.arrow` file per table (`pxq run --save-capture`), or Parquet files with
// processes.json (`pxq capture`, `pxq demo --save-capture`). Capture.Note
// says what they lack.
package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow/go/v15/arrow"

	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// FormatVersion is the version of the format Write writes; Open reads it
// and every earlier one.
const FormatVersion = 1

// The files of a capture besides its tables.
const (
	ManifestFile  = "manifest.json"
	ProcessesFile = "processes.json"
	MetadataFile  = "metadata.json"
)

// Manifest describes a capture: manifest.json.
type Manifest struct {
	// Format is the capture format's version (0: an older capture
	// without a manifest, described by Open).
	Format int `json:"format"`
	// PXQVersion is the version of the pxq that wrote the capture.
	PXQVersion string `json:"pxq_version"`
	// Created is when the capture was written.
	Created time.Time `json:"created"`
	// Hosts names the hosts the rows come from.
	Hosts []string `json:"hosts"`
	// Metadata is the mode of the provider the capture's metadata comes
	// from (metadata.ModeKubernetes, ModeHost or ModeNone).
	Metadata string `json:"metadata"`
	// StartNS and EndNS are the smallest and largest time_ of any row
	// (ns since the epoch; 0 when no table has a time_ column).
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`
	// Tables lists the tables, sorted by name.
	Tables []TableInfo `json:"tables"`
}

// TableInfo describes one table of a capture.
type TableInfo struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Rows    int64  `json:"rows"`
	StartNS int64  `json:"start_ns,omitempty"`
	EndNS   int64  `json:"end_ns,omitempty"`
}

// Capture is an opened capture folder.
type Capture struct {
	// Manifest describes the capture. For an older capture, Open fills
	// in the tables' names and files, and Load their rows and times.
	Manifest Manifest
	// Note says, for a capture written by an older pxq, what it lacks and
	// how to upgrade it; it is "" for a current capture.
	Note string

	name string // for messages: the folder
	dir  string // the folder on disk ("" for a capture in an fs.FS)
	fsys fs.FS
	snap *metadata.Snapshot
}

// Open opens the capture in the folder dir: its manifest and its process
// and metadata files. Load then reads its tables.
func Open(dir string) (*Capture, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("capture %s: not a folder", dir)
	}
	c, err := OpenFS(os.DirFS(dir), dir)
	if err != nil {
		return nil, err
	}
	c.dir = dir
	return c, nil
}

// OpenFS opens a capture held in fsys (such as one embedded in the
// binary); name names it in messages.
func OpenFS(fsys fs.FS, name string) (*Capture, error) {
	c := &Capture{name: name, fsys: fsys}
	b, err := fs.ReadFile(fsys, ManifestFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := c.openLegacy(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, c.errorf("%w", err)
	default:
		if err := json.Unmarshal(b, &c.Manifest); err != nil {
			return nil, c.errorf("%s: %w", ManifestFile, err)
		}
		if f := c.Manifest.Format; f < 1 || f > FormatVersion {
			return nil, c.errorf("format %d, but this pxq reads formats 1 to %d: use a newer pxq", f, FormatVersion)
		}
		c.snap = &metadata.Snapshot{Mode: metadata.ModeNone}
		if err := c.readJSON(MetadataFile, c.snap); err != nil {
			return nil, err
		}
	}
	procs, err := c.readProcesses()
	if err != nil {
		return nil, err
	}
	c.snap.Processes = procs
	return c, nil
}

// openLegacy describes a capture written before manifests: every table
// file of the folder, and processes.json when there is one.
func (c *Capture) openLegacy() error {
	entries, err := fs.ReadDir(c.fsys, ".")
	if err != nil {
		return c.errorf("%w", err)
	}
	exts := map[string]int{}
	hasProcs := false
	for _, e := range entries {
		switch name := e.Name(); {
		case name == MetadataFile:
			return c.errorf("%s without %s: the capture was not completely written", MetadataFile, ManifestFile)
		case name == ProcessesFile:
			hasProcs = true
		case !e.IsDir():
			ext := path.Ext(name)
			switch ext {
			case ".arrow", ".parquet", ".csv":
				c.Manifest.Tables = append(c.Manifest.Tables, TableInfo{Name: strings.TrimSuffix(name, ext), File: name, Rows: -1})
				exts[ext]++
			}
		}
	}
	if len(c.Manifest.Tables) == 0 {
		return c.errorf("no %s and no table files: not a capture", ManifestFile)
	}
	c.Manifest.Metadata = metadata.ModeNone
	if hasProcs {
		// Only `pxq capture` and `pxq demo` wrote processes.json, both
		// in host mode.
		c.Manifest.Metadata = metadata.ModeHost
	}
	c.snap = &metadata.Snapshot{Mode: c.Manifest.Metadata}
	kind := "Parquet tables with processes.json"
	lacks := "no Kubernetes metadata and no hostname"
	if exts[".arrow"] > 0 {
		kind = ".arrow tables"
	}
	if !hasProcs {
		lacks = "no process or metadata side files, so ctx['cmdline'], ctx['pod'] and the other metadata of its rows are empty"
	}
	c.Note = fmt.Sprintf("note: capture %s was written by an older pxq (%s, no %s): it has %s. "+
		"Save it in the current format with: pxq run px/http_data --capture %s --save-capture NEW_DIR",
		c.name, kind, ManifestFile, lacks, c.name)
	return nil
}

// processRecord is one entry of processes.json. Older captures have only
// upid and cmdline.
type processRecord struct {
	UPID string `json:"upid"` // asid:pid:start_ns
	metadata.Process
}

func (c *Capture) readProcesses() ([]*metadata.Process, error) {
	var recs []processRecord
	if err := c.readJSON(ProcessesFile, &recs); err != nil {
		return nil, err
	}
	out := make([]*metadata.Process, len(recs))
	for i, r := range recs {
		u, err := parseUPID(r.UPID)
		if err != nil {
			return nil, c.errorf("%s: %w", ProcessesFile, err)
		}
		p := r.Process
		p.UPID = u
		if p.PID == 0 {
			p.PID = int64(u.PID())
		}
		out[i] = &p
	}
	return out, nil
}

// readJSON decodes the file name into v; a missing file leaves v as is.
func (c *Capture) readJSON(name string, v any) error {
	b, err := fs.ReadFile(c.fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return c.errorf("%s: %w", name, err)
	}
	return nil
}

func parseUPID(s string) (types.UInt128Value, error) {
	var asid, pid uint32
	var start uint64
	if n, err := fmt.Sscanf(s, "%d:%d:%d", &asid, &pid, &start); err != nil || n != 3 {
		return types.UInt128Value{}, fmt.Errorf("upid %q: want asid:pid:start_ns", s)
	}
	return types.UPID(asid, pid, start), nil
}

func (c *Capture) errorf(format string, args ...any) error {
	return fmt.Errorf("capture %s: "+format, append([]any{c.name}, args...)...)
}

// Load adds the capture's tables to store, creating those it lacks. A
// capture on disk keeps its Parquet (and Arrow) files where they are:
// queries scan them as they need (table.FileTable), reading only the
// columns and row groups a query needs; a table's file may also be a
// folder or a glob of files, read as one table. A capture in an fs.FS
// (the one shipped inside pxq) is read into memory. A table whose rows
// differ from the manifest's count is an error (a truncated copy).
func (c *Capture) Load(store *table.Store) error {
	m := &c.Manifest
	for i := range m.Tables {
		ti := &m.Tables[i]
		rows, lo, hi, err := c.loadTable(store, ti)
		if err != nil {
			return err
		}
		if ti.Rows >= 0 && rows != ti.Rows {
			return c.errorf("%s holds %d rows, the manifest says %d", ti.File, rows, ti.Rows)
		}
		if ti.Rows < 0 { // an older capture: describe it now
			ti.Rows = rows
			ti.StartNS, ti.EndNS = lo, hi
			m.StartNS, m.EndNS = widen(m.StartNS, m.EndNS, ti.StartNS, ti.EndNS)
		}
	}
	return nil
}

// loadTable adds one table to store and returns its rows and time range.
func (c *Capture) loadTable(store *table.Store, ti *TableInfo) (rows, lo, hi int64, err error) {
	if c.dir != "" {
		paths, err := table.ExpandPaths(filepath.Join(c.dir, ti.File))
		if err != nil {
			return 0, 0, 0, c.errorf("%w", err)
		}
		_, l, err := store.LoadPaths(ti.Name, paths, nil)
		if err != nil {
			return 0, 0, 0, c.errorf("%w", err)
		}
		return l.Rows, l.MinTime, l.MaxTime, nil
	}
	rel, recs, err := table.ReadFS(c.fsys, ti.File, nil)
	if err != nil {
		return 0, 0, 0, c.errorf("%w", err)
	}
	for _, r := range recs {
		rows += r.NumRows()
	}
	if _, err := store.LoadRecords(ti.Name, rel, recs); err != nil {
		return 0, 0, 0, c.errorf("table %s: %w", ti.Name, err)
	}
	lo, hi = timeRange(recs)
	return rows, lo, hi, nil
}

// Metadata returns a provider answering as the capturing provider did,
// then from next (nil for none) for what the capture does not know. A
// host-mode capture names its processes' host entities (containers,
// units, executables) as the live Host did.
func (c *Capture) Metadata(next metadata.Provider) *metadata.Replay {
	return metadata.NewReplay(metadata.WithHostEntities(c.snap), next)
}

// Snapshot returns the capture's metadata, processes included.
func (c *Capture) Snapshot() *metadata.Snapshot { return c.snap }

// AsOf is the instant a replay runs at, so that relative times ('-5m')
// count back from the capture's end: a second after its last row. It
// is the zero time when no row has a time (call it after Load for an
// older capture).
func (c *Capture) AsOf() time.Time {
	if c.Manifest.EndNS == 0 {
		return time.Time{}
	}
	return time.Unix(0, c.Manifest.EndNS+int64(time.Second))
}

// timeRange returns the smallest and largest time_ of recs (0, 0 when
// they have no time_ column or no rows).
func timeRange(recs []arrow.Record) (lo, hi int64) {
	for _, r := range recs {
		idx := r.Schema().FieldIndices("time_")
		if len(idx) == 0 {
			continue
		}
		col, ok := r.Column(idx[0]).(interface{ Value(int) arrow.Timestamp })
		if !ok {
			continue
		}
		for i := 0; i < int(r.NumRows()); i++ {
			v := int64(col.Value(i))
			lo, hi = widen(lo, hi, v, v)
		}
	}
	return lo, hi
}

// widen extends [lo, hi] (empty when both are 0) to cover [a, b] (empty
// when both are 0).
func widen(lo, hi, a, b int64) (int64, int64) {
	if a == 0 && b == 0 {
		return lo, hi
	}
	if lo == 0 && hi == 0 {
		return a, b
	}
	return min(lo, a), max(hi, b)
}

// hostsOf lists, sorted, the hostnames of a snapshot and its processes.
func hostsOf(s *metadata.Snapshot) []string {
	set := map[string]bool{}
	if s.Hostname != "" {
		set[s.Hostname] = true
	}
	for _, p := range s.Processes {
		if p.Hostname != "" {
			set[p.Hostname] = true
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
