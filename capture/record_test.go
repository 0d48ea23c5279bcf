package capture_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/pxq-dev/pxq/capture"
	"github.com/pxq-dev/pxq/metadata"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// produce writes n rows of http_events through a table.Writer, as the
// tracer does, at about perSecond rows a second in flushes of 10 ms. Row
// i has latency i, so the capture's rows can be checked one by one.
func produce(t *testing.T, w *table.Writer, n, perSecond int) {
	t.Helper()
	perFlush := perSecond / 100
	start := time.Now()
	body := strings.Repeat("x", 400)
	for i := 0; i < n; {
		for j := 0; j < perFlush && i < n; j, i = j+1, i+1 {
			err := w.AppendNamed(map[string]any{
				"time_": time.Now().UnixNano(), "upid": types.UPID(1, uint32(100+i%5), 9),
				"remote_addr": "10.0.0.7", "remote_port": int64(40000 + i%20000), "trace_role": int64(2),
				"req_headers": `{"Host":"api"}`, "req_method": "GET", "req_path": fmt.Sprintf("/items/%d", i),
				"resp_status": int64(200), "resp_body": body, "latency": int64(i),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		// Pace to the rate: sleep until row i is due.
		if due := start.Add(time.Duration(i) * time.Second / time.Duration(perSecond)); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
	}
}

// peakHeap samples the heap in use every 10 ms until stop is closed.
func peakHeap(stop <-chan struct{}, peak *atomic.Uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	var m runtime.MemStats
	for {
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak.Load() {
			peak.Store(m.HeapInuse)
		}
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestRecordSpills fills an 8 MiB store with over 10 times its size in
// rows, at 20 k rows/s (the socket tracer under wrk and nginx on this
// 2-core machine makes 15 to 40 k): the recorder spills
// them to the capture as they come, so that every row produced is in the
// capture once, nothing was dropped, and the heap stayed bounded by the
// store, not by the capture.
func TestRecordSpills(t *testing.T) {
	const storeBytes = 8 << 20
	const n = 200_000
	store := table.NewStore(storeBytes)
	w, err := http.Table.Create(store)
	if err != nil {
		t.Fatal(err)
	}
	stopRetention := make(chan struct{})
	defer close(stopRetention)
	go store.RunRetention(time.Second, stopRetention) // appends past 8 MiB evict
	dir := t.TempDir()
	var warnings []string
	var mu sync.Mutex
	r, err := capture.Record(dir, store, capture.RecordOptions{Options: capture.Options{PXQVersion: "v-test"},
		Warn: func(s string) { mu.Lock(); warnings = append(warnings, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go peakHeap(stop, &peak, &wg)
	produce(t, w, n, 20_000)
	close(stop)
	wg.Wait()
	produced := store.Table("http_events").Stats().BytesAdded
	m, dropped, err := r.Close(metadata.None{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) > 0 || len(warnings) > 0 {
		t.Errorf("rows were dropped: %v %v", dropped, warnings)
	}
	if len(m.Tables) != 1 || m.Tables[0].Rows != n {
		t.Fatalf("manifest: %+v, want http_events with %d rows", m.Tables, n)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d rows, %d MiB through an %d MiB store: heap in use grew by at most %.1f MiB",
		n, produced>>20, storeBytes>>20, float64(grew)/(1<<20))
	// Without spilling the heap would hold every row, 10 times the store.
	if grew > 4*storeBytes {
		t.Errorf("heap in use grew by %d MiB, more than 4 times the store's %d MiB", grew>>20, storeBytes>>20)
	}
	if produced < 10*storeBytes {
		t.Fatalf("only %d MiB produced: the store never filled", produced>>20)
	}

	// The capture opens and holds every row once: latency 0 … n-1.
	rp := opened(t)(capture.Open(dir))
	lat := column(t, rp.eng.Store().Table("http_events"), "latency").(*array.Int64)
	if lat.Len() != n {
		t.Fatalf("capture holds %d rows, want %d", lat.Len(), n)
	}
	seen := make([]bool, n)
	for i := 0; i < lat.Len(); i++ {
		v := lat.Value(i)
		if v < 0 || v >= n || seen[v] {
			t.Fatalf("row with latency %d is not one of the rows produced, or twice", v)
		}
		seen[v] = true
	}
	got := rp.run(t, `import px
df = px.DataFrame(table='http_events', start_time='-30d')
px.display(df.agg(n=('latency', px.count)), 'n')`)
	if want := fmt.Sprintf("n: %d", n); len(got) != 1 || got[0] != want {
		t.Errorf("count over the capture: %q, want %q", got, want)
	}
}

// TestRecordSaysWhatItDropped makes the recorder fall behind (it spills
// only at Close) so that the 8 MiB store evicts: Close and the warning
// say how many rows went, and the capture holds the others.
func TestRecordSaysWhatItDropped(t *testing.T) {
	store := table.NewStore(8 << 20)
	w, err := http.Table.Create(store)
	if err != nil {
		t.Fatal(err)
	}
	stopRetention := make(chan struct{})
	defer close(stopRetention)
	go store.RunRetention(time.Hour, stopRetention)
	dir := t.TempDir()
	var warned atomic.Int32
	r, err := capture.Record(dir, store, capture.RecordOptions{Every: time.Hour, Threshold: 1 << 40,
		Warn: func(string) { warned.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	before := time.Now()
	produce(t, w, n, 1_000_000)
	m, dropped, err := r.Close(metadata.None{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0].Table != "http_events" || dropped[0].Since.Before(before.Truncate(time.Second)) {
		t.Fatalf("dropped = %+v, want http_events since the capture started", dropped)
	}
	if len(m.Tables) != 1 || m.Tables[0].Rows+dropped[0].Rows != n {
		t.Errorf("written %+v + dropped %d rows, want %d in all", m.Tables, dropped[0].Rows, n)
	}
	if warned.Load() != 1 {
		t.Errorf("warned %d times, want once", warned.Load())
	}
}
