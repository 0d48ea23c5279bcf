package table

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/types"
)

var testRel = types.Relation{
	{Name: "time_", Type: types.Time64NS, Semantic: types.STTimeNS},
	{Name: "upid", Type: types.UInt128, Semantic: types.STUPID},
	{Name: "path", Type: types.String, Semantic: types.STNone},
	{Name: "latency", Type: types.Int64, Semantic: types.STDurationNS},
	{Name: "ratio", Type: types.Float64, Semantic: types.STPercent},
	{Name: "ok", Type: types.Boolean, Semantic: types.STNone},
}

func fill(t *testing.T, tb *Table, from, n int) {
	t.Helper()
	w := NewWriter(tb)
	for i := from; i < from+n; i++ {
		if err := w.AppendRow(int64(i)*int64(time.Second), types.UPID(1, uint32(i), 7), "/p", int64(i), float64(i)/10, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

func rows(bs []Batch) int64 {
	var n int64
	for _, b := range bs {
		n += b.Record.NumRows()
	}
	return n
}

func TestAppendSnapshotTimeRange(t *testing.T) {
	s := NewStore(0)
	tb, err := s.Create("t", testRel, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, tb, 0, 10)  // times 0..9 s
	fill(t, tb, 10, 10) // times 10..19 s
	all := tb.Snapshot(0, 0)
	if len(all) != 2 || rows(all) != 20 {
		t.Fatalf("snapshot: %d batches %d rows", len(all), rows(all))
	}
	if all[1].MinTime != 10e9 || all[1].MaxTime != 19e9 {
		t.Errorf("batch range = [%d, %d]", all[1].MinTime, all[1].MaxTime)
	}
	if got := tb.Snapshot(12e9, 0); len(got) != 1 {
		t.Errorf("start 12s: %d batches, want 1", len(got))
	}
	if got := tb.Snapshot(0, 10e9); len(got) != 1 {
		t.Errorf("end 10s (exclusive): %d batches, want 1", len(got))
	}
	// A snapshot does not change when the table grows.
	fill(t, tb, 20, 5)
	if len(all) != 2 || rows(tb.Snapshot(0, 0)) != 25 {
		t.Error("snapshot changed or append lost")
	}
	if err := NewWriter(tb).AppendRow(int64(1), "wrong"); err == nil {
		t.Error("short row accepted")
	}
	if err := NewWriter(tb).AppendRow(int64(0), types.UPID(1, 1, 1), 5, int64(1), 1.0, true); err == nil {
		t.Error("int for a string column accepted")
	}
}

func TestRetentionByAgeAndBytes(t *testing.T) {
	s := NewStore(0)
	tb, _ := s.Create("t", testRel, Options{MaxAge: 5 * time.Second})
	fill(t, tb, 0, 10)
	fill(t, tb, 10, 10)
	s.Expire(time.Unix(0, 0).Add(16 * time.Second)) // cutoff 11s: first batch (max 9s) goes
	if got := tb.Snapshot(0, 0); len(got) != 1 || got[0].MinTime != 10e9 {
		t.Fatalf("after age expiry: %d batches", len(got))
	}
	st := tb.Stats()
	if st.Rows != 10 || st.BatchesExpired != 1 || st.BatchesAdded != 2 {
		t.Errorf("stats = %+v", st)
	}

	tb2, _ := s.Create("u", testRel, Options{})
	fill(t, tb2, 100, 10)
	one := tb2.Stats().Bytes
	tb2.opts.MaxBytes = one * 2
	fill(t, tb2, 110, 10)
	fill(t, tb2, 120, 10)
	s.Expire(time.Unix(200, 0))
	if got := tb2.Snapshot(0, 0); len(got) != 2 || got[0].MinTime != 110e9 {
		t.Errorf("byte bound kept %d batches", len(got))
	}

	// The store's total bound takes the oldest data first.
	total := NewStore(one * 3)
	a, _ := total.Create("a", testRel, Options{})
	b, _ := total.Create("b", testRel, Options{})
	fill(t, a, 0, 10)
	fill(t, b, 10, 10)
	fill(t, a, 20, 10)
	fill(t, b, 30, 10)
	total.Expire(time.Unix(100, 0))
	if len(a.Snapshot(0, 0)) != 1 || len(b.Snapshot(0, 0)) != 2 {
		t.Errorf("total bound: a has %d batches, b %d; want 1 and 2", len(a.Snapshot(0, 0)), len(b.Snapshot(0, 0)))
	}
}

func TestConcurrentReadersAndWriters(t *testing.T) {
	s := NewStore(0)
	tb, _ := s.Create("t", testRel, Options{MaxAge: time.Hour})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				fill(t, tb, w*1000+i*10, 10)
			}
		}(w)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				for _, b := range tb.Snapshot(0, 0) {
					if b.Record.NumRows() != 10 {
						t.Error("torn batch")
					}
				}
				s.Expire(time.Unix(0, 0))
			}
		}
	}()
	wg.Wait()
	close(stop)
	if got := rows(tb.Snapshot(0, 0)); got != 2000 {
		t.Errorf("rows = %d, want 2000", got)
	}
}

