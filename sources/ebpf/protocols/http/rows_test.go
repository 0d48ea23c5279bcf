package http

import (
	"testing"
	"time"

	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// TestEveryColumn checks every column of one http_events row, each set
// to a value no other column has, so that a value sent to the wrong
// column fails here.
func TestEveryColumn(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 1024)
	h.Conn.UPID = types.UInt128Value{High: 1<<40 | 7, Low: 123456789}
	h.send(protocols.Egress, post1, nil)
	start := h.ts
	h.send(protocols.Ingress, resp2, nil)
	rows := h.rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	want := row{
		"time_": h.ts, "upid": h.Conn.UPID,
		"remote_addr": "127.0.0.1", "remote_port": int64(50000), "local_addr": "127.0.0.1", "local_port": int64(8080),
		"trace_role": int64(1), "encrypted": false,
		"major_version": int64(1), "minor_version": int64(1), "content_type": int64(1),
		"req_headers": `{"Content-Length":"13","Content-Type":"application/json","Host":"example"}`,
		"req_method":  "POST", "req_path": "/submit", "req_body": `{"k":"value"}`, "req_body_size": int64(13),
		"resp_headers": `{"Content-Length":"2","Content-Type":"application/json; charset=utf-8"}`,
		"resp_status":  int64(201), "resp_message": "Created", "resp_body": "{}", "resp_body_size": int64(2),
		"latency": h.ts - start,
	}
	if len(rows[0]) != len(Table.Relation()) || len(want) != len(rows[0]) {
		t.Fatalf("%d columns, declared %d, checked %d", len(rows[0]), len(Table.Relation()), len(want))
	}
	check(t, rows[0], want)
}

// BenchmarkRequestResponse parses a request and its 512-byte response,
// each in one segment, and writes the row, in a steady state: the store is
// bounded at 32 MiB and its retention runs at every flush (as in an agent
// that has run for a while), and 200,000 pairs warm it up before timing,
// so that memory is reused rather than fresh from the OS.
func BenchmarkRequestResponse(b *testing.B) {
	store := table.NewStore(32 << 20)
	w, err := Table.Create(store)
	if err != nil {
		b.Fatal(err)
	}
	env := protocols.Env{
		Conn:  &protocols.Conn{Role: protocols.RoleServer, Stream: true},
		Cfg:   protocols.Config{MaxBodyBytes: 1024, MaxHeaderBytes: 16 << 10, MaxPending: 16, RequestTimeout: time.Minute},
		Row:   func(*table.Decl) *table.Row { return w.Row() },
		Count: func(string, int64) {},
	}
	c := newConn(env)
	req := []byte("GET /bench?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: identity\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 08:00:00 GMT\r\nContent-Length: 512\r\n\r\n" + string(make([]byte, 512)))
	pair := func(i int) {
		c.Data(protocols.Segment{Dir: protocols.Ingress, TS: int64(2 * i), Data: req})
		c.Data(protocols.Segment{Dir: protocols.Egress, TS: int64(2*i + 1), Data: resp})
		if i%2000 == 1999 {
			w.Flush()
			store.Expire(time.Now())
		}
	}
	const warm = 200_000
	for i := 0; i < warm; i++ {
		pair(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := warm; i < warm+b.N; i++ {
		pair(i)
	}
	if rows, refused := w.Counts(); rows != uint64(warm+b.N) || refused != 0 {
		b.Fatalf("%d rows (%d refused) for %d pairs", rows, refused, warm+b.N)
	}
}

// TestSkippedBodyEndsLate: a body whose bytes past the limit were not
// copied (GapAt, as for a body the BPF side skipped) ends at the time of
// its last call, so the latency covers the whole transfer, and counts in
// full.
func TestSkippedBodyEndsLate(t *testing.T) {
	h := newHarness(t, protocols.RoleClient, 4)
	h.send(protocols.Egress, get1, nil)
	start := h.ts
	h.send(protocols.Ingress, "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\nabcd", nil)
	h.c.GapAt(protocols.Ingress, 1000, h.ts+5000)
	h.c.GapAt(protocols.Ingress, 1996, h.ts+9000)
	rows := h.rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	check(t, rows[0], row{"resp_body": "abcd", "resp_body_size": int64(3000), "latency": h.ts + 9000 - start, "time_": h.ts + 9000})
}
