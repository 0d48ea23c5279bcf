package table

import (
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"golang.org/x/sys/unix"

	"github.com/pxq-dev/pxq/types"
)

// ipcFile is one Arrow IPC file (the random-access format) of a
// FileTable, memory-mapped: its units are its record batches. The
// format has no statistics, so opening it reads each batch once for
// its rows and time_ range (from the mapping: no read calls, and the
// pages stay in the page cache for the scans).
type ipcFile struct {
	path string
	data []byte // the mapping
	fr   *ipc.FileReader
	rel  types.Relation // the table's
	idx  []int          // per column of rel, the file's field
	us   []Unit
}

func openIPC(f *os.File, path string, size int64, want types.Relation, reads *readCounter) (*ipcFile, error) {
	// The mapping outlives the descriptor.
	defer f.Close()
	if size == 0 {
		return nil, fmt.Errorf("empty file")
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	p := &ipcFile{path: path, data: data}
	fail := func(err error) (*ipcFile, error) {
		p.close()
		return nil, err
	}
	p.fr, err = ipc.NewFileReader(&mapped{data: data, reads: reads})
	if err != nil {
		return fail(fmt.Errorf("not an Arrow IPC file (the stream format is read whole: name it .arrows): %w", err))
	}
	have, err := types.FromArrowSchema(p.fr.Schema())
	if err != nil {
		return fail(err)
	}
	p.rel = want
	p.idx = make([]int, len(have))
	for i := range p.idx {
		p.idx[i] = i
	}
	if want == nil {
		p.rel = have
	} else if p.idx, err = matchRelation(have, want); err != nil {
		return fail(err)
	}
	timeCol := -1
	if i := p.rel.Index("time_"); i >= 0 && p.rel[i].Type == types.Time64NS {
		timeCol = i
	}
	for b := 0; b < p.fr.NumRecords(); b++ {
		rec, err := p.fr.RecordAt(b)
		if err != nil {
			return fail(fmt.Errorf("record batch %d: %w", b, err))
		}
		u := Unit{File: path, Index: b, Rows: rec.NumRows(), Stats: make([]ColumnStats, len(p.rel))}
		if timeCol >= 0 && rec.NumRows() > 0 {
			col, err := convertColumn(rec.Column(p.idx[timeCol]), types.Time64NS)
			if err != nil {
				rec.Release()
				return fail(fmt.Errorf("record batch %d: column time_: %w", b, err))
			}
			lo, hi := timeRange(withoutNulls(col))
			u.Stats[timeCol] = ColumnStats{Known: true, Min: lo, Max: hi}
		}
		rec.Release()
		p.us = append(p.us, u)
	}
	return p, nil
}

func (p *ipcFile) relation() types.Relation { return p.rel }
func (p *ipcFile) units() []Unit            { return p.us }

func (p *ipcFile) close() error {
	if p.fr != nil {
		p.fr.Close()
	}
	// Arrays read from the file are copies (arrow's IPC reader copies
	// every buffer), so none points into the mapping.
	if p.data != nil {
		err := unix.Munmap(p.data)
		p.data = nil
		return err
	}
	return nil
}

func (p *ipcFile) open(index int, cols []int, opts ReadOptions, _ *readCounter) (UnitReader, error) {
	rec, err := p.fr.RecordAt(index)
	if err != nil {
		return nil, err
	}
	rel := make(types.Relation, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		a, err := convertColumn(rec.Column(p.idx[c]), p.rel[c].Type)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", p.rel[c].Name, err)
		}
		arrs[i] = withoutNulls(a)
		if opts.Codes != nil && opts.Codes[i] != nil {
			arrs[i] = opts.Codes[i].CodeArray(arrs[i])
		}
		rel[i] = p.rel[c]
	}
	out := array.NewRecord(codedRelation(rel, opts.Codes).ArrowSchema(), arrs, rec.NumRows())
	return &sliceReader{rec: out, step: int64(opts.BatchRows)}, nil
}

// sliceReader returns a record in slices of step rows.
type sliceReader struct {
	rec       arrow.Record
	pos, step int64
}

func (r *sliceReader) Next() (arrow.Record, error) {
	if r.rec == nil || r.pos >= r.rec.NumRows() {
		return nil, nil
	}
	hi := min(r.pos+r.step, r.rec.NumRows())
	out := r.rec.NewSlice(r.pos, hi)
	r.pos = hi
	return out, nil
}

func (r *sliceReader) Close() error {
	r.rec = nil
	return nil
}

// mapped reads a memory-mapped file, counting what it copies out.
type mapped struct {
	data  []byte
	pos   int64
	reads *readCounter
}

func (m *mapped) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	m.reads.bytes.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *mapped) Read(p []byte) (int, error) {
	n, err := m.ReadAt(p, m.pos)
	m.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (m *mapped) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += m.pos
	case io.SeekEnd:
		off += int64(len(m.data))
	}
	if off < 0 {
		return 0, fmt.Errorf("seek: negative position")
	}
	m.pos = off
	return off, nil
}