func TestFilesRoundTrip(t *testing.T) {
	s := NewStore(0)
	tb, _ := s.Create("t", testRel, Options{})
	fill(t, tb, 0, 50)
	var recs = []Batch(tb.Snapshot(0, 0))
	dir := t.TempDir()
	for _, ext := range []string{".arrow", ".parquet"} {
		p := filepath.Join(dir, "t"+ext)
		if err := WriteFile(p, testRel, []arrow.Record{recs[0].Record}); err != nil {
			t.Fatal(err)
		}
		rel, got, err := ReadFile(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rel.String() != testRel.String() {
			t.Errorf("%s: relation %v, want %v", ext, rel, testRel)
		}
		for i, c := range rel {
			if c.Semantic != testRel[i].Semantic {
				t.Errorf("%s: column %s semantic %v, want %v", ext, c.Name, c.Semantic, testRel[i].Semantic)
			}
		}
		var n int64
		for _, r := range got {
			n += r.NumRows()
			if !array.RecordEqual(r, recs[0].Record) && len(got) == 1 {
				t.Errorf("%s: rows differ", ext)
			}
		}
		if n != 50 {
			t.Errorf("%s: %d rows", ext, n)
		}
	}
	// The same files read through a file system, as captures are read.
	for _, ext := range []string{".arrow", ".parquet"} {
		_, got, err := ReadFS(os.DirFS(dir), "t"+ext, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !array.RecordEqual(got[0], recs[0].Record) {
			t.Errorf("ReadFS %s: rows differ", ext)
		}
	}
}

// TestCompactSmallBatches merges a quiet table's one-row batches (as
// RunRetention does every pass): the rows stay, in order, in one batch that costs far
// fewer bytes, and a snapshot taken before keeps its batches.
func TestCompactSmallBatches(t *testing.T) {
	s := NewStore(0)
	tb, err := s.Create("t", testRel, Options{MaxAge: 1000 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		fill(t, tb, i, 1)
	}
	fill(t, tb, 100, 2000) // a big batch stays as it is
	fill(t, tb, 2100, 1)
	fill(t, tb, 2101, 1)
	before := tb.Snapshot(0, 0)
	bytesBefore := tb.Stats().Bytes
	if saved := s.Compact(); saved <= 0 {
		t.Errorf("Compact saved %d bytes", saved)
	}
	after := tb.Snapshot(0, 0)
	if len(before) != 103 || len(after) != 3 {
		t.Fatalf("batches: %d before, %d after compaction, want 103 and 3", len(before), len(after))
	}
	if rows(after) != 2102 || tb.Stats().Rows != 2102 {
		t.Fatalf("rows after compaction: %d (stats %d), want 2102", rows(after), tb.Stats().Rows)
	}
	if after[0].MinTime != 0 || after[0].MaxTime != 99e9 || after[1].Record != before[100].Record {
		t.Errorf("merged batch range [%d, %d], or the big batch was rebuilt", after[0].MinTime, after[0].MaxTime)
	}
	var want int64
	for _, b := range after {
		ts := b.Record.Column(0).(*array.Timestamp)
		for i := 0; i < ts.Len(); i++ {
			if int64(ts.Value(i)) != want*int64(time.Second) || ts.IsNull(i) {
				t.Fatalf("row %d has time %d", want, ts.Value(i))
			}
			want++
		}
	}
	if got := tb.Stats().Bytes; got >= bytesBefore/2 || got != s.Bytes() {
		t.Errorf("bytes %d after compaction (store %d), %d before: want less than half, the store's the same", got, s.Bytes(), bytesBefore)
	}
	var sum int64
	for _, b := range after {
		sum += RecordBytes(b.Record)
	}
	if sum != tb.Stats().Bytes {
		t.Errorf("batches hold %d bytes, the table counts %d", sum, tb.Stats().Bytes)
	}
}

// TestAppendEvictsOnceLive: under live sources (RunRetention), an append
// that takes the store past its bound evicts at once, counting the rows
// it drops and since when.
func TestAppendEvictsOnceLive(t *testing.T) {
	s := NewStore(64 << 10)
	tb, err := s.Create("t", testRel, Options{MaxAge: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		fill(t, tb, i*100, 100)
	}
	if s.Bytes() <= 64<<10 || tb.Stats().RowsDropped != 0 {
		t.Fatalf("before retention runs: %d bytes, %d dropped; want over the bound, none dropped", s.Bytes(), tb.Stats().RowsDropped)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.RunRetention(time.Hour, stop); close(done) }()
	defer func() { close(stop); <-done }()
	for !s.live.Load() {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	for i := 40; i < 80; i++ {
		fill(t, tb, i*100, 100)
		if s.Bytes() > 64<<10 {
			t.Fatalf("after batch %d the store holds %d bytes, past its bound", i, s.Bytes())
		}
	}
	st := tb.Stats()
	if st.RowsDropped == 0 || st.RowsDropped+st.Rows != 8000 || st.DroppedSince < start.UnixNano() {
		t.Errorf("dropped %d rows since %d, %d left: want the rows gone counted, since the first append past the bound", st.RowsDropped, st.DroppedSince, st.Rows)
	}
}
