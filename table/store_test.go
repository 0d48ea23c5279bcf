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
