package http

import (
	"math/rand"
	"testing"
	"time"

	"github.com/pxq-dev/pxq/schema"
	"github.com/pxq-dev/pxq/sources/ebpf/protocols"
	"github.com/pxq-dev/pxq/table"
	"github.com/pxq-dev/pxq/types"
)

// The typed row path (Env.Rows, table.Writer.AppendValues) writes the same
// table as the boxed one (Env.Emit, table.Writer.AppendRow).
func TestRowsMatchEmit(t *testing.T) {
	store := table.NewStore(0)
	mk := func(name string) *table.Writer {
		tb, err := store.Create(name, schema.HTTPEvents.Relation, table.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return table.NewWriter(tb)
	}
	boxed, typed := mk("boxed"), mk("typed")
	run := func(env protocols.Env) {
		rnd := rand.New(rand.NewSource(1))
		h := newHarness(protocols.RoleClient, 8)
		h.c.env.Emit, h.c.env.Rows = env.Emit, env.Rows
		h.c.env.Conn.UPID = types.UInt128Value{High: 1<<40 | 7, Low: 123456789}
		for i := 0; i < 3; i++ {
			h.send(protocols.Egress, get1, rnd)
			h.send(protocols.Ingress, resp1, rnd)
			h.send(protocols.Egress, post1, rnd)
			h.send(protocols.Ingress, resp2, rnd)
			h.send(protocols.Egress, get1, rnd)
			h.send(protocols.Ingress, chunk1, rnd)
		}
	}
	run(protocols.Env{Emit: func(_ string, vals ...any) {
		if err := boxed.AppendRow(vals...); err != nil {
			t.Fatal(err)
		}
	}})
	rows := &protocols.Rows{Emit: func(_ string, vals []table.Value) {
		if err := typed.AppendValues(vals); err != nil {
			t.Fatal(err)
		}
	}}
	run(protocols.Env{Rows: rows})
	boxed.Flush()
	typed.Flush()
	b, ty := store.Table("boxed").Snapshot(0, 0), store.Table("typed").Snapshot(0, 0)
	if len(b) != 1 || len(ty) != 1 || b[0].Record.NumRows() != 9 {
		t.Fatalf("batches %d and %d", len(b), len(ty))
	}
	for i := range schema.HTTPEvents.Relation {
		x, y := b[0].Record.Column(i), ty[0].Record.Column(i)
		for r := 0; r < x.Len(); r++ {
			if x.ValueStr(r) != y.ValueStr(r) {
				t.Errorf("column %s row %d: %q (Emit) != %q (Rows)", schema.HTTPEvents.Relation[i].Name, r, x.ValueStr(r), y.ValueStr(r))
			}
		}
	}
}

// BenchmarkRequestResponse parses a request and its 512-byte response, each
// in one segment as a syscall would deliver them, and writes the row.
// BenchmarkRequestResponse parses a request and its 512-byte response,
// each in one segment, and writes the row, in a steady state: the store is
// bounded at 32 MiB and its retention runs at every flush (as in an agent
// that has run for a while), and 200,000 pairs warm it up before timing,
// so that memory is reused rather than fresh from the OS.
func BenchmarkRequestResponse(b *testing.B) {
	store := table.NewStore(32 << 20)
	tb, err := store.Create("http_events", schema.HTTPEvents.Relation, table.Options{})
	if err != nil {
		b.Fatal(err)
	}
	w := table.NewWriter(tb)
	h := newHarness(protocols.RoleServer, 1024)
	h.c.env.Emit = nil
	rows := 0
	h.c.env.Rows = &protocols.Rows{Emit: func(_ string, vals []table.Value) {
		if err := w.AppendValues(vals); err != nil {
			b.Fatal(err)
		}
		rows++
	}}
	req := []byte("GET /bench?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: identity\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 08:00:00 GMT\r\nContent-Length: 512\r\n\r\n" + string(make([]byte, 512)))
	pair := func(i int) {
		h.c.Data(protocols.Segment{Dir: protocols.Ingress, TS: int64(2 * i), Data: req})
		h.c.Data(protocols.Segment{Dir: protocols.Egress, TS: int64(2*i + 1), Data: resp})
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
	if rows != warm+b.N {
		b.Fatalf("%d rows for %d pairs", rows, warm+b.N)
	}
}
