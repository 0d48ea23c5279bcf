package table_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols/http"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// BenchmarkWriter appends rows of http_events the way the socket tracer
// does (every column set through its handle, the headers' JSON and the
// body as bytes) for an nginx serving a 512-byte file to wrk, into a
// store bounded at 64 MiB that evicts as it goes. A batch is flushed
// every 8,192 rows. An op is one row; cpu-ns/row is the process's CPU
// time (user and system, the garbage collector's included) per row,
// which the other processes of a busy machine do not inflate as they do
// the wall time of ns/op.
func BenchmarkWriter(b *testing.B) {
	s := table.NewStore(64 << 20)
	stop := make(chan struct{})
	defer close(stop)
	go s.RunRetention(time.Hour, stop) // evict at each append past the bound
	w, err := http.Table.Create(s)
	if err != nil {
		b.Fatal(err)
	}
	c := http.Cols
	reqHeaders := []byte(`{"Host":"127.0.0.1:8080"}`)
	respHeaders := []byte(`{"Accept-Ranges":"bytes","Connection":"keep-alive","Content-Length":"512","Content-Type":"application/octet-stream","Date":"Thu, 03 Dec 2026 16:40:00 GMT","ETag":"\"674f1c2a-200\"","Last-Modified":"Tue, 03 Dec 2026 12:00:00 GMT","Server":"nginx/1.22.1"}`)
	body := []byte(strings.Repeat("x", 512))
	upid := types.UPID(1, 4242, 42)
	var paths [16]string
	for i := range paths {
		paths[i] = fmt.Sprintf("/f%d", i)
	}
	r := w.Row()
	b.ReportAllocs()
	b.SetBytes(int64(len(reqHeaders) + len(respHeaders) + len(body)))
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c.Time.Set(r, int64(1e18+i))
		c.UPID.Set(r, upid)
		c.RemoteAddr.Set(r, "127.0.0.1")
		c.RemotePort.Set(r, int64(40000+i%8))
		c.LocalAddr.Set(r, "127.0.0.1")
		c.LocalPort.Set(r, 8080)
		c.TraceRole.Set(r, 2)
		c.Encrypted.Set(r, false)
		c.MajorVersion.Set(r, 1)
		c.MinorVersion.Set(r, 1)
		c.ContentType.Set(r, 0)
		c.ReqHeaders.SetBytes(r, reqHeaders)
		c.ReqMethod.Set(r, "GET")
		c.ReqPath.Set(r, paths[i%len(paths)])
		c.ReqBody.SetBytes(r, nil)
		c.ReqBodySize.Set(r, 0)
		c.RespHeaders.SetBytes(r, respHeaders)
		c.RespStatus.Set(r, 200)
		c.RespMessage.Set(r, "OK")
		c.RespBody.SetBytes(r, body)
		c.RespBodySize.Set(r, int64(len(body)))
		c.Latency.Set(r, int64(50000+i%1000))
		if err := r.End(); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/row")
	if rows, refused := w.Counts(); rows != uint64(b.N) || refused != 0 {
		b.Fatalf("wrote %d rows, refused %d; want %d, 0", rows, refused, b.N)
	}
	st := s.Table("http_events").Stats()
	if st.Rows == 0 || st.Rows > int64(b.N) {
		b.Fatalf("table holds %d rows of %d written", st.Rows, b.N)
	}
	// What the store counts per row, slack in the batches' buffers included.
	b.ReportMetric(float64(st.BytesAdded)/float64(b.N), "store-B/row")
}

// cpuTime returns the CPU time the process has used, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
