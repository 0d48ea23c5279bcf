package http2

import (
	"context"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols/internal/dbtest"
)

// BenchmarkParseUnary measures the parser alone, on the server's side of
// a gRPC connection recorded through a proxy: 1000 unary calls (64-byte
// payloads each way) of grpc-go, parsed to their rows; ns/call is per
// call.
func BenchmarkParseUnary(b *testing.B) {
	const calls = 1000
	l := newLive(b)
	p := dbtest.NewProxy(b, StartGRPCServer(b), func(c dbtest.Chunk) { l.chunks = append(l.chunks, c) })
	c, cc := GRPCClient(b, p.Addr())
	req := &testpb.SimpleRequest{ResponseSize: 64, Payload: &testpb.Payload{Body: make([]byte, 64)}}
	for i := 0; i < calls; i++ {
		if _, err := c.UnaryCall(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	cc.Close()
	p.Close()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		h := newHarness(b, protocols.RoleServer, testConfig)
		for _, c := range l.chunks {
			h.Parser.Data(dbtest.Segment(c, protocols.RoleServer))
		}
		h.Parser.Close(0)
		if i == 0 {
			if n := len(h.Rows("http_events")); n != calls {
				b.Fatalf("%d rows, want %d", n, calls)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*calls), "ns/call")
}
