package table_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// httpRow is a row of http_events as the tracer writes one for a small
// JSON API call: headers as JSON, a short body.
func httpRow(i int) []any {
	return []any{
		int64(1e18 + i), types.UPID(1, uint32(1000+i%7), 42),
		"10.0.0.7", int64(40000 + i%20000), "10.0.0.1", int64(8080), int64(2), false,
		int64(1), int64(1), int64(1),
		`{"Accept":"*/*","Host":"api:8080","User-Agent":"wrk"}`, "GET", fmt.Sprintf("/api/items/%d", i%1000), "", int64(0),
		`{"Content-Length":"57","Content-Type":"application/json","Date":"Thu, 03 Dec 2026 16:40:00 GMT","Server":"nginx"}`,
		int64(200), "OK", `{"id":` + fmt.Sprint(i) + `,"name":"` + strings.Repeat("x", i%40) + `"}`, int64(57), int64(52000 + i%1000),
	}
}

func heapAlloc() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestAccountingMatchesHeap checks that the bytes the store counts for
// its batches are the bytes they take on the heap, within 10%, from
// batches of one row (a quiet table flushed every 100 ms) to full ones.
func TestAccountingMatchesHeap(t *testing.T) {
	rel := http.Table.Relation()
	for _, per := range []int{1, 16, 256, 8192} {
		t.Run(fmt.Sprint(per), func(t *testing.T) {
			rows := 1 << 17
			if per == 1 {
				rows = 1 << 14 // as many batches as a quiet table makes in half an hour
			}
			rowsBuf := make([][]any, per)
			for i := range rowsBuf {
				rowsBuf[i] = httpRow(i)
			}
			s := table.NewStore(0)
			tb, err := s.Create("http_events", rel, table.Options{})
			if err != nil {
				t.Fatal(err)
			}
			w := table.NewWriter(tb)
			// Warm the writer's own slices so that they are not counted.
			for _, r := range rowsBuf {
				if err := w.AppendRow(r...); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			before := heapAlloc()
			beforeBytes := tb.Stats().Bytes
			for n := 0; n < rows; n += per {
				for _, r := range rowsBuf {
					if err := w.AppendRow(r...); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			heap := heapAlloc() - before
			counted := tb.Stats().Bytes - beforeBytes
			runtime.KeepAlive(w)
			runtime.KeepAlive(rowsBuf)
			runtime.KeepAlive(s)
			ratio := float64(counted) / float64(heap)
			t.Logf("%d rows per batch: heap %d B (%.0f B/row), counted %d B (%.0f B/row), counted/heap %.3f",
				per, heap, float64(heap)/float64(rows), counted, float64(counted)/float64(rows), ratio)
			if ratio < 0.9 || ratio > 1.1 {
				t.Errorf("counted/heap = %.3f, want 0.9 to 1.1", ratio)
			}
		})
	}
}
