package table

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Runs of batches smaller than compactBelow rows are merged, up to
// compactMax rows each. A batch's Go objects cost about 350 B a column
// (RecordBytes), so a table that gets a row or two every 100 ms flush
// would otherwise hold twenty times its rows' bytes in overhead, and
// the store's bound would go to overhead rather than rows.
const (
	compactBelow = 1024
	compactMax   = 8192
)

// compact merges runs of small consecutive batches into one, in order,
// and returns the bytes it saved. Snapshots taken before keep the
// batches they have.
func (t *Table) compact() (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	all := t.load()
	var next []Batch
	var saved int64
	for i := 0; i < len(all); {
		j, rows := i, int64(0)
		for j < len(all) && all[j].Record.NumRows() < compactBelow && rows+all[j].Record.NumRows() <= compactMax {
			rows += all[j].Record.NumRows()
			j++
		}
		if j-i < 2 {
			if next != nil {
				next = append(next, all[i])
			}
			i++
			continue
		}
		if next == nil {
			next = append(make([]Batch, 0, len(all)), all[:i]...)
		}
		b, err := t.merge(all[i:j], rows)
		if err != nil {
			return 0, err
		}
		for _, old := range all[i:j] {
			saved += old.Bytes
		}
		saved -= b.Bytes
		next = append(next, b)
		i = j
	}
	if next == nil {
		return 0, nil
	}
	t.batches.Store(&next)
	t.bytes.Add(-saved)
	if t.store != nil {
		t.store.bytes.Add(-saved)
	}
	return saved, nil
}

// merge concatenates batches, which hold rows rows together.
func (t *Table) merge(batches []Batch, rows int64) (Batch, error) {
	cols := make([]arrow.Array, len(t.rel))
	parts := make([]arrow.Array, len(batches))
	for c := range cols {
		for i, b := range batches {
			parts[i] = b.Record.Column(c)
		}
		a, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return Batch{}, fmt.Errorf("table %s: merging batches: %w", t.name, err)
		}
		cols[c] = a
	}
	rec := array.NewRecord(t.schema, cols, rows)
	for _, a := range cols {
		a.Release()
	}
	b := Batch{Record: rec, Bytes: RecordBytes(rec), MinTime: batches[0].MinTime, MaxTime: batches[0].MaxTime}
	for _, x := range batches[1:] {
		b.MinTime, b.MaxTime = min(b.MinTime, x.MinTime), max(b.MaxTime, x.MaxTime)
	}
	return b, nil
}
